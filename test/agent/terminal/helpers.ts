// Tools for the terminal tests: the agent's terminal capability behind a real StreamMux pair (the
// in-process loopback), the test playing the hub, and a viewer that speaks the terminal wire —
// records both ways, the control messages it was sent, and the output fed to its own
// @xterm/headless so a test can compare what it would show. Its reading can be paused, to play a
// browser tab that stopped reading.
import { SerializeAddon } from '@xterm/addon-serialize';
import { Terminal } from '@xterm/headless';
import { terminalCapability } from '../../../agent/terminal/index.ts';
import type { TerminalOptions } from '../../../agent/terminal/options.ts';
import type { TerminalSessions } from '../../../agent/terminal/sessions.ts';
import type { Logger } from '../../../agent/log.ts';
import { dispatchRpc } from '../../../agent/rpc.ts';
import type { MuxStream } from '../../../shared/protocol/mux.ts';
import type { TerminalAgentControl, TerminalOpen, TerminalViewerControl } from '../../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordKind } from '../../../shared/protocol/ws-records.ts';
import { loopback, sleep } from '../streams/helpers.ts';

export { sleep };

/** A bash without profiles, so its prompt and timing are the same on every machine. */
export const BASH: TerminalOptions = { command: ['/bin/bash', '--norc', '--noprofile', '-i'], idleMs: 600_000 };

export const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export async function until<T>(fn: () => T | undefined | null | false, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function rig(options: Partial<TerminalOptions> = {}, extra: { killGraceMs?: number } = {}) {
  let sessions: TerminalSessions | null = null;
  const cap = terminalCapability({ log: quiet, options: { ...BASH, ...options }, ...extra, onLoad: (s) => (sessions = s) });
  const flow = (id: string) => sessions!.flow(id)!;
  const link = loopback({ agent: { onOpen: (stream, open) => (open.kind === 'terminal' ? cap.streams!.terminal!(stream, open) : stream.reset('REFUSED')) } });
  let n = 0;
  const viewers: TestViewer[] = [];
  const open = async (o: { session?: string; user?: string; name?: string; may_share?: boolean; id?: string; cols?: number; rows?: number } = {}) => {
    const id = o.id ?? `viewer-${++n}-${Math.random().toString(36).slice(2, 8)}`;
    const user = o.user ?? 'owner-1';
    const spec: TerminalOpen = { kind: 'terminal', viewer: { id, user_id: user, name: o.name ?? user, may_share: o.may_share ?? false }, cols: o.cols ?? 80, rows: o.rows ?? 24, ...(o.session ? { session: o.session } : {}) };
    const v = new TestViewer(link.hub.open(spec), spec);
    viewers.push(v);
    await v.ready;
    return v;
  };
  const rpc = (method: string, params: unknown) => dispatchRpc(cap.rpc!, method, params);
  const cleanup = async () => {
    for (const v of viewers) v.stream.reset('CANCELLED');
    await cap.closeAll();
  };
  return { cap, link, open, rpc, cleanup, flow };
}

const decoder = new TextDecoder();

export class TestViewer {
  readonly controls: TerminalAgentControl[] = [];
  readonly records: { kind: 'text' | 'binary'; bytes: number }[] = [];
  output: Uint8Array[] = [];
  outputBytes = 0;
  status = 0;
  body = '';
  ended: 'fin' | string | null = null;
  readonly screen: Terminal;
  private readonly serializer = new SerializeAddon();
  private reading = true;
  private wake: (() => void) | null = null;
  readonly ready: Promise<void>;

  constructor(
    readonly stream: MuxStream,
    readonly spec: TerminalOpen,
  ) {
    this.screen = new Terminal({ cols: spec.cols || 80, rows: spec.rows || 24, scrollback: 1000, allowProposedApi: true, logLevel: 'off' });
    this.screen.loadAddon(this.serializer as unknown as Parameters<Terminal['loadAddon']>[0]);
    this.ready = stream.accepted.then(async (head) => {
      this.status = head.status ?? 0;
      if (head.status !== 200) {
        const reader = stream.readable.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          this.body += decoder.decode(value);
        }
        return;
      }
      void this.read();
    });
  }

  get text(): string {
    return decoder.decode(Buffer.concat(this.output));
  }

  /** The output received so far as one buffer. */
  get bytes(): Uint8Array {
    return Buffer.concat(this.output);
  }

  get attached() {
    const a = this.controls.find((c) => c.t === 'attached');
    if (!a || a.t !== 'attached') throw new Error('not attached');
    return a;
  }

  get session() {
    return this.attached.session.id;
  }

  /** The latest `typing` this viewer was told. */
  get typing(): boolean {
    for (let i = this.controls.length - 1; i >= 0; i--) {
      const c = this.controls[i]!;
      if (c.t === 'session' || c.t === 'attached') return c.typing;
    }
    return false;
  }

  of<T extends TerminalAgentControl['t']>(t: T): Extract<TerminalAgentControl, { t: T }>[] {
    return this.controls.filter((c) => c.t === t) as Extract<TerminalAgentControl, { t: T }>[];
  }

  pause(): void {
    this.reading = false;
  }

  resume(): void {
    this.reading = true;
    this.wake?.();
  }

  private async read(): Promise<void> {
    const dec = new WsRecordDecoder(1 << 20);
    const reader = this.stream.readable.getReader();
    try {
      for (;;) {
        while (!this.reading) await new Promise<void>((r) => (this.wake = r));
        const { done, value } = await reader.read();
        if (done) break;
        for (const r of dec.push(value)) {
          if (r.kind === 'text') {
            this.records.push({ kind: 'text', bytes: r.text.length });
            const c = JSON.parse(r.text) as TerminalAgentControl;
            this.controls.push(c);
            if (c.t === 'size' || c.t === 'attached') {
              const size = c.t === 'size' ? c : c.session;
              this.screen.resize(size.cols, size.rows);
            }
          } else if (r.kind === 'binary') {
            this.records.push({ kind: 'binary', bytes: r.data.byteLength });
            const copy = r.data.slice();
            this.output.push(copy);
            this.outputBytes += copy.byteLength;
            this.screen.write(copy);
          }
        }
      }
      this.ended = 'fin';
    } catch (e) {
      this.ended = (e as { code?: string }).code ?? String(e);
    }
  }

  private writer?: WritableStreamDefaultWriter<Uint8Array>;
  private w() {
    return (this.writer ??= this.stream.writable.getWriter());
  }

  /** Keystrokes (a string is sent as UTF-8), as one BINARY record. */
  type(data: string | Uint8Array): Promise<void> {
    return this.w().write(encodeWsRecord(WsRecordKind.BINARY, typeof data === 'string' ? new TextEncoder().encode(data) : data));
  }

  control(message: TerminalViewerControl | Record<string, unknown>): Promise<void> {
    return this.w().write(encodeWsRecord(WsRecordKind.TEXT, JSON.stringify(message)));
  }

  raw(bytes: Uint8Array): Promise<void> {
    return this.w().write(bytes);
  }

  /** Waits until the output holds `what` (after `from` characters of it). */
  async waitFor(what: string | RegExp, ms = 10_000, from = 0): Promise<string> {
    return until(() => {
      const t = this.text.slice(from);
      return (typeof what === 'string' ? t.includes(what) : what.test(t)) && t;
    }, `output ${String(what)}`, ms);
  }

  async waitControl<T extends TerminalAgentControl['t']>(t: T, pred: (c: Extract<TerminalAgentControl, { t: T }>) => boolean = () => true, ms = 10_000) {
    return until(() => this.of(t).find(pred), `control ${t}`, ms);
  }

  /** Runs a command line in the shell and waits for its marker: the output after it was typed. */
  async run(line: string, ms = 10_000): Promise<string> {
    const mark = `__M${Math.random().toString(36).slice(2, 8)}`;
    const from = this.text.length;
    await this.type(`${line}; echo ${mark}$((6*7))\r`);
    const out = await this.waitFor(`${mark}42`, ms, from);
    return out;
  }

  /** What the viewer's own emulator shows, once it has parsed everything received. */
  async serialized(): Promise<string> {
    await new Promise<void>((r) => this.screen.write('', r));
    return this.serializer.serialize();
  }

  async close(): Promise<void> {
    await this.w().close().catch(() => {});
  }
}

/** Every cell of both buffers, the active one, and the cursor: what a screen comparison compares. */
export async function cells(term: Terminal): Promise<string[]> {
  await new Promise<void>((r) => term.write('', r));
  const out: string[] = [`active ${term.buffer.active.type}`, `cursor ${term.buffer.active.cursorX},${term.buffer.active.cursorY}`, `size ${term.cols}x${term.rows}`];
  for (const buffer of [term.buffer.normal, term.buffer.alternate]) {
    const cell = buffer.getNullCell();
    for (let y = buffer.baseY; y < buffer.baseY + term.rows; y++) {
      const line = buffer.getLine(y);
      if (!line) continue;
      let row = `${buffer.type}:${y - buffer.baseY}:`;
      for (let x = 0; x < term.cols; x++) {
        line.getCell(x, cell);
        row += `${cell.getChars() || ' '}${cell.getFgColor()}/${cell.getBgColor()}/${cell.isBold() ? 'b' : ''}${cell.isInverse() ? 'i' : ''}|`;
      }
      out.push(row);
    }
  }
  return out;
}

/** A fresh emulator fed only the records after `from` of a viewer's output: what a re-attached page shows. */
export async function replayed(bytes: Uint8Array, cols: number, rows: number): Promise<Terminal> {
  const t = new Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true, logLevel: 'off' });
  await new Promise<void>((r) => t.write(bytes, r));
  return t;
}
