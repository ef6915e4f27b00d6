// What the terminal's end-to-end tests and benchmark need to act as a browser's terminal page
// without the dashboard's code: a link from the API (its token read from the URL's fragment), a
// viewer on the terminal socket that keeps every byte and control message it is sent and acks
// output as a page does, and a screen (@xterm/headless) fed those bytes to compare what two
// viewers see. Also what a test asks the device's /proc about its processes.
import { readFileSync } from 'node:fs';
import { WebSocket } from 'undici';
import { createRequire } from 'node:module';
import { TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX } from '../../shared/api/terminal.ts';
import { http } from './harness.ts';

// @xterm/headless is CommonJS whose named exports Node's ESM loader (tsx, the benchmark) cannot see.
const { Terminal } = createRequire(import.meta.url)('@xterm/headless') as typeof import('@xterm/headless');

export interface Link {
  terminal_url: string;
  device_id: string;
  session: string | null;
  expires_at: string;
  /** The token, from the URL's fragment. */
  token: string;
}

/** GET /api/v1/devices/{id}/terminal[?session=], as the key's user; throws unless 200. */
export async function terminalLink(url: string, key: string, deviceId: string, session?: string): Promise<Link> {
  const r = await http(`${url}/api/v1/devices/${deviceId}/terminal${session ? `?session=${session}` : ''}`, { key });
  if (r.status !== 200) throw new Error(`GET terminal link: ${r.status} ${JSON.stringify(r.body)}`);
  const token = new URL(r.body.terminal_url).hash.slice(1);
  return { ...r.body, token };
}

export const socketUrl = (url: string, deviceId: string, cols = 80, rows = 24) =>
  `${url.replace(/^http/, 'ws')}/api/v1/devices/${deviceId}/terminal/socket?cols=${cols}&rows=${rows}`;

export const protocolsFor = (token: string) => [TERMINAL_SUBPROTOCOL, `${TERMINAL_TOKEN_PROTOCOL_PREFIX}${token}`];

const concat = (parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

export class Viewer {
  /** Every binary message, in order. */
  readonly chunks: Uint8Array[] = [];
  /** Every text message, parsed. */
  readonly controls: any[] = [];
  /** The size of the largest message (binary or text) received. */
  largest = 0;
  received = 0;
  closed: { code: number; reason: string } | null = null;
  /** Acks output as it arrives (a page acks what it wrote to its screen); off: the viewer stalls. */
  acking = true;
  /** Keeps the bytes (off: a benchmark's flood is only counted, and seen by onBytes). */
  keep = true;
  private unacked = 0;
  private waiters = new Set<() => void>();
  onBytes?: (b: Uint8Array) => void;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        this.largest = Math.max(this.largest, Buffer.byteLength(e.data));
        try {
          this.controls.push(JSON.parse(e.data));
        } catch {
          this.controls.push({ t: 'unparsable', text: e.data });
        }
      } else {
        const b = new Uint8Array(e.data as ArrayBuffer);
        this.largest = Math.max(this.largest, b.length);
        this.received += b.length;
        if (this.keep) this.chunks.push(b);
        this.onBytes?.(b);
        this.unacked += b.length;
        if (this.acking) this.ack();
      }
      for (const w of this.waiters) w();
    };
    ws.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason };
      for (const w of this.waiters) w();
    };
  }

  /** Opens the socket with a token (a link's or a resume token) and waits for `attached`. */
  static async open(wsUrl: string, token: string, opts: { waitAttached?: boolean; keep?: boolean } = {}): Promise<Viewer> {
    const ws = new WebSocket(wsUrl, protocolsFor(token));
    const v = new Viewer(ws);
    v.keep = opts.keep ?? true;
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('the terminal socket did not open'));
    });
    if (opts.waitAttached !== false) await v.control('attached');
    return v;
  }

  ack() {
    if (this.unacked > 0 && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ t: 'ack', n: this.unacked }));
      this.unacked = 0;
    }
  }

  get bytes(): Buffer {
    return concat(this.chunks);
  }

  get text(): string {
    return this.bytes.toString('utf8');
  }

  get attached(): any {
    return this.controls.find((c) => c.t === 'attached');
  }

  /** The latest resume token the hub sent. */
  get resumeToken(): string | undefined {
    return this.controls.filter((c) => c.t === 'resume').at(-1)?.token;
  }

  /** Keystrokes: a binary message. */
  type(s: string | Uint8Array) {
    this.ws.send(typeof s === 'string' ? new TextEncoder().encode(s) : s);
  }

  send(control: unknown) {
    this.ws.send(JSON.stringify(control));
  }

  /** Resolves when `ok()` holds, re-checked on every message; rejects after timeoutMs. */
  until<T>(what: string, ok: () => T | undefined | null | false, timeoutMs = 20_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let v: T | undefined | null | false;
        try {
          v = ok();
        } catch (e) {
          this.waiters.delete(check);
          clearTimeout(t);
          reject(e);
          return;
        }
        if (v) {
          this.waiters.delete(check);
          clearTimeout(t);
          resolve(v);
        }
      };
      const t = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last output ${JSON.stringify(this.text.slice(-300))}, controls ${JSON.stringify(this.controls.slice(-5).map((c) => c.t + (c.code ? `:${c.code}` : '')))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** The first control message of type `t` after the `from`th (default: any). */
  control(t: string, from = 0, timeoutMs = 20_000): Promise<any> {
    return this.until(`a ${t} message`, () => this.controls.slice(from).find((c) => c.t === t), timeoutMs);
  }

  /** Waits until the output after byte `from`, as plainText, matches. */
  output(pattern: RegExp | string, from = 0, timeoutMs = 20_000): Promise<string> {
    return this.until(`output ${pattern}`, () => {
      const s = plainText(this.bytes.subarray(from));
      return (typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s)) ? s : null;
    }, timeoutMs);
  }

  /** Waits until no output came for `quietMs`. */
  async settle(quietMs = 400, timeoutMs = 20_000) {
    const until = Date.now() + timeoutMs;
    let last = this.received;
    for (;;) {
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.received === last) return;
      last = this.received;
      if (Date.now() > until) throw new Error('the output never settled');
    }
  }

  /** Closes the socket (the viewer goes away; the session stays) and waits for it to be closed. */
  async drop() {
    if (this.closed) return;
    const done = this.until('the socket to close', () => this.closed);
    this.ws.close(1000);
    await done;
  }
}

/**
 * Output as text to match against: escape sequences (a shell's bracketed-paste toggles, colours,
 * cursor moves) removed and every line end (\r\n, a lone \r) made one \n.
 */
export function plainText(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('utf8')
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '')
    .replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, '')
    .replace(/\x1b[()#%][0-9A-Za-z@]/g, '')
    .replace(/\x1b[=>cDEHMNOPZ78]/g, '')
    .replace(/\r*\n|\r/g, '\n');
}

/** The visible screen of `cols`×`rows` after writing `bytes` to a headless xterm, one string a line, and the cursor. */
export async function screenOf(bytes: Uint8Array, cols: number, rows: number): Promise<{ lines: string[]; cursor: [number, number]; alternate: boolean }> {
  const term = new Terminal({ cols, rows, allowProposedApi: true, scrollback: 1000 });
  await new Promise<void>((r) => term.write(bytes, r));
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) lines.push(buf.getLine(buf.viewportY + i)?.translateToString(true) ?? '');
  const out = { lines, cursor: [buf.cursorX, buf.cursorY] as [number, number], alternate: buf.type === 'alternate' };
  term.dispose();
  return out;
}

/** Whether a process is gone (or a zombie nobody reaped yet). */
export function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return true;
  }
}

/** pid's parent, from /proc. */
export function parentOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
}
