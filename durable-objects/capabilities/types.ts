// What a hub capability module declares, and what the hub gives it. The DeviceHub's machinery
// (agent socket, RPC, watchers, scheduler) is generic; everything a capability adds — its RPC
// methods, the stream kinds the agent opens toward the hub, its control messages, its watcher
// topics, what happens when the agent says hello or goes away — is declared here and plugged in
// by one line in capabilities/index.ts. See docs/architecture.md for the recipe.
import type { z } from 'zod';
import type { AgentMessage, HubMessage, RpcMethod, StreamOpen } from '../../shared/protocol/messages.ts';
import type { HelloSchema } from '../../shared/protocol/envelope.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';

export type Hello = z.infer<typeof HelloSchema>;

/** The hub as a capability sees it. */
export interface HubContext {
  readonly env: Env;
  readonly state: DurableObjectState;
  /** The device this hub belongs to (the hub's name). */
  readonly deviceId: string;
  /** The agent's socket once its hello is done (every onHello hook ran), else null. */
  readyAgent(): WebSocket | null;
  /** The agent's open socket, hello or not. */
  agent(): WebSocket | null;
  /** Resolves with the ready agent's socket once it (re)connects and says hello, or null after `ms`. */
  waitForAgent(ms: number): Promise<WebSocket | null>;
  /** When the agent's last socket went away (this instance's memory; null after a restart). */
  agentGoneAt(): number | null;
  /** Sends a control message to the agent; false if there is no open agent socket. */
  send(msg: HubMessage): boolean;
  /** Opens a stream to the agent over `ws` (the agent's socket). */
  openStream(ws: WebSocket, open: StreamOpen, options?: { fin?: boolean }): MuxStream;
  /** Publishes an event (`event: <topic>`) to the hub's watchers of `topic`, at once (see hub/watchers.ts). */
  publish(topic: string, data: Readonly<Record<string, unknown>>): void;
  /** An event of `topic` that is not published (nobody watches it): a watcher resuming from before now gets a gap for the topic (hub/watchers.ts). */
  skip(topic: string): void;
  /** Sets (or moves) one of the hub's named deadlines (hub/scheduler.ts); DeviceHub maps each name to its capability's handler. */
  at(name: string, when: number): Promise<void>;
  /** When the named deadline is due, if it is set. */
  when(name: string): Promise<number | null>;
}

/** A stream the agent opened toward the hub; the handler must accept or reset it. */
export type StreamHandler = (hub: HubContext, stream: MuxStream, open: StreamOpen) => void;
/** An agent→hub control message of the capability's own (routed by `t`). */
export type MessageHandler = (hub: HubContext, msg: AgentMessage) => Promise<void> | void;

export interface HubCapability {
  /** e.g. 'tunnels' */
  readonly name: string;
  /** The RPC methods it calls on the agent (typed through RpcMethods). */
  readonly rpc?: readonly RpcMethod[];
  /** Stream kinds the AGENT may open toward the hub, by OPEN kind; other kinds are refused. */
  readonly streams?: Readonly<Record<string, StreamHandler>>;
  /** Agent→hub control messages of its own, by `t`. */
  readonly messages?: Readonly<Record<string, MessageHandler>>;
  /** Watcher topics it publishes to. */
  readonly topics?: readonly string[];
  /** The agent said hello; the agent is ready (readyAgent) only once every hook has returned. */
  onHello?(hub: HubContext, hello: Hello): Promise<void> | void;
  /** The agent's socket went away (closed, failed, replaced by none, or silent past its heartbeat window). */
  onGone?(hub: HubContext, why: string): Promise<void> | void;
}
