// Flow control: a reader that does not read stops its writer at exactly one window, WINDOW grants
// follow the reader and are batched, a peer that overruns a window is reset, the socket-wide cap
// holds while stream windows are full, and a small exchange is not stuck behind a bulk transfer.
import { describe, expect, it } from 'bun:test';
import { FrameType } from '../../../shared/protocol/frames.ts';
import { INITIAL_WINDOW, MAX_DATA_CHUNK, MAX_STREAM_WINDOW, SOCKET_ACK_BYTES, WINDOW_GROWTH_PERIOD_MS } from '../../../shared/protocol/flow.ts';
import { StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { bytes, dataBytes, loopback, rawPeer, readAll, settle, text, u32, writeAll, type Loopback } from './helpers.ts';

const TCP: StreamOpen = { kind: 'tcp', tunnel: 'tun' };
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Window auto-tuning off: the window stays INITIAL_WINDOW, as these tests of the accounting assume. */
const FIXED = { maxStreamWindow: INITIAL_WINDOW };

/** Manual loopback: delivers both ways, letting writers run in between, until nothing moves. */
async function pump(l: Loopback, before?: () => void): Promise<void> {
  for (;;) {
    await settle(1);
    if (!l.toAgent.queue.length && !l.toHub.queue.length) return;
    before?.();
    l.toAgent.deliver();
    l.toHub.deliver();
  }
}

function queuedData(l: Loopback): number {
  // Frames in the pipe are still encoded: [type][id u32][payload].
  return l.toAgent.queue.filter((f) => f[0] === FrameType.DATA).reduce((n, f) => n + f.byteLength - 5, 0);
}

describe('stream windows', () => {
  it('a reader that never reads receives exactly one window; reading resumes the writer', async () => {
    const l = loopback({ log: true, agent: FIXED });
    const s = l.hub.open(TCP);
    const peer = await l.agentOffers.next();
    peer.accept({});
    const data = bytes(4 * INITIAL_WINDOW + 12345, 7);
    let written = false;
    const writing = writeAll(s.writable, data).then(() => (written = true));
    await settle(5);
    expect(dataBytes(l.log, 'hub', s.id)).toBe(INITIAL_WINDOW);
    expect(written).toBe(false);

    // Reading a little grants a little: the writer moves exactly as far as the reader allows.
    const reader = peer.readable.getReader();
    let read = 0;
    while (read < INITIAL_WINDOW / 2) read += (await reader.read()).value!.byteLength;
    await settle(5);
    expect(dataBytes(l.log, 'hub', s.id)).toBe(INITIAL_WINDOW + read);
    expect(written).toBe(false);

    reader.releaseLock();
    const rest = await readAll(peer.readable);
    await writing;
    expect(read + rest.byteLength).toBe(data.byteLength);
    expect(Buffer.compare(Buffer.from(rest), Buffer.from(data.subarray(read)))).toBe(0);
  });

  it('sends DATA in chunks of at most MAX_DATA_CHUNK and WINDOW in batches, not per read', async () => {
    const l = loopback({ log: true });
    const s = l.hub.open(TCP);
    const peer = await l.agentOffers.next();
    peer.accept({});
    // One big write, then many tiny ones: neither may turn into one frame per byte or per read.
    const big = bytes(MAX_DATA_CHUNK * 8 + 1, 3);
    const tiny = bytes(100_000, 4);
    const [got] = await Promise.all([
      readAll(peer.readable),
      (async () => {
        await writeAll(s.writable, big, undefined, true);
        await writeAll(s.writable, tiny, () => 100);
      })(),
    ]);
    expect(got.byteLength).toBe(big.byteLength + tiny.byteLength);
    const data = l.log.filter((d) => d.from === 'hub' && d.frame.type === FrameType.DATA);
    expect(Math.max(...data.map((d) => d.frame.payload.byteLength))).toBe(MAX_DATA_CHUNK);
    expect(data.length).toBe(9 + 1000);
    const windows = l.log.filter((d) => d.from === 'agent' && d.frame.type === FrameType.WINDOW && d.frame.streamId === s.id);
    const grants = windows.map((d) => new DataView(d.frame.payload.buffer, d.frame.payload.byteOffset).getUint32(0));
    expect(grants.every((g) => g >= INITIAL_WINDOW / 4)).toBe(true);
    expect(windows.length).toBeLessThanOrEqual(Math.ceil(got.byteLength / (INITIAL_WINDOW / 4)));
    expect(windows.length).toBeGreaterThan(0);
  });

  it('resets a peer that sends DATA beyond the window with FLOW_CONTROL, before buffering it', async () => {
    const p = rawPeer({ side: 'agent' });
    p.feed(FrameType.OPEN, 2, JSON.stringify(TCP));
    const s = p.opened[0]!;
    s.accept({});
    for (let i = 0; i < INITIAL_WINDOW / MAX_DATA_CHUNK; i++) p.feed(FrameType.DATA, 2, new Uint8Array(MAX_DATA_CHUNK));
    expect(p.mux.size).toBe(1);
    p.feed(FrameType.DATA, 2, new Uint8Array(1));
    expect(p.mux.size).toBe(0);
    expect(text(p.sent.at(-1)!)).toStartWith('FLOW_CONTROL');
    expect(p.errors.length).toBe(1);
    const reader = s.readable.getReader();
    let e: unknown;
    try {
      await reader.read();
    } catch (err) {
      e = err;
    }
    expect((e as StreamResetError).code).toBe('FLOW_CONTROL');
  });

  it('counts credit from what the reader took: after a grant the peer may send exactly that much more', async () => {
    const p = rawPeer({ side: 'agent', ...FIXED });
    p.feed(FrameType.OPEN, 2, JSON.stringify(TCP));
    const s = p.opened[0]!;
    const quarter = INITIAL_WINDOW / 4; // a receiver grants in batches of a quarter window
    for (let i = 0; i < 4; i++) p.feed(FrameType.DATA, 2, new Uint8Array(quarter));
    const reader = s.readable.getReader();
    await reader.read();
    const grant = p.sent.find((f) => f.type === FrameType.WINDOW && f.streamId === 2)!;
    expect(new DataView(grant.payload.buffer, grant.payload.byteOffset).getUint32(0)).toBe(quarter);
    p.feed(FrameType.DATA, 2, new Uint8Array(quarter));
    expect(p.mux.size).toBe(1);
    p.feed(FrameType.DATA, 2, new Uint8Array(1));
    expect(p.mux.size).toBe(0);
  });

  it('resets on a WINDOW of 0 or one that overflows 2^31-1', () => {
    const p = rawPeer({ side: 'hub' });
    const a = p.mux.open(TCP);
    p.feed(FrameType.WINDOW, a.id, u32(0));
    expect(text(p.sent.at(-1)!)).toStartWith('PROTOCOL_ERROR');
    const b = p.mux.open(TCP);
    p.feed(FrameType.WINDOW, b.id, u32(0x7fffffff));
    expect(p.sent.at(-1)!.streamId).toBe(b.id);
    expect(text(p.sent.at(-1)!)).toStartWith('FLOW_CONTROL');
    expect(p.mux.size).toBe(0);
  });
});

describe('window auto-tuning', () => {
  const quarter = INITIAL_WINDOW / 4;
  /** Feeds `frames` quarter-window DATA frames on stream `id`, each read at once; returns the credit granted. */
  async function feedAndRead(p: ReturnType<typeof rawPeer>, id: number, frames: number, lag = false): Promise<number> {
    const s = p.opened.find((o) => o.id === id)!;
    const reader = s.readable.getReader();
    for (let i = 0; i < frames; i++) {
      p.feed(FrameType.DATA, id, new Uint8Array(quarter));
      if (lag) p.feed(FrameType.DATA, id, new Uint8Array(1)); // one byte always left behind in the queue
      await reader.read();
    }
    reader.releaseLock();
    return p.sent
      .filter((f) => f.type === FrameType.WINDOW && f.streamId === id)
      .reduce((n, f) => n + new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0), 0);
  }
  const open = (p: ReturnType<typeof rawPeer>, id: number) => p.feed(FrameType.OPEN, id, JSON.stringify(TCP));

  it('doubles the window of a reader that keeps up on a fast link, up to MAX_STREAM_WINDOW', async () => {
    const p = rawPeer({ side: 'agent', now: () => 0 });
    open(p, 2);
    const granted = await feedAndRead(p, 2, 64);
    // What was read is granted back (less the last batch, under a quarter of the grown window),
    // plus the growth: INITIAL_WINDOW doubled up to the maximum, and no further.
    const growth = MAX_STREAM_WINDOW - INITIAL_WINDOW;
    expect(granted).toBeLessThanOrEqual(64 * quarter + growth);
    expect(granted).toBeGreaterThan(64 * quarter + growth - MAX_STREAM_WINDOW / 4);
    expect(p.errors).toEqual([]);
  });

  it('never grows on a slow link (a quarter window took longer than WINDOW_GROWTH_PERIOD_MS)', async () => {
    let t = 0;
    const p = rawPeer({ side: 'agent', now: () => (t += WINDOW_GROWTH_PERIOD_MS + 1) });
    open(p, 2);
    expect(await feedAndRead(p, 2, 64)).toBe(64 * quarter);
  });

  it('never grows for a reader that lags behind what arrived', async () => {
    const p = rawPeer({ side: 'agent', now: () => 0 });
    open(p, 2);
    const granted = await feedAndRead(p, 2, 2, true);
    expect(granted).toBeLessThanOrEqual(2 * quarter + 2);
  });

  it('shares a growth budget: one stream grows, a second waits until the first ends', async () => {
    const budget = MAX_STREAM_WINDOW - INITIAL_WINDOW;
    const p = rawPeer({ side: 'agent', now: () => 0, windowGrowthBudget: budget });
    open(p, 2);
    open(p, 4);
    expect(await feedAndRead(p, 2, 64)).toBeGreaterThan(64 * quarter + budget - MAX_STREAM_WINDOW / 4);
    expect(await feedAndRead(p, 4, 16)).toBe(16 * quarter); // no budget left
    p.opened.find((o) => o.id === 2)!.reset('CANCELLED', 'done');
    const before = await feedAndRead(p, 4, 0);
    expect((await feedAndRead(p, 4, 64)) - before).toBeGreaterThan(64 * quarter); // it grows now
  });
});

describe('the socket-wide cap', () => {
  it('holds the bytes in the socket to maxBufferedBytes, yet streams nobody reads cannot block others', async () => {
    const cap = 4 * SOCKET_ACK_BYTES;
    const l = loopback({ mode: 'manual', hub: { maxBufferedBytes: cap } });
    const stuck = Array.from({ length: 8 }, () => l.hub.open(TCP));
    await pump(l);
    const peers: MuxStream[] = [];
    for (let i = 0; i < 8; i++) peers.push(await l.agentOffers.next());
    for (const p of peers) p.accept({});
    await pump(l);
    const writes = stuck.map((s, i) => writeAll(s.writable, bytes(INITIAL_WINDOW * 2, i)));
    await settle(2);
    expect(queuedData(l)).toBe(cap);

    let most = 0;
    await pump(l, () => (most = Math.max(most, queuedData(l))));
    expect(most).toBeLessThanOrEqual(cap);
    // Every stream window is full and nobody reads them: the socket still has credit.
    const small = l.hub.open(TCP);
    const smallPeer = (async () => {
      const p = await l.agentOffers.next();
      p.accept({});
      const got = await readAll(p.readable);
      await writeAll(p.writable, enc.encode(`echo ${dec.decode(got)}`));
    })();
    const smallDone = (async () => {
      await writeAll(small.writable, enc.encode('hi'));
      return dec.decode(await readAll(small.readable));
    })();
    await pump(l);
    await smallPeer;
    expect(await smallDone).toBe('echo hi');

    // Now the stuck readers read, and everything completes.
    const reads = peers.map(async (p) => {
      const got = await readAll(p.readable);
      await p.writable.close();
      return got;
    });
    let done = false;
    const all = Promise.all([...writes, ...reads]).then((r) => {
      done = true;
      return r;
    });
    while (!done) await pump(l, () => (most = Math.max(most, queuedData(l))));
    const results = await all;
    expect(most).toBeLessThanOrEqual(cap);
    for (let i = 0; i < 8; i++) expect((results[8 + i] as Uint8Array).byteLength).toBe(INITIAL_WINDOW * 2);
    await pump(l);
    expect(l.hub.size + l.agent.size).toBe(0);
    expect(l.hubErrors.concat(l.agentErrors)).toEqual([]);
  });
});

describe('fairness', () => {
  /**
   * A bulk stream saturates the socket; a small request/response starts in the middle. Returns how
   * many bulk DATA frames crossed the socket while the small exchange was under way.
   */
  async function bulkFramesDuringSmall(options: { initialWindow?: number; maxBufferedBytes?: number; maxStreamWindow?: number; now?: () => number } = {}): Promise<{ frames: number; bytes: number; bulkSentBefore: number }> {
    let startSmall!: () => void;
    const smallStarted = new Promise<void>((resolve) => (startSmall = resolve));
    const l = loopback({
      log: true,
      hub: options,
      agent: {
        ...options,
        onOpen: (s, open) => {
          s.accept({});
          if (open.kind === 'tcp' && open.tunnel === 'bulk') {
            void (async () => {
              const reader = s.readable.getReader();
              let n = 0;
              for (;;) {
                const { done, value } = await reader.read();
                if (done) break;
                n += value.byteLength;
                if (n >= 4 * 1024 * 1024) startSmall();
              }
            })();
          } else {
            void (async () => {
              const got = await readAll(s.readable);
              await writeAll(s.writable, enc.encode(`pong ${dec.decode(got)}`));
            })();
          }
        },
      },
    });
    const bulk = l.hub.open({ kind: 'tcp', tunnel: 'bulk' });
    const chunk = bytes(1024 * 1024, 9);
    const bulkDone = (async () => {
      const w = bulk.writable.getWriter();
      for (let i = 0; i < 32; i++) await w.write(chunk);
      await w.close();
    })();
    await smallStarted;
    const from = l.log.length;
    const bulkSentBefore = dataBytes(l.log, 'hub', bulk.id);
    const small = l.hub.open({ kind: 'tcp', tunnel: 'small' });
    const [, reply] = await Promise.all([writeAll(small.writable, enc.encode('ping')), readAll(small.readable)]);
    await small.closed;
    const during = l.log.slice(from);
    const bulkData = during.filter((d) => d.frame.streamId === bulk.id && d.frame.type === FrameType.DATA);
    expect(dec.decode(reply)).toBe('pong ping');
    await bulkDone;
    // With a huge window the writes finish before the frames are across: wait for the last of them.
    for (let i = 0; i < 200 && dataBytes(l.log, 'hub', bulk.id) < 32 * 1024 * 1024; i++) await settle(5);
    expect(dataBytes(l.log, 'hub', bulk.id)).toBe(32 * 1024 * 1024);
    return { frames: bulkData.length, bytes: bulkData.reduce((n, d) => n + d.frame.payload.byteLength, 0), bulkSentBefore };
  }

  it('a small exchange completes within a few bulk windows while a bulk stream saturates the socket', async () => {
    const { frames, bytes, bulkSentBefore } = await bulkFramesDuringSmall(FIXED);
    // The bulk transfer was under way and kept going: the small exchange really competed with it.
    expect(bulkSentBefore).toBeLessThan(8 * 1024 * 1024);
    expect(frames).toBeGreaterThan(0);
    // The small frames wait behind what is already in flight (a few stream windows), no more.
    expect(bytes).toBeLessThanOrEqual(4 * INITIAL_WINDOW);
  });

  it('with window auto-tuning on a slow link the window does not grow, so neither does the wait', async () => {
    let t = 0;
    const slow = { now: () => (t += WINDOW_GROWTH_PERIOD_MS + 1) };
    const { bytes } = await bulkFramesDuringSmall(slow);
    expect(bytes).toBeLessThanOrEqual(4 * INITIAL_WINDOW);
  });

  it('with window auto-tuning on a fast link (a clock that never moves), it waits behind at most two grown windows', async () => {
    const { bytes } = await bulkFramesDuringSmall({ now: () => 0 });
    expect(bytes).toBeGreaterThan(4 * INITIAL_WINDOW); // it did grow
    expect(bytes).toBeLessThanOrEqual(2 * MAX_STREAM_WINDOW);
  });

  it('control: with a window as large as the transfer, the same exchange waits behind far more', async () => {
    const huge = 64 * 1024 * 1024;
    const { bytes } = await bulkFramesDuringSmall({ initialWindow: huge, maxBufferedBytes: huge });
    expect(bytes).toBeGreaterThan(8 * 1024 * 1024);
  });
});
