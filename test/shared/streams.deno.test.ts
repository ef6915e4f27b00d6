// The stream mux and WebSocket records under Deno: proof that they use only web-standard APIs
// (streams, crypto.subtle, queueMicrotask) and behave the same outside Bun and workerd.
import { deepStrictEqual, ok, strictEqual } from 'node:assert';
import { decodeFrame, FrameType } from '../../shared/protocol/frames.ts';
import { INITIAL_WINDOW } from '../../shared/protocol/flow.ts';
import { StreamMux, StreamResetError, type MuxStream } from '../../shared/protocol/mux.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordKind, type WsRecord } from '../../shared/protocol/ws-records.ts';

declare const Deno: { test(name: string, fn: () => void | Promise<void>): void };

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(n: number, rand: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 256) | 0;
  return out;
}

async function sha256(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Two muxes; frames cross in order, in random batches, after a microtask or a timer turn. */
function pair(seed: number, onAgentOpen?: (s: MuxStream) => void, onHubOpen?: (s: MuxStream) => void) {
  const rand = prng(seed);
  const errors: string[] = [];
  let hub!: StreamMux;
  let agent!: StreamMux;
  const pipe = (target: () => StreamMux) => {
    const queue: Uint8Array[] = [];
    let scheduled = false;
    const run = () => {
      scheduled = false;
      for (let n = 1 + Math.floor(rand() * 4); n > 0 && queue.length; n--) target().receive(queue.shift()!);
      if (queue.length) schedule();
    };
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      if (rand() < 0.7) queueMicrotask(run);
      else setTimeout(run, 0);
    };
    return { sent: [] as Uint8Array[], send: (f: Uint8Array) => (queue.push(f), schedule()) };
  };
  hub = new StreamMux(pipe(() => agent), { side: 'hub', onError: (m) => errors.push(m), onOpen: onHubOpen });
  agent = new StreamMux(pipe(() => hub), { side: 'agent', onError: (m) => errors.push(m), onOpen: onAgentOpen });
  return { hub, agent, errors };
}

async function readAll(readable: ReadableStream<Uint8Array>, rand?: () => number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    if (rand && rand() < 0.2) await sleep(0);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) (out.set(c, at), (at += c.byteLength));
  return out;
}

async function writeAll(writable: WritableStream<Uint8Array>, data: Uint8Array, rand: () => number): Promise<void> {
  const w = writable.getWriter();
  for (let at = 0; at < data.byteLength; ) {
    const n = Math.max(1, Math.floor(2 ** (rand() * 17)));
    await w.write(data.subarray(at, at + n));
    at += n;
  }
  await w.close();
}

Deno.test('a stream opens, carries bytes both ways, half-closes and frees its id', async () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const { hub, agent, errors } = pair(1, (s) => {
    s.accept({ status: 200 });
    void (async () => {
      const req = await readAll(s.readable);
      const w = s.writable.getWriter();
      await w.write(enc.encode(`echo: ${dec.decode(req)}`));
      await w.close();
    })();
  });
  const s = hub.open({ kind: 'http', tunnel: 't', method: 'POST', path: '/', headers: [] });
  strictEqual(s.id, 2);
  const w = s.writable.getWriter();
  await w.write(enc.encode('hello'));
  await w.close();
  deepStrictEqual(await s.accepted, { status: 200 });
  strictEqual(dec.decode(await readAll(s.readable)), 'echo: hello');
  await s.closed;
  await sleep(5);
  strictEqual(hub.size, 0);
  strictEqual(agent.size, 0);
  deepStrictEqual(errors, []);
});

Deno.test('a reset reaches the peer with its code', async () => {
  const { hub } = pair(2, (s) => s.reset('TARGET_REFUSED', 'nothing listens'));
  const s = hub.open({ kind: 'tcp', tunnel: 't' });
  try {
    await s.accepted;
    ok(false, 'accepted should reject');
  } catch (e) {
    ok(e instanceof StreamResetError);
    strictEqual(e.code, 'TARGET_REFUSED');
    strictEqual(e.message, 'nothing listens');
  }
  await s.closed;
  strictEqual(hub.size, 0);
});

Deno.test('a reader that does not read stops the writer at one window', async () => {
  const sent: number[] = [];
  let agent!: StreamMux;
  const hub = new StreamMux(
    {
      send: (f) => {
        const frame = decodeFrame(f);
        if (frame.type === FrameType.DATA) sent.push(frame.payload.byteLength);
        queueMicrotask(() => agent.receive(f));
      },
    },
    { side: 'hub' },
  );
  let peer!: MuxStream;
  agent = new StreamMux({ send: (f) => queueMicrotask(() => hub.receive(f)) }, { side: 'agent', onOpen: (s) => ((peer = s), s.accept({})) });
  const s = hub.open({ kind: 'tcp', tunnel: 't' });
  const data = randomBytes(3 * INITIAL_WINDOW, prng(3));
  const writing = writeAll(s.writable, data, () => 1);
  await sleep(10);
  strictEqual(sent.reduce((a, b) => a + b, 0), INITIAL_WINDOW);
  const got = await readAll(peer.readable);
  await writing;
  strictEqual(await sha256(got), await sha256(data));
});

Deno.test('random streams from both sides arrive intact and all close (seeded)', async () => {
  const seed = 7;
  const rand = prng(seed);
  const sizes = Array.from({ length: 12 }, () => [Math.floor(rand() * 300_000), Math.floor(rand() * 300_000)] as const);
  const payload = (i: number, dir: 0 | 1) => randomBytes(sizes[i]![dir], prng(seed * 1000 + i * 2 + dir));
  const acceptors: Promise<[string, string]>[] = [];
  const answer = (s: MuxStream) => {
    const i = Number((s.open as { tunnel: string }).tunnel);
    s.accept({});
    acceptors[i] = (async () => {
      const down = payload(i, 1);
      const [got] = await Promise.all([readAll(s.readable, rand), writeAll(s.writable, down, rand)]);
      return [await sha256(got), await sha256(down)];
    })();
  };
  const { hub, agent, errors } = pair(seed, answer, answer);
  const results = await Promise.all(
    sizes.map(async (_, i) => {
      await sleep(Math.floor(rand() * 5));
      const s = (i % 2 ? agent : hub).open({ kind: 'tcp', tunnel: String(i) });
      const up = payload(i, 0);
      const [got] = await Promise.all([readAll(s.readable, rand), writeAll(s.writable, up, rand), s.accepted]);
      await s.closed;
      return [await sha256(up), await sha256(got)];
    }),
  );
  for (let i = 0; i < sizes.length; i++) {
    const [gotUp, sentDown] = await acceptors[i]!;
    strictEqual(gotUp, results[i]![0], `stream ${i} upstream`);
    strictEqual(results[i]![1], sentDown, `stream ${i} downstream`);
  }
  await sleep(10);
  strictEqual(hub.size + agent.size, 0);
  deepStrictEqual(errors, []);
});

Deno.test('ws records survive arbitrary splits', () => {
  const rand = prng(9);
  const records: WsRecord[] = [
    { kind: 'text', text: 'hello ✓' },
    { kind: 'binary', data: randomBytes(70_000, rand) },
    { kind: 'close', code: 4000, reason: 'done' },
  ];
  const wire = records.map((r) =>
    r.kind === 'text'
      ? encodeWsRecord(WsRecordKind.TEXT, r.text)
      : r.kind === 'binary'
        ? encodeWsRecord(WsRecordKind.BINARY, r.data)
        : encodeWsRecord(WsRecordKind.CLOSE, new Uint8Array([0x0f, 0xa0, ...new TextEncoder().encode(r.reason)])),
  );
  const all = new Uint8Array(wire.reduce((n, w) => n + w.byteLength, 0));
  let at = 0;
  for (const w of wire) (all.set(w, at), (at += w.byteLength));
  const decoder = new WsRecordDecoder();
  const out: WsRecord[] = [];
  for (let i = 0; i < all.byteLength; ) {
    const n = 1 + Math.floor(rand() * 5000);
    out.push(...decoder.push(all.subarray(i, i + n)));
    i += n;
  }
  deepStrictEqual(out, records);
});
