// BATCH frames: several small frames in one WebSocket message. The codec, the FrameBatcher that
// hub and agent send through (what it joins, what it sends alone, order), and a mux receiving
// batches, well-formed and not.
import { describe, expect, it } from 'bun:test';
import { BATCH_FRAME_MAX, BATCH_MAX_BYTES, FrameBatcher } from '../../../shared/protocol/batch.ts';
import { batchEntries, decodeFrame, encodeBatch, encodeFrame, FRAME_HEADER_BYTES, FrameError, FrameType, isBatch } from '../../../shared/protocol/frames.ts';
import { StreamMux } from '../../../shared/protocol/mux.ts';
import { bytes, loopback, rawPeer, readAll, settle, u32 } from './helpers.ts';

const frame = (type: FrameType, id: number, payload: Uint8Array = new Uint8Array(0)) => encodeFrame(type, id, payload);

/** A batcher whose flushes the test runs by hand. */
function manualBatcher(options: { enabled?: boolean; copiesOnSend?: boolean } = {}) {
  const messages: Uint8Array[] = [];
  let pending: (() => void) | null = null;
  const batcher = new FrameBatcher({
    send: (m) => messages.push(m),
    schedule: (flush) => (pending = flush),
    enabled: options.enabled ?? true,
    copiesOnSend: options.copiesOnSend,
  });
  const turnEnds = () => {
    const run = pending;
    pending = null;
    run?.();
  };
  /** Each message as the list of frames it carries. */
  const unpacked = () => messages.map((m) => (isBatch(m) ? [...batchEntries(m)] : [m]).map((f) => decodeFrame(f)));
  return { batcher, messages, turnEnds, unpacked };
}

describe('BATCH codec', () => {
  it('round-trips frames, as views of the message', () => {
    const frames = [frame(FrameType.WINDOW, 0, u32(5)), frame(FrameType.DATA, 3, bytes(100, 1)), frame(FrameType.CLOSE, 3)];
    const message = encodeBatch(frames);
    expect(isBatch(message)).toBe(true);
    expect(decodeFrame(message).streamId).toBe(0);
    const back = [...batchEntries(message)];
    expect(back).toEqual(frames);
    expect(back[1]!.buffer).toBe(message.buffer);
  });

  it('refuses to build a batch of batches or of partial frames', () => {
    const inner = encodeBatch([frame(FrameType.CLOSE, 1)]);
    expect(() => encodeBatch([inner])).toThrow(FrameError);
    expect(() => encodeBatch([new Uint8Array(3)])).toThrow(FrameError);
  });

  it('throws on a malformed batch after yielding the frames before the fault', () => {
    const good = frame(FrameType.CLOSE, 1);
    const message = encodeBatch([good, frame(FrameType.CLOSE, 3)]);
    const cut = message.subarray(0, message.byteLength - 2); // the last entry overruns
    const seen: Uint8Array[] = [];
    expect(() => {
      for (const f of batchEntries(cut)) seen.push(f);
    }).toThrow(/overruns/);
    expect(seen).toEqual([good]);

    const shortLength = new Uint8Array([...message.subarray(0, FRAME_HEADER_BYTES), 0, 0]);
    expect(() => [...batchEntries(shortLength)]).toThrow(/truncated/);
    const onStream = message.slice();
    onStream[4] = 2;
    expect(() => [...batchEntries(onStream)]).toThrow(/stream 0/);
    const nested = new Uint8Array([...message.subarray(0, FRAME_HEADER_BYTES), ...u32(FRAME_HEADER_BYTES), FrameType.BATCH, 0, 0, 0, 0]);
    expect(() => [...batchEntries(nested)]).toThrow(/inside a batch/);
  });
});

describe('FrameBatcher', () => {
  it('sends the small frames of one turn as one message, in order', () => {
    const { batcher, messages, turnEnds, unpacked } = manualBatcher();
    batcher.send(frame(FrameType.OPEN, 2, new TextEncoder().encode('{}')));
    batcher.send(frame(FrameType.WINDOW, 2, u32(9)));
    batcher.send(frame(FrameType.CLOSE, 4));
    expect(messages).toHaveLength(0);
    turnEnds();
    expect(messages).toHaveLength(1);
    expect(unpacked()[0]!.map((f) => [f.type, f.streamId])).toEqual([
      [FrameType.OPEN, 2],
      [FrameType.WINDOW, 2],
      [FrameType.CLOSE, 4],
    ]);
  });

  it('sends a lone frame as itself, not wrapped in a batch', () => {
    const { batcher, messages, turnEnds } = manualBatcher();
    const f = frame(FrameType.CLOSE, 6);
    batcher.send(f);
    turnEnds();
    expect(messages).toEqual([f]);
  });

  it('sends a large frame at once, after what was queued before it', () => {
    const { batcher, messages, unpacked } = manualBatcher();
    batcher.send(frame(FrameType.WINDOW, 2, u32(1)));
    batcher.send(frame(FrameType.WINDOW, 4, u32(1)));
    const big = frame(FrameType.DATA, 2, bytes(BATCH_FRAME_MAX + 1, 2));
    batcher.send(big);
    expect(messages).toHaveLength(2);
    expect(unpacked()[0]!.map((f) => f.streamId)).toEqual([2, 4]);
    expect(messages[1]).toBe(big);
  });

  it('sends a batch once it holds BATCH_MAX_BYTES, without waiting for the turn', () => {
    const { batcher, messages, turnEnds, unpacked } = manualBatcher();
    const n = Math.ceil(BATCH_MAX_BYTES / 8000) + 2;
    for (let i = 0; i < n; i++) batcher.send(frame(FrameType.DATA, 2, bytes(8000, i)));
    expect(messages.length).toBeGreaterThanOrEqual(1);
    for (const m of messages) expect(m.byteLength).toBeLessThanOrEqual(BATCH_MAX_BYTES + FRAME_HEADER_BYTES);
    turnEnds();
    expect(unpacked().flat()).toHaveLength(n);
  });

  it('while disabled (the peer has not said it reads batches) sends every frame alone', () => {
    const { batcher, messages, turnEnds } = manualBatcher({ enabled: false });
    for (let i = 0; i < 3; i++) batcher.send(frame(FrameType.CLOSE, 2 * i + 2));
    turnEnds();
    expect(messages).toHaveLength(3);
    expect(messages.some(isBatch)).toBe(false);
  });

  it('copies queued frames when the caller reuses its buffer (copiesOnSend)', () => {
    const { batcher, turnEnds, unpacked } = manualBatcher({ copiesOnSend: true });
    const reused = frame(FrameType.DATA, 2, new Uint8Array([1, 2, 3]));
    batcher.send(reused);
    reused.set([9, 9, 9], FRAME_HEADER_BYTES);
    batcher.send(frame(FrameType.CLOSE, 2));
    turnEnds();
    expect([...unpacked()[0]![0]!.payload]).toEqual([1, 2, 3]);
  });

  it('reports a send that throws at flush instead of throwing from the timer', () => {
    const errors: string[] = [];
    let pending: (() => void) | null = null;
    const batcher = new FrameBatcher({
      send: () => {
        throw new Error('socket closed');
      },
      schedule: (f) => (pending = f),
      enabled: true,
      onError: (m) => errors.push(m),
    });
    batcher.send(frame(FrameType.CLOSE, 2));
    expect(() => pending!()).not.toThrow();
    expect(errors).toEqual(['transport send failed: socket closed']);
  });
});

describe('a mux receiving batches', () => {
  it('handles each frame of a batch as if it came alone', async () => {
    const { mux, opened, sent } = rawPeer({ side: 'agent' });
    const open = new TextEncoder().encode(JSON.stringify({ kind: 'tcp', tunnel: 't1' }));
    mux.receive(encodeBatch([frame(FrameType.OPEN, 2, open), frame(FrameType.DATA, 2, new Uint8Array([7, 8])), frame(FrameType.CLOSE, 2)]));
    expect(opened).toHaveLength(1);
    opened[0]!.accept({});
    expect([...(await readAll(opened[0]!.readable))]).toEqual([7, 8]);
    expect(sent.some((f) => f.type === FrameType.ACCEPT)).toBe(true);
  });

  it('reports a malformed batch, keeps what came before the fault, and never throws', () => {
    const { mux, opened, errors } = rawPeer({ side: 'agent' });
    const open = new TextEncoder().encode(JSON.stringify({ kind: 'tcp', tunnel: 't1' }));
    const message = encodeBatch([frame(FrameType.OPEN, 2, open), frame(FrameType.OPEN, 4, open)]);
    expect(() => mux.receive(message.subarray(0, message.byteLength - 1))).not.toThrow();
    expect(opened.map((s) => s.id)).toEqual([2]);
    expect(errors.some((e) => e.startsWith('malformed batch'))).toBe(true);
  });

  it('carries many small exchanges between batching muxes in fewer messages than frames', async () => {
    const l = loopback({ batch: 'timer', log: true });
    const answered = (async () => {
      for (let i = 0; i < 20; i++) {
        const s = await l.agentOffers.next();
        s.accept({ status: 200 }, { body: new Uint8Array([i]), fin: true });
      }
    })();
    const streams = Array.from({ length: 20 }, () => l.hub.open({ kind: 'tcp', tunnel: 't' }, { fin: true }));
    const bodies = await Promise.all(streams.map((s) => s.accepted.then(() => readAll(s.readable))));
    await answered;
    await settle();
    expect(bodies.map((b) => b[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const frames = l.log.filter((d) => d.from === 'hub' && d.frame.type === FrameType.OPEN).length;
    expect(frames).toBe(20);
    expect(l.toAgent.sent).toBeLessThan(frames);
    expect(l.toHub.sent).toBeLessThan(20);
  });

  it('a batcher is off until told the peer reads batches: an older peer gets one frame per message', async () => {
    const messages: Uint8Array[] = [];
    const batcher = new FrameBatcher({ send: (m) => messages.push(m), schedule: (f) => setTimeout(f, 0) });
    const mux = new StreamMux(batcher, { side: 'hub' });
    mux.open({ kind: 'tcp', tunnel: 't' });
    mux.open({ kind: 'tcp', tunnel: 't' });
    await settle();
    expect(messages).toHaveLength(2);
    expect(messages.every((m) => !isBatch(m))).toBe(true);
  });
});
