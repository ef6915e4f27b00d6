// Watcher sockets: readers of a hub's events (device status now; metrics, logs later), accepted
// hibernatably with the tags ['watch', ...topics] so the agent's socket and theirs never mix
// (fan-out asks the runtime for the sockets of one topic). Each event gets an id from a counter in
// storage, and the last events stay in a bounded replay window, so a watcher that reconnects with
// the last id it saw misses nothing (or is told {"t":"gap"} when that id fell out of the window).
//
// A slow watcher must not hold the hub: workerd's server-side WebSocket exposes no bufferedAmount
// and send() never blocks, so the hub cannot see a socket's backlog. The bound is counted instead:
// a watcher acknowledges what it has handled ({"t":"ack","n":events}, like the TCP client's
// ?flow=ack), and one with more than WATCHER_WINDOW events unacknowledged is told
// {"t":"dropped","reason"} and closed. The count lives in the socket's attachment, so it survives
// hibernation. Anything else a watcher sends is refused with a reason and counted; nothing it
// sends reaches the agent's handlers.
import { z } from 'zod';
import type { WatchRequest } from './contract.ts';

export const WATCH_TAG = 'watch';
/** Events a watcher may hold unacknowledged before it is dropped. */
export const WATCHER_WINDOW = 256;
/** The replay window: the last this many events, none older than REPLAY_MAX_AGE_MS. */
export const REPLAY_EVENTS = 256;
export const REPLAY_MAX_AGE_MS = 60 * 60_000;
/** Close code for a watcher that fell too far behind (the WebSocket "try again later"). */
const DROPPED_CLOSE = 1013;

const EVENTS_KEY = 'watchers:events';
const NEXT_ID_KEY = 'watchers:next-id';

export interface HubEvent {
  id: string;
  topic: string;
  /** The SSE event name, e.g. 'status'. */
  event: string;
  data: unknown;
  at: number;
}

interface WatcherAttachment {
  /** Events sent and not yet acknowledged. */
  unacked: number;
}

/** What a watcher may send: acknowledgements only. */
const WatcherMessageSchema = z.object({ t: z.literal('ack'), n: z.number().int().positive().max(2 ** 31) }).strict();

export interface WatcherCounters {
  watchers: number;
  /** Malformed or unexpected watcher messages refused since this instance started. */
  refused: number;
  /** Watchers dropped for falling behind since this instance started. */
  dropped: number;
}

export class Watchers {
  private refused = 0;
  private dropped = 0;
  private events: HubEvent[] | null = null;

  constructor(
    private readonly state: DurableObjectState,
    /** Topics some capability publishes to; a watcher may ask for these only. */
    private readonly topics: ReadonlySet<string>,
  ) {}

  /** Whether a socket is a watcher's (by its tag). */
  isWatcher(ws: WebSocket): boolean {
    return this.state.getTags(ws)[0] === WATCH_TAG;
  }

  /** Accepts a watcher's upgrade: replay what it missed, then live events. */
  async accept(request: WatchRequest): Promise<Response> {
    const unknown = request.topics.find((t) => !this.topics.has(t));
    if (unknown) return Response.json({ error: `no topic ${unknown}`, code: 'UNKNOWN_TOPIC', details: { topics: [...this.topics] } }, { status: 400 });
    const pair = new WebSocketPair();
    const server = pair[1];
    this.state.acceptWebSocket(server, [WATCH_TAG, ...new Set(request.topics)]);
    server.serializeAttachment({ unacked: 0 } satisfies WatcherAttachment);
    if (request.after != null) {
      const events = await this.window();
      const after = Number(request.after);
      const first = events[0];
      const next = Number((await this.state.storage.get<number>(NEXT_ID_KEY)) ?? 1);
      // A gap: events after `after` were published and some are no longer in the window.
      if (after < next - 1 && (!first || Number(first.id) > after + 1)) server.send('{"t":"gap"}');
      const wanted = new Set(request.topics);
      for (const e of events) if (Number(e.id) > after && wanted.has(e.topic)) this.deliver(server, e);
    }
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Gives the event an id, keeps it for replay, and sends it to the topic's watchers. */
  async publish(topic: string, event: string, data: unknown, now = Date.now()): Promise<HubEvent> {
    const id = (await this.state.storage.get<number>(NEXT_ID_KEY)) ?? 1;
    const e: HubEvent = { id: String(id), topic, event, data, at: now };
    const events = (await this.window()).filter((x) => now - x.at < REPLAY_MAX_AGE_MS);
    events.push(e);
    this.events = events.slice(-REPLAY_EVENTS);
    await this.state.storage.put({ [NEXT_ID_KEY]: id + 1, [EVENTS_KEY]: this.events });
    for (const ws of this.state.getWebSockets(topic)) this.deliver(ws, e);
    return e;
  }

  /** A watcher's message: an ack, or refused (counted, with the reason sent back). */
  onMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (typeof message !== 'string') return this.refuse(ws, 'watchers send text messages only');
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      return this.refuse(ws, 'not JSON');
    }
    const msg = WatcherMessageSchema.safeParse(raw);
    if (!msg.success) return this.refuse(ws, `a watcher sends only {"t":"ack","n":events}: ${msg.error.issues[0]?.message ?? 'invalid'}`);
    const att = ws.deserializeAttachment() as WatcherAttachment;
    if (msg.data.n > att.unacked) return this.refuse(ws, `acknowledged ${msg.data.n} events with only ${att.unacked} unacknowledged`);
    att.unacked -= msg.data.n;
    ws.serializeAttachment(att);
  }

  counters(): WatcherCounters {
    return { watchers: this.state.getWebSockets(WATCH_TAG).length, refused: this.refused, dropped: this.dropped };
  }

  private deliver(ws: WebSocket, e: HubEvent): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    const att = ws.deserializeAttachment() as WatcherAttachment;
    if (att.unacked >= WATCHER_WINDOW) {
      this.dropped++;
      close(ws, DROPPED_CLOSE, JSON.stringify({ t: 'dropped', reason: `more than ${WATCHER_WINDOW} events unacknowledged` }));
      return;
    }
    att.unacked++;
    ws.serializeAttachment(att);
    try {
      ws.send(JSON.stringify({ t: 'event', id: e.id, event: e.event, data: e.data }));
    } catch {
      // closing already: its close event cleans up
    }
  }

  private refuse(ws: WebSocket, reason: string): void {
    this.refused++;
    console.warn(`DeviceHub: refused watcher message #${this.refused}: ${reason}`);
    try {
      ws.send(JSON.stringify({ t: 'refused', reason }));
    } catch {
      // closing already
    }
  }

  private async window(): Promise<HubEvent[]> {
    this.events ??= (await this.state.storage.get<HubEvent[]>(EVENTS_KEY)) ?? [];
    return this.events;
  }
}

/** Tells the watcher why (as a last message), then closes it. */
function close(ws: WebSocket, code: number, last: string): void {
  try {
    ws.send(last);
    ws.close(code, 'dropped');
  } catch {
    // already closed
  }
}
