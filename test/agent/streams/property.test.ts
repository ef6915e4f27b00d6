// The property that matters: whatever the sizes, write chunking, read pacing and frame timing,
// every byte of every stream arrives once and in order (same SHA-256), a receiver never holds more
// than its window, streams reset midway end cleanly on both sides, and no stream outlives its
// transfer. Each run is driven by a seed; a failure prints it so the run can be replayed.
import { describe, expect, it } from 'bun:test';
import { FrameType } from '../../../shared/protocol/frames.ts';
import { INITIAL_WINDOW, MAX_DATA_CHUNK, MAX_STREAM_WINDOW } from '../../../shared/protocol/flow.ts';
import { StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { bytes, loopback, prng, randInt, settle, sha256, sleep, type Side } from './helpers.ts';

const MiB = 1024 * 1024;
/** A run takes about a second; twenty without finishing means something waits forever. */
const STALL_MS = 20_000;

interface Plan {
  index: number;
  opener: Side;
  up: number; // bytes opener → acceptor
  down: number; // bytes acceptor → opener
  seed: number;
  acceptDelayMs: number;
  startDelayMs: number;
  /** Set for the streams that one side resets after reading this many bytes. */
  reset: { by: 'opener' | 'acceptor'; afterBytes: number } | null;
}

type Pace = () => Promise<void> | null;

function pacing(rand: () => number): Pace {
  const style = rand();
  if (style < 0.4) return () => null; // reads as fast as it can
  if (style < 0.7) return () => (rand() < 0.3 ? sleep(0) : null); // yields now and then
  if (style < 0.9) return () => (rand() < 0.1 ? sleep(randInt(rand, 1, 4)) : null); // stalls briefly
  let first = true; // does not read at all for a while, so the writer hits the window
  return () => (first ? ((first = false), sleep(randInt(rand, 5, 20))) : null);
}

/** Chunk sizes spread over 1 B .. 256 KiB on a log scale, so both tiny and large writes happen. */
function chunking(rand: () => number): () => number {
  return () => Math.max(1, Math.floor(2 ** (rand() * 18)));
}

function planFor(rand: () => number, index: number, withResets: boolean): Plan {
  return {
    index,
    opener: rand() < 0.5 ? 'hub' : 'agent',
    up: rand() < 0.1 ? 0 : randInt(rand, 0, 2 * MiB),
    down: rand() < 0.1 ? 0 : randInt(rand, 0, 2 * MiB),
    seed: randInt(rand, 1, 2 ** 31),
    acceptDelayMs: rand() < 0.5 ? 0 : randInt(rand, 0, 3),
    startDelayMs: randInt(rand, 0, 10),
    reset: withResets && rand() < 0.15 ? { by: rand() < 0.5 ? 'opener' : 'acceptor', afterBytes: randInt(rand, 0, 256 * 1024) } : null,
  };
}

interface Outcome {
  sentHash: string;
  receivedHash: string | null; // null: the stream was reset before the end
  error: unknown;
}

async function send(stream: MuxStream, size: number, seed: number, chunk: () => number): Promise<string> {
  const data = bytes(size, seed);
  const writer = stream.writable.getWriter();
  for (let at = 0; at < size; ) {
    const n = Math.min(chunk(), size - at);
    await writer.write(data.subarray(at, at + n));
    at += n;
  }
  await writer.close();
  return sha256(data);
}

async function receive(stream: MuxStream, expected: number, pace: Pace, onBytes: (n: number, total: number) => void): Promise<string> {
  const out = new Uint8Array(expected);
  let at = 0;
  const reader = stream.readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.byteLength > expected) throw new Error(`received more than the ${expected} bytes sent`);
    out.set(value, at);
    at += value.byteLength;
    onBytes(value.byteLength, at);
    const p = pace();
    if (p) await p;
  }
  if (at !== expected) throw new Error(`received ${at} of ${expected} bytes`);
  return sha256(out);
}

async function run(seed: number, count: number, withResets: boolean, batch?: 'timer' | 'microtask'): Promise<void> {
  const rand = prng(seed);
  const plans = Array.from({ length: count }, (_, i) => planFor(rand, i, withResets));
  // What each receiver has been handed vs. what its reader took, per direction and stream id.
  const delivered = new Map<string, number>();
  const consumed = new Map<string, number>();
  // Credit each receiver granted (WINDOW frames), keyed like `delivered`: by sender and stream.
  const granted = new Map<string, number>();
  const overruns: string[] = [];
  const onDeliver = (from: Side, frame: { type: number; streamId: number; payload: Uint8Array }) => {
    if (frame.type === FrameType.WINDOW && frame.streamId !== 0) {
      const key = `${from === 'hub' ? 'agent' : 'hub'}:${frame.streamId}`;
      granted.set(key, (granted.get(key) ?? 0) + new DataView(frame.payload.buffer, frame.payload.byteOffset).getUint32(0));
      return;
    }
    if (frame.type !== FrameType.DATA) return;
    const key = `${from}:${frame.streamId}`;
    const d = (delivered.get(key) ?? 0) + frame.payload.byteLength;
    delivered.set(key, d);
    // Never more than the receiver granted: the initial window plus its WINDOW frames.
    if (d > INITIAL_WINDOW + (granted.get(key) ?? 0)) overruns.push(`${key}: ${d} bytes sent against ${INITIAL_WINDOW + (granted.get(key) ?? 0)} of credit`);
    // And never more buffered than the largest window (which only a reader that keeps up earns);
    // one chunk of slack: a chunk handed to a reader is counted by the test a microtask later.
    if (d - (consumed.get(key) ?? 0) > MAX_STREAM_WINDOW + MAX_DATA_CHUNK) overruns.push(`${key}: ${d - (consumed.get(key) ?? 0)} bytes buffered`);
  };

  const acceptorTasks: Promise<Outcome>[] = [];
  const closedAll: Promise<void>[] = [];
  const handler = (side: Side) => (stream: MuxStream, open: StreamOpen) => {
    const plan = plans[Number('tunnel' in open ? open.tunnel : NaN)]!;
    const r = prng(plan.seed ^ 0x5bd1e995);
    const opener: Side = side === 'hub' ? 'agent' : 'hub';
    closedAll.push(stream.closed);
    acceptorTasks[plan.index] = (async (): Promise<Outcome> => {
      if (plan.acceptDelayMs) await sleep(plan.acceptDelayMs);
      stream.accept({});
      const resetHere = plan.reset?.by === 'acceptor' ? plan.reset.afterBytes : -1;
      if (resetHere === 0) stream.reset('CANCELLED', 'property test');
      const results = await Promise.allSettled([
        send(stream, plan.down, plan.seed + 1, chunking(r)),
        receive(stream, plan.up, pacing(r), (n, total) => {
          const key = `${opener}:${stream.id}`;
          consumed.set(key, (consumed.get(key) ?? 0) + n);
          if (resetHere > 0 && total >= resetHere) stream.reset('CANCELLED', 'property test');
        }),
      ]);
      return outcome(results);
    })();
  };

  const l = loopback({ mode: 'random', seed, onDeliver, batch, hub: { onOpen: handler('hub') }, agent: { onOpen: handler('agent') } });
  const openerTasks = plans.map(async (plan): Promise<Outcome> => {
    await sleep(plan.startDelayMs);
    const mux = plan.opener === 'hub' ? l.hub : l.agent;
    const peer: Side = plan.opener === 'hub' ? 'agent' : 'hub';
    const stream = mux.open({ kind: 'tcp', tunnel: String(plan.index) });
    closedAll.push(stream.closed);
    const r = prng(plan.seed);
    const resetHere = plan.reset?.by === 'opener' ? plan.reset.afterBytes : -1;
    if (resetHere === 0) stream.reset('CANCELLED', 'property test');
    const results = await Promise.allSettled([
      stream.accepted,
      send(stream, plan.up, plan.seed, chunking(r)),
      receive(stream, plan.down, pacing(r), (n, total) => {
        const key = `${peer}:${stream.id}`;
        consumed.set(key, (consumed.get(key) ?? 0) + n);
        if (resetHere > 0 && total >= resetHere) stream.reset('CANCELLED', 'property test');
      }),
    ]);
    return outcome(results.slice(1) as PromiseSettledResult<string>[], results[0]);
  });

  const context = `seed ${seed}`;
  // A stall (a lost grant, a missed wake-up) would otherwise only show as a test timeout.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${context}: stalled with ${l.hub.size} hub and ${l.agent.size} agent streams open`)), STALL_MS);
  });
  const [openers, acceptors] = await Promise.race([
    (async () => {
      const o = await Promise.all(openerTasks);
      await settle(5);
      const a = await Promise.all(acceptorTasks);
      await Promise.all(closedAll);
      return [o, a] as const;
    })(),
    stalled,
  ]).finally(() => clearTimeout(timer));

  for (const plan of plans) {
    const o = openers[plan.index]!;
    const a = acceptors[plan.index]!;
    const where = `${context}, stream ${plan.index} (${plan.opener} opened, ${plan.up}/${plan.down} B)`;
    if (!plan.reset) {
      expect({ where, error: o.error ?? a.error ?? null }).toEqual({ where, error: null });
      expect({ where, up: a.receivedHash }).toEqual({ where, up: o.sentHash });
      expect({ where, down: o.receivedHash }).toEqual({ where, down: a.sentHash });
    } else {
      // A reset may land after everything was through; otherwise both ends saw the reset's code.
      for (const e of [o.error, a.error]) if (e) expect({ where, code: (e as StreamResetError).code }).toEqual({ where, code: 'CANCELLED' });
    }
  }
  expect({ context, overruns }).toEqual({ context, overruns: [] });
  expect({ context, errors: [...l.hubErrors, ...l.agentErrors] }).toEqual({ context, errors: [] });
  await settle(5);
  expect({ context, open: l.hub.size + l.agent.size }).toEqual({ context, open: 0 });
  expect(l.toAgent.queue.length + l.toHub.queue.length).toBe(0);
  expect(closedAll.length).toBe(2 * count);
}

function outcome(results: PromiseSettledResult<string>[], accepted?: PromiseSettledResult<unknown>): Outcome {
  const [sent, received] = results;
  const errors = [accepted, sent, received].filter((r): r is PromiseRejectedResult => r?.status === 'rejected').map((r) => r.reason);
  const nonReset = errors.find((e) => !(e instanceof StreamResetError));
  return {
    sentHash: sent!.status === 'fulfilled' ? sent!.value : '',
    receivedHash: received!.status === 'fulfilled' ? received!.value : null,
    error: nonReset ?? errors[0] ?? null,
  };
}

describe('random streams from both sides', () => {
  for (const seed of [1, 2, 3]) {
    it(`50 streams arrive intact, within their windows, and all close (seed ${seed})`, async () => {
      await run(seed, 50, false);
    }, 60_000);
  }
  for (const seed of [11, 12]) {
    it(`50 streams, some reset midway by either side, end cleanly (seed ${seed})`, async () => {
      await run(seed, 50, true);
    }, 60_000);
  }
  // As hub and agent really send: the small frames of a turn share BATCH messages.
  for (const [seed, batch] of [[21, 'timer'], [22, 'microtask']] as const) {
    it(`50 streams sent through frame batchers (${batch} flush), some reset, arrive intact (seed ${seed})`, async () => {
      await run(seed, 50, true, batch);
    }, 60_000);
  }
});
