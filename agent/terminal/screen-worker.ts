// The terminal emulator's thread. Parsing a flood of output costs as much as carrying it (both run
// at ~60 MB/s on a Pi-class core), so the sessions' screens (@xterm/headless with its serialize
// addon) live here, on a second core, while the agent's main thread reads the PTYs and writes the
// socket. One thread serves every session of the agent; screen.ts starts it with the first
// session and ends it with the last. The messages between the threads are this file's types: the
// main thread posts each screen's output in order with its resizes and its snapshot requests, and
// this thread answers with how far it has parsed (so the session's flow control can count the
// bytes still waiting) and with the serialized screens.
import { SerializeAddon } from '@xterm/addon-serialize';
import { Terminal } from '@xterm/headless';

/** Lines of scrollback kept and replayed. */
export const SCROLLBACK = 1000;
/** Parsing is reported at least this often (in bytes) while output keeps coming, and whenever the thread caught up. */
export const MARK_EVERY = 64 * 1024;
/** A full reset, then the serialized state: the viewer's screen ends up exactly as ours. */
const RESET = '\x1bc';

export type ToScreenThread =
  | { t: 'open'; id: number; cols: number; rows: number }
  /** Output; `end` counts every byte fed to this screen up to the end of `data`; `ack`: report its parsing whatever the mark. */
  | { t: 'feed'; id: number; data: Uint8Array; end: number; ack: boolean }
  | { t: 'resize'; id: number; cols: number; rows: number }
  /** The screen serialized once everything posted before it is parsed. */
  | { t: 'snapshot'; id: number; req: number }
  | { t: 'close'; id: number };

export type FromScreenThread =
  | { t: 'parsed'; id: number; at: number }
  | { t: 'snapshot'; id: number; req: number; cols: number; rows: number; data: Uint8Array }
  | { t: 'failed'; message: string };

interface Kept {
  term: Terminal;
  serializer: SerializeAddon;
  /** The `end` of the last feed received, and of the last one reported parsed. */
  received: number;
  reported: number;
}

const encoder = new TextEncoder();
const screens = new Map<number, Kept>();
const port = globalThis as unknown as { onmessage: ((e: MessageEvent<ToScreenThread>) => void) | null; postMessage(m: FromScreenThread, transfer?: Transferable[]): void };

function open(id: number, cols: number, rows: number): void {
  const term = new Terminal({ cols, rows, scrollback: SCROLLBACK, allowProposedApi: true, logLevel: 'off' });
  const serializer = new SerializeAddon();
  // The addon is typed against @xterm/xterm's Terminal; the headless one has the same API it uses.
  term.loadAddon(serializer as unknown as Parameters<Terminal['loadAddon']>[0]);
  screens.set(id, { term, serializer, received: 0, reported: 0 });
}

function feed(id: number, s: Kept, data: Uint8Array, end: number, ack: boolean): void {
  s.received = end;
  s.term.write(data, () => {
    if (ack || end === s.received || end - s.reported >= MARK_EVERY) {
      s.reported = end;
      port.postMessage({ t: 'parsed', id, at: end });
    }
  });
}

function snapshot(id: number, s: Kept, req: number): void {
  s.term.write('', () => {
    const data = encoder.encode(RESET + s.serializer.serialize({ scrollback: SCROLLBACK }));
    const reply: FromScreenThread = { t: 'snapshot', id, req, cols: s.term.cols, rows: s.term.rows, data };
    port.postMessage(reply, [data.buffer]);
  });
}

port.onmessage = ({ data: m }) => {
  try {
    if (m.t === 'open') return open(m.id, m.cols, m.rows);
    const s = screens.get(m.id);
    if (!s) return;
    switch (m.t) {
      case 'feed':
        return feed(m.id, s, m.data, m.end, m.ack);
      case 'resize':
        // In order with the output: bytes posted before it are parsed at the old size.
        return void s.term.write('', () => s.term.resize(m.cols, m.rows));
      case 'snapshot':
        return snapshot(m.id, s, m.req);
      case 'close':
        screens.delete(m.id);
        return s.term.dispose();
    }
  } catch (e) {
    // The main thread restarts the thread (every screen blank) rather than wait on it forever.
    port.postMessage({ t: 'failed', message: e instanceof Error ? e.message : String(e) });
  }
};
