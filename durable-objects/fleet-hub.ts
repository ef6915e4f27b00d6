// FleetHub: one Durable Object per account for now (named 'fleet'; per team once teams exist) that
// device hubs publish status changes to. It holds the fleet's watchers, so one dashboard tab (or
// one SSE reader, through the Worker) costs one socket whatever the fleet size, and the replay
// window that Last-Event-ID resumes from. Only the Worker reaches its fetch, with a caller it has
// already authenticated and the watch request in WATCH_HEADER.
import { DurableObject } from 'cloudflare:workers';
import { StatusEventSchema, type StatusEvent, type StreamMessage } from '../shared/api/stream.ts';
import { HEARTBEAT_PING, HEARTBEAT_PONG } from '../shared/protocol/envelope.ts';
import { WATCH_HEADER, Watchers, WatchSchema } from './fleet/watchers.ts';

export interface FleetStats {
  watchers: number;
  lastId: string;
  /** Messages watchers sent that the stream does not take. */
  refused: number;
}

const REFUSED_KEY = 'refused';

export class FleetHub extends DurableObject<Env> {
  private watchers: Watchers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.watchers = new Watchers(ctx);
    // A dashboard keeps its socket alive with the agents' ping without waking the hub.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 });
    let raw: unknown = null;
    try {
      raw = JSON.parse(request.headers.get(WATCH_HEADER) ?? 'null');
    } catch {
      // refused below
    }
    const watch = WatchSchema.safeParse(raw);
    if (!watch.success) return new Response(`bad ${WATCH_HEADER}: ${watch.error.issues[0]?.message}`, { status: 400 });
    const pair = new WebSocketPair();
    this.watchers.accept(pair[1], watch.data);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  // ---- methods device hubs and the Worker call through the stub ----

  /** A device went online or offline: give the event its id and send it to the watchers; null if it is not a status event. */
  async publish(event: StatusEvent): Promise<string | null> {
    const parsed = StatusEventSchema.safeParse(event);
    if (!parsed.success) {
      console.warn(`FleetHub: refused an event that is not a status event: ${parsed.error.issues[0]?.message}`);
      return null;
    }
    return this.watchers.publish('status', parsed.data);
  }

  async stats(): Promise<FleetStats> {
    return { watchers: this.watchers.count(), lastId: String(this.watchers.lastId()), refused: this.ctx.storage.kv.get<number>(REFUSED_KEY) ?? 0 };
  }

  // ---- watcher sockets ----

  /** Watchers only listen: whatever they send is refused (with the reason) and counted. */
  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const refused = (this.ctx.storage.kv.get<number>(REFUSED_KEY) ?? 0) + 1;
    this.ctx.storage.kv.put(REFUSED_KEY, refused);
    const what = typeof message === 'string' ? message.slice(0, 100) : `${message.byteLength} binary bytes`;
    console.warn(`FleetHub: refused watcher message #${refused}: ${what}`);
    const reply: StreamMessage = { t: 'error', code: 'UNEXPECTED_MESSAGE', reason: 'this stream takes no messages (only {"t":"ping"}, answered with {"t":"pong"})' };
    try {
      ws.send(JSON.stringify(reply));
    } catch {
      // closing
    }
  }

  async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, 'closing');
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    try {
      ws.close(1011, 'socket error');
    } catch {
      // already closed
    }
  }
}
