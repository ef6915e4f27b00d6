// Turns a FleetHub watcher socket into a Server-Sent Events body. The Worker holds the socket,
// not the hub, so the hub can hibernate between events; the per-reader bound lives here too: the
// body's queue counts the bytes the reader has not taken yet, and a reader whose backlog passes
// the bound gets `event: dropped` and the end of the stream instead of more memory. The hub
// never waits for a reader, so a slow one slows neither the hub nor the other readers.
import { StreamMessageSchema, type StreamMessage } from '../../shared/api/stream.ts';

export interface SseOptions {
  heartbeatMs: number;
  bufferBytes: number;
  /** The reconnect delay the client is told to use (the SSE `retry:` field). */
  retryMs: number;
}

const encoder = new TextEncoder();

/** One SSE message for one stream message; null for what readers are not sent. */
function sseOf(m: StreamMessage): string | null {
  switch (m.t) {
    case 'event':
      return `id: ${m.id}\nevent: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`;
    case 'gap':
      // Carries the id to resume from, so a reconnect after the gap does not report it again.
      return `id: ${m.id}\nevent: gap\ndata: {}\n\n`;
    case 'dropped':
      return `event: dropped\ndata: ${JSON.stringify({ reason: m.reason })}\n\n`;
    case 'error':
      return null;
  }
}

export function sseFromWatcher(ws: WebSocket, opts: SseOptions): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  let heartbeat: ReturnType<typeof setInterval> | undefined;

  const end = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    try {
      ws.close(1000, 'the reader went away');
    } catch {
      // already closed
    }
    try {
      controller.close();
    } catch {
      // cancelled
    }
  };
  const push = (text: string) => {
    if (!open) return;
    if ((controller.desiredSize ?? 0) <= 0) {
      const reason = `the reader fell more than ${opts.bufferBytes} bytes behind`;
      controller.enqueue(encoder.encode(`event: dropped\ndata: ${JSON.stringify({ reason })}\n\n`));
      return end();
    }
    controller.enqueue(encoder.encode(text));
  };

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        push(`retry: ${opts.retryMs}\n\n`);
        ws.addEventListener('message', (e) => {
          let parsed: unknown = null;
          try {
            parsed = typeof e.data === 'string' ? JSON.parse(e.data) : null;
          } catch {
            // logged below
          }
          const m = StreamMessageSchema.safeParse(parsed);
          if (!m.success) return console.warn(`stream: the FleetHub sent an unreadable message: ${String(e.data).slice(0, 200)}`);
          const text = sseOf(m.data);
          if (text) push(text);
          if (m.data.t === 'dropped') end();
        });
        // The hub went away (a restart, a deploy): the client reconnects with Last-Event-ID.
        ws.addEventListener('close', end);
        ws.addEventListener('error', end);
        heartbeat = setInterval(() => push(': heartbeat\n\n'), opts.heartbeatMs);
      },
      cancel: end,
    },
    { highWaterMark: opts.bufferBytes, size: (chunk) => chunk.byteLength },
  );
}
