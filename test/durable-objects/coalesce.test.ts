// The hub joins a request body's small chunks into frame-sized pieces, in workerd itself.
import { describe, expect, it } from 'vitest';
import { coalesce } from '../../durable-objects/capabilities/tunnels/coalesce.ts';
import { MAX_DATA_CHUNK } from '../../shared/protocol/flow.ts';

function source(chunks: Uint8Array[], delayEvery = 0): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      if (i >= chunks.length) return c.close();
      if (delayEvery && i > 0 && i % delayEvery === 0) await new Promise((r) => setTimeout(r, 5));
      c.enqueue(chunks[i++]!);
    },
  });
}

describe('coalesce', () => {
  it('joins queued small chunks up to one frame, keeping every byte in order', async () => {
    const chunks = Array.from({ length: 40_000 }, (_, i) => new Uint8Array(100).fill(i & 0xff));
    const out: Uint8Array[] = [];
    for await (const c of coalesce(source(chunks))) out.push(c);
    const joined = new Uint8Array(out.reduce((a, c) => a + c.byteLength, 0));
    let at = 0;
    for (const c of out) {
      joined.set(c, at);
      at += c.byteLength;
    }
    expect(joined.byteLength).toBe(4_000_000);
    for (let i = 0; i < chunks.length; i += 997) expect(joined[i * 100]).toBe(i & 0xff);
    // 40,000 pieces of 100 bytes become a few dozen frames, none over the limit (and no timer
    // leak: workerd refuses more than 10,000 active timeouts).
    expect(out.length).toBeLessThan(200);
    expect(Math.max(...out.map((c) => c.byteLength))).toBeLessThanOrEqual(MAX_DATA_CHUNK + 100);
  });

  it('does not hold bytes back waiting for more: a pause flushes what is there', async () => {
    const chunks = Array.from({ length: 6 }, () => new Uint8Array(10));
    const out: number[] = [];
    for await (const c of coalesce(source(chunks, 3))) out.push(c.byteLength);
    expect(out.reduce((a, b) => a + b, 0)).toBe(60);
    expect(out.length).toBeGreaterThanOrEqual(2);
  });

  it('cancels the source when the consumer stops early', async () => {
    let cancelled = false;
    const s = new ReadableStream<Uint8Array>({
      pull: (c) => c.enqueue(new Uint8Array(MAX_DATA_CHUNK)),
      cancel: () => {
        cancelled = true;
      },
    });
    for await (const _ of coalesce(s)) break;
    expect(cancelled).toBe(true);
  });
});
