// A minimal Server-Sent Events reader over node:http for the stream tests and the benchmark: it
// keeps every message and comment as it arrives, can stop reading (pause: the kernel's buffers
// fill and the relay sees a slow reader), and costs one socket and a few objects per reader, so a
// benchmark can hold a thousand of them from one process.
import { request, type IncomingMessage, type ClientRequest } from 'node:http';

export interface SseMessage {
  id?: string;
  event: string;
  data: string;
  /** When this process read it (Date.now()). */
  at: number;
}

export interface SseReader {
  status: number;
  headers: IncomingMessage['headers'];
  messages: SseMessage[];
  comments: string[];
  retry: number | null;
  /** Set once the relay ended the stream. */
  ended: boolean;
  /** Set once this side closed it. */
  closed: boolean;
  /** Called for every message as it is parsed. */
  onMessage?: (m: SseMessage) => void;
  pause(): void;
  resume(): void;
  close(): void;
  /** The body, for answers that are not a stream (errors). */
  text(): Promise<string>;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let buf = '';
      const reader: SseReader = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages: [],
        comments: [],
        retry: null,
        ended: false,
        closed: false,
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => {
          reader.closed = true;
          req.destroy();
        },
        text: () =>
          new Promise((r) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => r(body));
          }),
      };
      if (!String(res.headers['content-type']).startsWith('text/event-stream')) return resolve(reader);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let start = 0;
        let end: number;
        // One pass over what arrived; the unfinished tail waits for the next chunk.
        while ((end = buf.indexOf('\n\n', start)) >= 0) {
          const block = buf.slice(start, end);
          start = end + 2;
          const m: SseMessage = { event: 'message', data: '', at: Date.now() };
          let isMessage = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) reader.comments.push(line.slice(1).trim());
            else {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'retry') reader.retry = Number(value);
              else if (field === 'id') m.id = value;
              else if (field === 'event') m.event = value;
              else if (field === 'data') m.data = m.data ? `${m.data}\n${value}` : value;
              isMessage ||= field === 'id' || field === 'event' || field === 'data';
            }
          }
          if (isMessage) {
            reader.messages.push(m);
            reader.onMessage?.(m);
          }
        }
        buf = buf.slice(start);
      });
      res.on('end', () => (reader.ended = true));
      res.on('error', () => (reader.ended = true));
      resolve(reader);
    });
    req.end();
  });
}
