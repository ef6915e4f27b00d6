// The kvm capability as the hub meets it, with the gadgets in memory: RPCs through the real
// dispatcher (params checked against the shared schemas), `hid` streams over the in-process
// loopback mux, and gadgets that record every report, can be slowed down, and can fail on demand.
import { registry, type CapabilityRegistry } from '../../../agent/capability.ts';
import { kvmCapability } from '../../../agent/kvm/index.ts';
import type { ScreenSource } from '../../../agent/kvm/screen/types.ts';
import { HidError, type HidErrorCode, type HidGadgets, type HidSink } from '../../../agent/kvm/types.ts';
import { dispatchRpc, type RpcReply } from '../../../agent/rpc.ts';
import type { HidOutput } from '../../../shared/api/kvm.ts';
import { HID_USAGES } from '../../../shared/hid/keycodes.ts';
import { planText } from '../../../shared/hid/typing.ts';
import type { MuxStream } from '../../../shared/protocol/mux.ts';
import { loopback, sleep, type Loopback } from '../streams/helpers.ts';
import { quietLogger, waitFor } from '../tunnels/helpers.ts';

export { sleep, waitFor };

export const hex = (r: Uint8Array) => [...r].map((b) => b.toString(16).padStart(2, '0')).join(' ');

/** A gadget that keeps what it was given. `delayMs` slows each write; `fail` decides which fail. */
export class RecordingSink implements HidSink {
  readonly reports: Uint8Array[] = [];
  attempts = 0;
  delayMs = 0;
  /** Called with the attempt number (1-based); a code makes that write fail with it. */
  fail: ((attempt: number, report: Uint8Array) => HidErrorCode | null) | null = null;
  private last: { state: 'ok' | 'unplugged' | 'missing' | 'error' | 'busy' | 'unknown'; message?: string } = { state: 'unknown' };

  constructor(readonly path: string) {}

  async write(report: Uint8Array): Promise<void> {
    const attempt = ++this.attempts;
    if (this.delayMs) await sleep(this.delayMs);
    const code = this.fail?.(attempt, report);
    if (code) {
      this.last = { state: code === 'HID_MISSING' ? 'missing' : code === 'HID_UNPLUGGED' ? 'unplugged' : 'error', message: `${code} on ${this.path}` };
      throw new HidError(code, `could not write to ${this.path} (${code})`, this.path);
    }
    this.last = { state: 'ok' };
    this.reports.push(report.slice());
  }

  state() {
    return this.last;
  }

  close() {}

  /** Makes every write fail with `code` until healed. */
  unplug(code: HidErrorCode = 'HID_UNPLUGGED') {
    this.fail = () => code;
  }

  heal() {
    this.fail = null;
  }

  lastHex(): string | undefined {
    const r = this.reports.at(-1);
    return r && hex(r);
  }
}

export interface FakeGadgets extends HidGadgets {
  keyboard: RecordingSink;
  mouse: RecordingSink;
  /** The host sends an LED output report. */
  led(byte: number): void;
}

export function fakeGadgets(): FakeGadgets {
  const listeners = new Set<(b: number) => void>();
  return {
    keyboard: new RecordingSink('/test/hidg0'),
    mouse: new RecordingSink('/test/hidg1'),
    onLeds(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    led: (b) => listeners.forEach((l) => l(b)),
    close() {},
  };
}

/** A screen that records what it is shown, as the simulated one draws it. */
export function fakeScreen(): ScreenSource & { seen: { gadget: string; report: string }[] } {
  const seen: { gadget: string; report: string }[] = [];
  return {
    name: 'fake',
    seen,
    capture: async () => null,
    state: () => ({ backend: 'fake', signal: false, width: null, height: null }),
    observe: (gadget, report) => void seen.push({ gadget, report: hex(report) }),
    close() {},
  };
}

export interface KvmRig {
  caps: CapabilityRegistry;
  gadgets: FakeGadgets;
  screen: ReturnType<typeof fakeScreen>;
  opened: { gadgets: number; screen: number };
  link: Loopback;
  logs: string[];
  call(method: string, params?: unknown): Promise<RpcReply>;
  /** Calls and expects success; returns the result. */
  ok<T = any>(method: string, params?: unknown): Promise<T>;
  /** Calls and expects failure; returns the error. */
  fails(method: string, params?: unknown): Promise<{ code: string; message: string; details?: any }>;
  hid(): Promise<HidClient>;
}

export function kvmRig(): KvmRig {
  const gadgets = fakeGadgets();
  const screen = fakeScreen();
  const opened = { gadgets: 0, screen: 0 };
  const logs: string[] = [];
  const caps = registry([
    kvmCapability({
      log: quietLogger(logs),
      gadgets: () => (opened.gadgets++, gadgets),
      screen: () => (opened.screen++, screen),
    }),
  ]);
  const link = loopback({ agent: { onOpen: (stream, open) => caps.stream(open)!(stream, open) } });
  const call = (method: string, params?: unknown) => dispatchRpc(caps.rpc, method, params ?? {});
  return {
    caps,
    gadgets,
    screen,
    opened,
    link,
    logs,
    call,
    async ok(method, params) {
      const r = await call(method, params);
      if (!r.ok) throw new Error(`${method} failed: ${JSON.stringify(r.error)}`);
      return r.result as any;
    },
    async fails(method, params) {
      const r = await call(method, params);
      if (r.ok) throw new Error(`${method} succeeded: ${JSON.stringify(r.result)}`);
      return r.error as any;
    },
    async hid() {
      const stream = link.hub.open({ kind: 'hid' });
      await stream.accepted;
      return new HidClient(stream);
    },
  };
}

/** The hub's end of a `hid` stream: writes lines, collects the lines that come back. */
export class HidClient {
  readonly lines: HidOutput[] = [];
  readonly ended: Promise<void>;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(readonly stream: MuxStream) {
    this.writer = stream.writable.getWriter();
    this.ended = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of stream.readable) {
          buffer += decoder.decode(chunk, { stream: true });
          for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
            this.lines.push(JSON.parse(buffer.slice(0, nl)));
            buffer = buffer.slice(nl + 1);
          }
        }
      } catch {
        // reset: the lines so far are what we got
      }
    })();
  }

  /** Sends messages (objects as JSON, strings as they are), one line each. */
  async send(...messages: (object | string)[]): Promise<void> {
    const text = messages.map((m) => (typeof m === 'string' ? m : JSON.stringify(m)) + '\n').join('');
    await this.writer.write(new TextEncoder().encode(text));
  }

  async sendRaw(bytes: Uint8Array): Promise<void> {
    await this.writer.write(bytes);
  }

  close(): Promise<void> {
    return this.writer.close();
  }

  /** Waits for a line that satisfies `pred`, looking from line `from` on. */
  next<T extends HidOutput['t']>(t: T, pred: (line: Extract<HidOutput, { t: T }>) => boolean = () => true, from = 0): Promise<Extract<HidOutput, { t: T }>> {
    return waitFor(() => this.lines.slice(from).find((l): l is Extract<HidOutput, { t: T }> => l.t === t && pred(l as Extract<HidOutput, { t: T }>)), 5_000, `a ${t} line`);
  }
}

/** (modifiers, usage) of a press report → the en-US character it types, from the stub's own plan. */
const EN_US = (() => {
  const map = new Map<string, string>();
  const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('') + '\n\t';
  const plan = planText(printable, 'en-US');
  if (!plan.ok) throw new Error(plan.message);
  for (const c of plan.chars) {
    const s = c.strokes[0]!;
    map.set(`${s.modifiers}:${HID_USAGES[s.code]}`, c.char);
  }
  return map;
})();

/**
 * Decodes what a host would type from keyboard reports: each press (a non-zero report) followed
 * by an all-zero release is one character; anything else is a mistake the test should see.
 */
export function decodeTyped(reports: Uint8Array[]): string {
  let text = '';
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i]!;
    if (r.every((b) => b === 0)) continue;
    const next = reports[i + 1];
    if (!next || next.some((b) => b !== 0)) throw new Error(`report ${i} (${hex(r)}) is not followed by a release`);
    if (r[3] !== 0) throw new Error(`report ${i} (${hex(r)}) holds two keys`);
    const char = EN_US.get(`${r[0]}:${r[2]}`);
    if (char === undefined) throw new Error(`report ${i} (${hex(r)}) is no en-US character`);
    text += char;
  }
  return text;
}

/** A deterministic text of printable ASCII (and newlines), `n` characters long. */
export function asciiText(n: number, seed = 7): string {
  const alphabet = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('') + '\n';
  let x = seed;
  let out = '';
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += alphabet[x % alphabet.length];
  }
  return out;
}
