// Turns a hub's watcher socket (or several: a log stream follows one per device, a device's
// metrics stream the FleetHub's and the device hub's) into a Server-Sent Events body; status and
// metrics events are rendered here, others by the route's `render` (which also renders the events
// of a stream whose ids the route composes, `idOf`).
// The Worker holds the socket, not the hub, so the hub can hibernate between events; the
// per-reader bound lives here too: the body's queue counts the bytes the reader has not taken
// yet, and a reader whose backlog passes the bound gets `event: dropped` and the end of the
// stream instead of more memory. The hub never waits for a reader, so a slow one slows neither
// the hub nor the other readers.
// The hub bounds its watcher sockets by acks (hub/watchers.ts): the bridge acknowledges each
// event once it is in the body's queue (whose own bound is the one that matters for the reader),
// in batches so a burst costs the hub a few messages, not one per event.
// When the hub closes the socket the stream ends, and the client reconnects with Last-Event-ID: after
// a restart of the hub, or after the caller's access changed or their credential was revoked
// (ACCESS_CHANGED, said in a comment first), when the reconnect is filtered by what the caller may
// see now. The stream ends when its credential expires (`: credential expired`): by its own timer,
// so the end does not wait for the hub's alarm, or when the hub closes it for that first.
import { z } from 'zod';
import { EventIdSchema, StreamMessageSchema, type StreamAck, type StreamMessage } from '../../shared/api/stream.ts';
import { StreamCloseCode } from '../../shared/codes.ts';

export interface SseOptions {
  heartbeatMs: number;
  bufferBytes: number;
  /** The reconnect delay the client is told to use (the SSE `retry:` field). */
  retryMs: number;
  /** When the stream's credential expires (ms): the stream ends then. Null if it does not. */
  expiresAt: number | null;
  /** SSE text the reader gets first, after `retry:` (a resumed log stream's missed lines). */
  prelude?: string;
  /**
   * The SSE text of a hub's event, for a stream whose events are not status events (the log
   * stream splits a batch into lines and filters them); null sends the reader nothing.
   */
  render?: (event: WatcherEvent, socket: number) => string | null;
  /**
   * For a stream merging several hubs' sequences (GET /api/v1/stream with agent_id): the id the
   * reader is given for socket `socket`'s event or gap id (hubs number their events each on its
   * own, so the route folds them into one composite id it can split again on resume).
   */
  idOf?: (socket: number, id: string) => string;
}

const encoder = new TextEncoder();
/** Events acknowledged in one ack at most; far inside STREAM_WINDOW, so the hub never drops a bridge that keeps up. */
const ACK_BATCH = 32;
/** The longest delay setTimeout takes (about 24.8 days; a longer one fires at once): later expiries wait in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const CREDENTIAL_EXPIRED = ': credential expired\n\n';

/** One SSE message for one stream message; null for what readers are not sent. */
function sseOf(m: StreamMessage, id: (id: string) => string): string | null {
  switch (m.t) {
    case 'event':
      return `id: ${id(m.id)}\nevent: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`;
    case 'gap':
      // Carries the id to resume from, so a reconnect after the gap does not report it again.
      return `id: ${id(m.id)}\nevent: gap\ndata: {}\n\n`;
    case 'dropped':
      return `event: dropped\ndata: ${JSON.stringify({ reason: m.reason })}\n\n`;
    case 'error':
      return null;
  }
}

/** A watcher event as any hub topic sends it, for a bridge that renders its own (see SseOptions.render). */
const AnyEventSchema = z.object({ t: z.literal('event'), id: EventIdSchema, event: z.string(), data: z.record(z.string(), z.unknown()) });
export type WatcherEvent = z.infer<typeof AnyEventSchema>;

export function sseFromWatcher(ws: WebSocket, opts: SseOptions): ReadableStream<Uint8Array> {
  return sseFromWatchers([ws], opts);
}

/**
 * The bridge over several watcher sockets at once (a log stream of many devices), each acked on
 * its own; the stream ends when any of them closes, so a reconnect is authorized and filtered
 * anew, as with one.
 */
export function sseFromWatchers(sockets: readonly WebSocket[], opts: SseOptions): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let expiry: ReturnType<typeof setTimeout> | undefined;
  /** Events queued for the reader and not yet acknowledged to the hub, by socket. */
  const unacked = new Map<WebSocket, number>(sockets.map((ws) => [ws, 0]));
  let ackLater: ReturnType<typeof setTimeout> | undefined;

  const ack = () => {
    clearTimeout(ackLater);
    ackLater = undefined;
    if (!open) return;
    for (const [ws, n] of unacked) {
      if (n === 0) continue;
      const msg: StreamAck = { t: 'ack', n };
      unacked.set(ws, 0);
      try {
        ws.send(JSON.stringify(msg));
      } catch {
        // the hub socket is closing: its close event ends the stream
      }
    }
  };
  const end = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    clearTimeout(ackLater);
    clearTimeout(expiry);
    for (const ws of sockets) {
      try {
        ws.close(1000, 'the reader went away');
      } catch {
        // already closed
      }
    }
    try {
      controller.close();
    } catch {
      // cancelled
    }
  };

  /** Queues text for the reader; false if the stream is over (or ends now, the reader being too far behind). */
  const push = (text: string): boolean => {
    if (!open) return false;
    if ((controller.desiredSize ?? 0) <= 0) {
      const reason = `the reader fell more than ${opts.bufferBytes} bytes behind`;
      controller.enqueue(encoder.encode(`event: dropped\ndata: ${JSON.stringify({ reason })}\n\n`));
      end();
      return false;
    }
    controller.enqueue(encoder.encode(text));
    return true;
  };
  /** Ends the stream once the credential's expiry has passed (checked again after each timer step). */
  const endAtExpiry = () => {
    if (opts.expiresAt === null) return;
    const left = opts.expiresAt - Date.now();
    if (left > 0) {
      expiry = setTimeout(endAtExpiry, Math.min(left, MAX_TIMER_MS));
      return;
    }
    push(CREDENTIAL_EXPIRED);
    end();
  };

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        push(`retry: ${opts.retryMs}\n\n`);
        if (opts.prelude) push(opts.prelude);
        for (const [index, ws] of sockets.entries()) {
          const idOf = opts.idOf ? (id: string) => opts.idOf!(index, id) : (id: string) => id;
          ws.addEventListener('message', (e) => {
            let parsed: unknown = null;
            try {
              parsed = typeof e.data === 'string' ? JSON.parse(e.data) : null;
            } catch {
              // logged below
            }
            const own = opts.render && (parsed as { t?: unknown } | null)?.t === 'event' ? AnyEventSchema.safeParse(parsed) : null;
            const m = own ?? StreamMessageSchema.safeParse(parsed);
            if (!m.success) return console.warn(`stream: a hub sent an unreadable message: ${String(e.data).slice(0, 200)}`);
            const text = own?.success ? opts.render!(own.data, index) : sseOf(m.data as StreamMessage, idOf);
            // An event the reader is not sent (filtered out) is handled all the same, and acknowledged.
            const queued = text === null ? open : push(text);
            if (m.data.t === 'dropped') return end();
            if (m.data.t !== 'event' || !queued) return;
            // The rest of a burst arrives before the timer fires: one ack for all of it.
            const n = (unacked.get(ws) ?? 0) + 1;
            unacked.set(ws, n);
            if (n >= ACK_BATCH) ack();
            else ackLater ??= setTimeout(ack, 0);
          });
          // The hub went away (a restart, a deploy) or closed the socket: the client reconnects with Last-Event-ID.
          ws.addEventListener('close', (e) => {
            if (e.code === StreamCloseCode.ACCESS_CHANGED) push(': access changed\n\n');
            else if (e.code === StreamCloseCode.CREDENTIAL_EXPIRED) push(CREDENTIAL_EXPIRED);
            end();
          });
          ws.addEventListener('error', end);
        }
        heartbeat = setInterval(() => push(': heartbeat\n\n'), opts.heartbeatMs);
        endAtExpiry();
      },
      cancel: end,
    },
    { highWaterMark: opts.bufferBytes, size: (chunk) => chunk.byteLength },
  );
}
