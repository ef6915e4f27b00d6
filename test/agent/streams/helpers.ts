// Tools for the stream mux tests: two muxes joined by an in-process loopback whose delivery is
// asynchronous (and, when asked, randomly paced, but always in order, as a WebSocket is), a
// seeded PRNG so a failing random run can be replayed, and readers/writers with chosen pacing.
import { batchEntries, decodeFrame, encodeFrame, FrameType, isBatch, type Frame } from '../../../shared/protocol/frames.ts';
import { FrameBatcher } from '../../../shared/protocol/batch.ts';
import { StreamMux, type MuxOptions, type MuxStream } from '../../../shared/protocol/mux.ts';

/** mulberry32: tiny, fast, and good enough to pick sizes and timings. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

/** Deterministic bytes (xorshift32), fast enough for tens of MiB. */
export function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = (seed | 1) >>> 0;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = (x = (x * 31 + i) >>> 0) & 255;
  return out;
}

export async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Lets every queued microtask and a few timer turns run, so a loopback goes quiet. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await sleep(0);
}

export type Side = 'hub' | 'agent';
export interface Delivered {
  from: Side;
  frame: Frame;
}

/**
 * One direction of the loopback. 'microtask' delivers each frame in the microtask after it was
 * sent; 'manual' holds frames until the test calls deliver(); 'random' delivers random-sized
 * batches after random yields (microtask, timer, or a short sleep), in order.
 */
export class Pipe {
  readonly queue: Uint8Array[] = [];
  sent = 0;
  private scheduled = false;

  constructor(
    private readonly mode: 'microtask' | 'manual' | 'random',
    private readonly target: () => StreamMux,
    private readonly tap: ((frame: Uint8Array) => void) | null,
    private readonly rand: () => number,
  ) {}

  send(frame: Uint8Array): void {
    this.sent++;
    if (this.mode === 'microtask' && !this.tap) {
      queueMicrotask(() => this.target().receive(frame));
      return;
    }
    this.queue.push(frame);
    this.schedule();
  }

  /** Delivers up to n held frames now (all by default); returns how many. */
  deliver(n = Infinity): number {
    let done = 0;
    while (done < n && this.queue.length) {
      const frame = this.queue.shift()!;
      this.tap?.(frame);
      this.target().receive(frame);
      done++;
    }
    return done;
  }

  private schedule(): void {
    if (this.scheduled || this.mode === 'manual') return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.deliver(this.mode === 'random' ? 1 + Math.floor(this.rand() * 6) : 1);
      if (this.queue.length) this.schedule();
    };
    if (this.mode !== 'random') return queueMicrotask(run);
    const r = this.rand();
    if (r < 0.6) queueMicrotask(run);
    else if (r < 0.97) setTimeout(run, 0);
    else setTimeout(run, 1 + Math.floor(this.rand() * 3));
  }
}

/** Streams the peer opened, in arrival order, for tests that answer them by hand. */
export class Offers {
  private readonly items: MuxStream[] = [];
  private readonly waiters: ((s: MuxStream) => void)[] = [];
  push(stream: MuxStream): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(stream);
    else this.items.push(stream);
  }
  next(): Promise<MuxStream> {
    const item = this.items.shift();
    return item ? Promise.resolve(item) : new Promise((resolve) => this.waiters.push(resolve));
  }
}

export interface Loopback {
  /** Streams offered to each side when its onOpen was not overridden. */
  hubOffers: Offers;
  agentOffers: Offers;
  hub: StreamMux;
  agent: StreamMux;
  /** Hub → agent and agent → hub. */
  toAgent: Pipe;
  toHub: Pipe;
  hubErrors: string[];
  agentErrors: string[];
  /** Every frame delivered, in delivery order, when `log` was asked for. */
  log: Delivered[];
}

export interface LoopbackOptions {
  mode?: 'microtask' | 'manual' | 'random';
  seed?: number;
  log?: boolean;
  /** Sees every frame just before it is delivered. */
  onDeliver?: (from: Side, frame: Frame) => void;
  hub?: Partial<MuxOptions>;
  agent?: Partial<MuxOptions>;
  /**
   * Both sides send through a FrameBatcher (as hub and agent do): small frames of one turn share
   * a BATCH message. 'timer' flushes on a timer turn, 'microtask' in the next microtask.
   */
  batch?: 'timer' | 'microtask';
}

export function loopback(opts: LoopbackOptions = {}): Loopback {
  const mode = opts.mode ?? 'microtask';
  const rand = prng(opts.seed ?? 1);
  const log: Delivered[] = [];
  const tap = (from: Side) =>
    opts.log || opts.onDeliver
      ? (message: Uint8Array) => {
          for (const f of isBatch(message) ? batchEntries(message) : [message]) {
            const frame = decodeFrame(f);
            if (opts.log) log.push({ from, frame });
            opts.onDeliver?.(from, frame);
          }
        }
      : null;
  const hubErrors: string[] = [];
  const agentErrors: string[] = [];
  let hub!: StreamMux;
  let agent!: StreamMux;
  const toAgent = new Pipe(mode, () => agent, tap('hub'), rand);
  const toHub = new Pipe(mode, () => hub, tap('agent'), rand);
  const hubOffers = new Offers();
  const agentOffers = new Offers();
  const batching = (pipe: Pipe) =>
    opts.batch
      ? new FrameBatcher({ send: (m) => pipe.send(m), schedule: opts.batch === 'timer' ? (f) => setTimeout(f, 0) : queueMicrotask, enabled: true })
      : pipe;
  hub = new StreamMux(batching(toAgent), { side: 'hub', onError: (m) => hubErrors.push(m), onOpen: (s) => hubOffers.push(s), ...opts.hub });
  agent = new StreamMux(batching(toHub), { side: 'agent', onError: (m) => agentErrors.push(m), onOpen: (s) => agentOffers.push(s), ...opts.agent });
  return { hub, agent, hubOffers, agentOffers, toAgent, toHub, hubErrors, agentErrors, log };
}

/** A mux facing a hand-driven peer: the test reads what it sends and feeds it raw frames. */
export function rawPeer(options: Partial<MuxOptions> & { side: Side }) {
  const sent: Frame[] = [];
  const errors: string[] = [];
  const opened: MuxStream[] = [];
  const mux = new StreamMux(
    { send: (f) => sent.push(decodeFrame(f)) },
    { onError: (m) => errors.push(m), onOpen: (s) => opened.push(s), ...options },
  );
  const feed = (type: FrameType, id: number, payload?: Uint8Array | string) =>
    mux.receive(encodeFrame(type, id, typeof payload === 'string' ? new TextEncoder().encode(payload) : payload));
  return { mux, sent, errors, opened, feed };
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

export const text = (f: Frame) => new TextDecoder().decode(f.payload);

/** Reads a stream to its end; `pace` may delay between reads. Returns the bytes and the chunk count. */
export async function readAll(readable: ReadableStream<Uint8Array>, pace?: () => Promise<void> | void): Promise<Uint8Array> {
  const reader = readable.getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    if (pace) await pace();
  }
  return concat(chunks);
}

/** Writes `data` in chunks whose sizes `size()` picks, then closes (unless keepOpen). */
export async function writeAll(writable: WritableStream<Uint8Array>, data: Uint8Array, size: () => number = () => data.byteLength, keepOpen = false): Promise<void> {
  const writer = writable.getWriter();
  let at = 0;
  while (at < data.byteLength) {
    const n = Math.max(1, Math.min(size(), data.byteLength - at));
    await writer.write(data.subarray(at, at + n));
    at += n;
  }
  if (!keepOpen) await writer.close();
  writer.releaseLock();
}

export function dataBytes(log: Delivered[], from: Side, id: number): number {
  return log.filter((d) => d.from === from && d.frame.streamId === id && d.frame.type === FrameType.DATA).reduce((n, d) => n + d.frame.payload.byteLength, 0);
}
