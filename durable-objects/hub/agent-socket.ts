// The agent's socket: accepted hibernatably with the tag 'agent' (watchers carry 'watch'), so
// everything that acts on "the device's connection" asks for that tag and never touches a watcher.
// A second agent connection replaces the first (a restarted agent taking over from its half-dead
// old socket) and is recorded, since two live agents with one identity mean a copied config. The
// socket's attachment keeps what must outlive hibernation (when it connected, from where, its
// hello); the stream mux of the current socket lives in memory and dies with it.
import { CloseCode, ResetCode } from '../../shared/codes.ts';
import { FRAME_BATCH_FEATURE, FrameBatcher } from '../../shared/protocol/batch.ts';
import type { HubMessage, StreamOpen } from '../../shared/protocol/messages.ts';
import { StreamMux, type MuxStream } from '../../shared/protocol/mux.ts';
import type { IdentityConflictRecord } from '../../shared/db/schema.ts';

export const AGENT_TAG = 'agent';

export interface AgentAttachment {
  connectedAt: number;
  /** The address the agent connected from (for the identity-conflict record). */
  address: string;
  helloAt: number | null;
  agentVersion: string | null;
  capabilities: string[];
  /** The agent reads BATCH frames (hello feature `frame-batch`). */
  batches?: boolean;
}

/** A replacement this long after the last one starts a new identity-conflict record. */
const CONFLICT_WINDOW_MS = 24 * 60 * 60_000;
const CONFLICT_ADDRESSES = 8;

export interface AgentSocketOptions {
  /** The agent opened a stream (routed by its OPEN's kind). */
  onStream(stream: MuxStream, open: StreamOpen): void;
  /** A frame the mux could not take. */
  onBadFrame(why: string): void;
}

export class AgentSocket {
  private mux: StreamMux | null = null;
  /** The socket `mux` belongs to: a frame from it needs no tag lookup. */
  private muxSocket: WebSocket | null = null;
  private batcher: FrameBatcher | null = null;
  /** ready()'s answer, kept while that socket stays open. */
  private readySocket: WebSocket | null = null;
  private waiters = new Set<() => void>();
  /** When the agent's last socket went away (this instance's memory; null after a restart). */
  goneAt: number | null = null;

  constructor(
    private readonly state: DurableObjectState,
    private readonly db: D1Database,
    private readonly options: AgentSocketOptions,
  ) {}

  /** Whether `ws` is an agent's socket (the current mux socket without asking the runtime). */
  isAgent(ws: WebSocket): boolean {
    return ws === this.muxSocket || this.state.getTags(ws)[0] === AGENT_TAG;
  }

  /** The agent's open socket, hello or not. */
  live(): WebSocket | null {
    for (const ws of this.state.getWebSockets(AGENT_TAG)) if (ws.readyState === WebSocket.OPEN) return ws;
    return null;
  }

  /** The agent's socket once its hello is done and every hello hook ran. */
  ready(): WebSocket | null {
    // Remembered between visits (reading the attachment each time costs a deserialization); a
    // closed or replaced socket is no longer OPEN, and after hibernation the field starts empty.
    if (this.readySocket?.readyState === WebSocket.OPEN) return this.readySocket;
    const ws = this.live();
    this.readySocket = ws && attachment(ws)?.helloAt ? ws : null;
    return this.readySocket;
  }

  /** Accepts a new agent connection, closing (replacing) the agent's earlier sockets. */
  async accept(deviceId: string, address: string, now: number): Promise<Response> {
    const earlier = this.state.getWebSockets(AGENT_TAG);
    const replaced = earlier.filter((ws) => ws.readyState === WebSocket.OPEN);
    for (const old of earlier) this.close(old, CloseCode.REPLACED, 'replaced by a newer connection');
    const pair = new WebSocketPair();
    const server = pair[1];
    this.state.acceptWebSocket(server, [AGENT_TAG]);
    server.serializeAttachment({ connectedAt: now, address, helloAt: null, agentVersion: null, capabilities: [] } satisfies AgentAttachment);
    if (replaced.length) await this.recordReplacement(deviceId, replaced, address, now);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** The hello is done (its hooks ran): streams may use the socket, and waiting visitors go on. */
  markReady(ws: WebSocket, hello: { agent_version: string; capabilities: string[]; features?: string[] }): void {
    const att = attachment(ws);
    if (!att) return;
    att.helloAt = Date.now();
    att.agentVersion = hello.agent_version;
    att.capabilities = hello.capabilities;
    att.batches = (hello.features ?? []).includes(FRAME_BATCH_FEATURE);
    ws.serializeAttachment(att);
    if (this.muxSocket === ws) this.batcher!.enabled = att.batches;
    for (const wake of this.waiters) wake();
  }

  /** Resolves with the ready socket once the agent (re)connects and says hello, or null after `ms`. */
  waitForReady(ms: number): Promise<WebSocket | null> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.ready());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        resolve(null);
      }, ms);
      this.waiters.add(done);
    });
  }

  /** When the agent last showed it is alive: its last heartbeat (answered without waking us), or its connection. */
  lastContact(ws: WebSocket): number {
    const ping = this.state.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
    return Math.max(ping, attachment(ws)?.connectedAt ?? 0);
  }

  /** The stream mux of `ws` (made on first use: each socket has its own, stale ids die with the old one). */
  muxFor(ws: WebSocket): StreamMux {
    if (this.mux && this.muxSocket === ws) return this.mux;
    this.dropMux('replaced by a newer connection');
    this.muxSocket = ws;
    // Small frames of one turn share a message (see batch.ts) once the agent said it reads them.
    this.batcher = new FrameBatcher({
      send: (message) => ws.send(message),
      schedule: (flush) => setTimeout(flush, 0),
      enabled: attachment(ws)?.batches === true,
      onError: (message) => this.options.onBadFrame(message),
    });
    this.mux = new StreamMux(this.batcher, {
      side: 'hub',
      onOpen: (stream, open) => this.options.onStream(stream, open),
      onError: (message) => this.options.onBadFrame(message),
    });
    return this.mux;
  }

  /** `ws` went away: its streams end. True when no other agent socket is left (the agent is gone). */
  gone(ws: WebSocket, why: string): boolean {
    try {
      ws.close(1000, 'closing');
    } catch {
      // already closed
    }
    if (this.muxSocket === ws) this.dropMux(`the device connection ${why}`);
    const others = this.state.getWebSockets(AGENT_TAG).some((s) => s !== ws && s.readyState === WebSocket.OPEN);
    if (!others) this.goneAt = Date.now();
    return !others;
  }

  send(ws: WebSocket, msg: HubMessage): void {
    ws.send(JSON.stringify(msg));
  }

  /** Says bye (so the agent can log why), then closes. */
  close(ws: WebSocket, code: number, reason: string): void {
    try {
      this.send(ws, { t: 'bye', code: String(code), reason });
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  private dropMux(reason: string): void {
    this.mux?.resetAll(ResetCode.SOCKET_CLOSED, reason);
    this.mux = null;
    this.muxSocket = null;
    this.batcher = null;
  }

  /** A live connection was replaced: count it, keep the addresses, and tell D1 and the log. */
  private async recordReplacement(deviceId: string, replaced: WebSocket[], address: string, now: number): Promise<void> {
    const previous = await this.state.storage.get<IdentityConflictRecord>('identityConflict');
    const record: IdentityConflictRecord =
      previous && now - previous.last_at < CONFLICT_WINDOW_MS ? { ...previous, last_at: now } : { replacements: 0, first_at: now, last_at: now, addresses: [] };
    record.replacements += replaced.length;
    const seen = replaced.map((ws) => attachment(ws)?.address ?? 'unknown');
    for (const a of [...seen, address]) record.addresses = [...record.addresses.filter((x) => x !== a), a];
    record.addresses = record.addresses.slice(-CONFLICT_ADDRESSES);
    await this.state.storage.put('identityConflict', record);
    await this.db.prepare('UPDATE devices SET identity_conflict = ?1 WHERE id = ?2').bind(JSON.stringify(record), deviceId).run();
    console.warn(
      `DeviceHub: device ${deviceId}: a connection from ${address} replaced a live one from ${seen.join(', ')} ` +
        `(${record.replacements} since ${new Date(record.first_at).toISOString()}); if this repeats, two agents share this identity (a copied config?)`,
    );
  }
}

export function attachment(ws: WebSocket): AgentAttachment | null {
  return ws.deserializeAttachment() as AgentAttachment | null;
}
