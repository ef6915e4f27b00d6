// What an agent capability module is, and the registry the connection routes through: the agent's
// mirror of the hub's capability modules. A module declares the RPC methods it answers, the stream
// kinds it serves, the hub messages it reads, and what it does when the hub acknowledges hello or
// the socket goes away; connection.ts knows none of them by name. A module with heavy parts loads
// them on first use (a dynamic import inside its handler), so an idle agent never pays for them.
import type { AgentMessage, HubMessage, StreamOpen } from '../shared/protocol/messages.ts';
import type { MuxStream } from '../shared/protocol/mux.ts';
import type { Logger } from './log.ts';
import type { RpcHandlers } from './rpc.ts';

/** The envelope's messages, which the connection itself handles. */
type EnvelopeMessage = 'hello_ack' | 'req' | 'ping' | 'pong' | 'bye';
/** The hub → agent messages capabilities define (tunnels.ts's `tunnels`, …). */
export type CapabilityMessage = Exclude<HubMessage, { t: EnvelopeMessage }>;

export type StreamHandlers = { [K in StreamOpen['kind']]?: (stream: MuxStream, open: Extract<StreamOpen, { kind: K }>) => void };
export type MessageHandlers = { [T in CapabilityMessage['t']]?: (message: Extract<CapabilityMessage, { t: T }>) => void };
/** The agent → hub messages capabilities define (logs.ts's `logs`, …). */
export type CapabilityAgentMessage = Exclude<AgentMessage, { t: 'hello' | 'res' | 'ping' | 'pong' }>;
/** Sends a control message on this connection; false when the socket is no longer open. */
export type SendToHub = (message: CapabilityAgentMessage) => boolean;

export interface AgentCapability {
  /** e.g. 'tunnels'. */
  name: string;
  /** The RPC methods it answers (params are checked against RpcMethods before a handler runs). */
  rpc?: RpcHandlers;
  /** The stream kinds the hub may open toward it; the handler must accept or reset the stream. */
  streams?: StreamHandlers;
  /** Hub → agent messages of its own, by `t`. */
  messages?: MessageHandlers;
  /** The hub acknowledged hello: the connection is up, and `send` speaks on it until onGone. */
  onHello?(send: SendToHub): void;
  /** The socket is gone: everything it carried is over. */
  onGone?(): void;
}

/** What the connection needs from the registered modules, each route looked up once per message. */
export interface CapabilityRegistry {
  /** What hello tells the hub this agent serves. */
  readonly names: string[];
  readonly rpc: RpcHandlers;
  stream(open: StreamOpen): ((stream: MuxStream, open: StreamOpen) => void) | undefined;
  message(message: CapabilityMessage): ((message: CapabilityMessage) => void) | undefined;
  hello(log: Logger, send: SendToHub): void;
  gone(log: Logger): void;
}

/** Every agent answers `ping` (the hub times round trips with it), so it says nothing about a module. */
const UNIVERSAL_RPC = new Set(['ping']);

/**
 * The capability names for hello: a module is known by the RPC methods it serves (the hub asks for
 * a method, not a module), or by its name when it serves none (streams, messages, or a marker such
 * as `simulated`). For the agent's modules this is device_info, process_list, tunnels.
 */
export function advertised(module: AgentCapability): string[] {
  const methods = Object.keys(module.rpc ?? {}).filter((m) => !UNIVERSAL_RPC.has(m));
  return methods.length ? methods : [module.name];
}

/** Builds the routing tables; two modules claiming one method, stream kind or message is a bug. */
export function registry(modules: readonly AgentCapability[]): CapabilityRegistry {
  const names = new Set<string>();
  const rpc: Record<string, unknown> = {};
  const streams = new Map<string, (stream: MuxStream, open: StreamOpen) => void>();
  const messages = new Map<string, (message: CapabilityMessage) => void>();
  const clash = (what: string, key: string, by: string) => new Error(`${what} ${key} is claimed by two capabilities (the second is ${by})`);
  for (const m of modules) {
    for (const name of advertised(m)) names.add(name);
    for (const [method, handler] of Object.entries(m.rpc ?? {})) {
      if (Object.hasOwn(rpc, method)) throw clash('RPC method', method, m.name);
      rpc[method] = handler;
    }
    for (const [kind, handler] of Object.entries(m.streams ?? {})) {
      if (streams.has(kind)) throw clash('stream kind', kind, m.name);
      streams.set(kind, handler as (stream: MuxStream, open: StreamOpen) => void);
    }
    for (const [t, handler] of Object.entries(m.messages ?? {})) {
      if (messages.has(t)) throw clash('message', t, m.name);
      messages.set(t, handler as (message: CapabilityMessage) => void);
    }
  }
  const each = (log: Logger, hook: 'onHello' | 'onGone', send?: SendToHub) => {
    for (const m of modules) {
      try {
        if (hook === 'onHello') m.onHello?.(send!);
        else m.onGone?.();
      } catch (e) {
        log.warn(`capability ${m.name} failed in ${hook}`, { error: String(e) });
      }
    }
  };
  return {
    names: [...names],
    rpc: rpc as RpcHandlers,
    stream: (open) => streams.get(open.kind),
    message: (message) => messages.get(message.t),
    hello: (log, send) => each(log, 'onHello', send),
    gone: (log) => each(log, 'onGone'),
  };
}
