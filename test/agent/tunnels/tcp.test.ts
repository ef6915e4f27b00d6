// TCP tunnels through a real StreamMux pair to real Bun.listen servers: bytes both ways, each
// direction closing on its own (the half-close a `printf … | nc` user relies on), failures, and
// how fast bulk data goes through the agent's side.
import { afterAll, beforeAll, describe, expect, it } from 'bun:test';
import type { Socket, TCPSocketListener } from 'bun';
import { bytes, readAll, resetOf, rig, sha256, text, tunnel, unusedPort, utf8, waitFor, writeAll } from './helpers.ts';

type Data = { received: number; chunks: Uint8Array[]; hasher?: Bun.CryptoHasher; ended?: boolean };
let echo: TCPSocketListener<Data>;
/** Reads until FIN, then answers with what it got, then closes its side. */
let replyAfterEof: TCPSocketListener<Data>;
/** Greets, half-closes at once, and keeps counting what it receives; reports through `counts`. */
let greeter: TCPSocketListener<Data>;
/** Counts until FIN, then replies with the count. */
let sink: TCPSocketListener<Data>;
/** Sends SOURCE_BYTES then FIN. */
let source: TCPSocketListener<Data & { at: number }>;
const counts = { greeterReceived: 0, greeterSha: '', closedConnections: 0, sourceWritten: 0 };
const SOURCE_BYTES = 512 * 1024 * 1024;
const sourceBlock = bytes(1024 * 1024, 11);

beforeAll(() => {
  const data = (): Data => ({ received: 0, chunks: [] });
  echo = Bun.listen<Data>({
    hostname: '127.0.0.1',
    port: 0,
    data: data(),
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = data();
      },
      // A test echo: good enough with small writes; big transfers below use other servers.
      data(s, chunk) {
        s.data.chunks.push(new Uint8Array(chunk));
        flush(s);
      },
      drain(s) {
        flush(s);
      },
      end(s) {
        s.data.ended = true;
        flush(s);
      },
      close() {
        counts.closedConnections++;
      },
    },
  });
  replyAfterEof = Bun.listen<Data>({
    hostname: '127.0.0.1',
    port: 0,
    data: data(),
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { ...data(), hasher: new Bun.CryptoHasher('sha256') };
      },
      data(s, chunk) {
        s.data.received += chunk.byteLength;
        s.data.hasher!.update(chunk);
      },
      end(s) {
        s.end(`got ${s.data.received} bytes ${s.data.hasher!.digest('hex')}`);
      },
    },
  });
  greeter = Bun.listen<Data>({
    hostname: '127.0.0.1',
    port: 0,
    data: data(),
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { ...data(), hasher: new Bun.CryptoHasher('sha256') };
        s.write('hello, and goodbye from my side');
        s.shutdown();
      },
      data(s, chunk) {
        s.data.received += chunk.byteLength;
        s.data.hasher!.update(chunk);
      },
      // Both sides have sent FIN by then; Bun reports that as a close without `end`.
      close(s) {
        counts.greeterReceived = s.data.received;
        counts.greeterSha = s.data.hasher!.digest('hex');
      },
    },
  });
  sink = Bun.listen<Data>({
    hostname: '127.0.0.1',
    port: 0,
    data: data(),
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = data();
      },
      data(s, chunk) {
        s.data.received += chunk.byteLength;
      },
      end(s) {
        s.end(String(s.data.received));
      },
    },
  });
  source = Bun.listen<Data & { at: number }>({
    hostname: '127.0.0.1',
    port: 0,
    data: { ...data(), at: 0 },
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { ...data(), at: 0 };
        pumpSource(s);
      },
      drain(s) {
        pumpSource(s);
      },
      // Without an `end` handler Bun closes the socket at the peer's FIN, half-open or not.
      end() {},
    },
  });
});

function flush(s: Socket<Data>) {
  while (s.data.chunks.length) {
    const chunk = s.data.chunks[0]!;
    const n = s.write(chunk);
    if (n < chunk.byteLength) {
      s.data.chunks[0] = chunk.subarray(Math.max(0, n));
      return;
    }
    s.data.chunks.shift();
  }
  // Everything echoed and the client sent FIN: close (Bun's end() closes both directions).
  if (s.data.ended) s.end();
}

function pumpSource(s: Socket<Data & { at: number }>) {
  while (s.data.at < SOURCE_BYTES) {
    const off = s.data.at % sourceBlock.byteLength;
    const n = s.write(sourceBlock, off, Math.min(sourceBlock.byteLength - off, SOURCE_BYTES - s.data.at));
    if (n <= 0) return;
    s.data.at += n;
    counts.sourceWritten = s.data.at;
  }
  s.end();
}

afterAll(() => {
  for (const l of [echo, replyAfterEof, greeter, sink, source]) l.stop(true);
});

const tcpRig = (extra: Parameters<typeof rig>[1] = {}) =>
  rig(
    [tunnel('echo', 'tcp', echo.port), tunnel('reply', 'tcp', replyAfterEof.port), tunnel('greeter', 'tcp', greeter.port), tunnel('sink', 'tcp', sink.port), tunnel('source', 'tcp', source.port)],
    extra,
  );

describe('tcp tunnel', () => {
  it('carries bytes both ways', async () => {
    const r = tcpRig();
    const stream = r.open({ kind: 'tcp', tunnel: 'echo' });
    expect(await stream.accepted).toEqual({});
    const writer = stream.writable.getWriter();
    const reader = stream.readable.getReader();
    await writer.write(utf8('ping'));
    expect(text((await reader.read()).value!)).toBe('ping');
    await writer.write(utf8('pong'));
    expect(text((await reader.read()).value!)).toBe('pong');
    await writer.close();
    // Our FIN reaches the echo server, which closes its side: the readable ends.
    expect((await reader.read()).done).toBe(true);
    await stream.closed;
    await waitFor(() => r.service.stats().open.tcp === 0, 2_000, 'the session to end');
    expect(r.service.stats().opened.tcp).toBe(1);
  });

  it('half-close: send, FIN, and still read the reply the target sends after seeing EOF', async () => {
    const r = tcpRig();
    const stream = r.open({ kind: 'tcp', tunnel: 'reply' });
    await stream.accepted;
    const payload = bytes(3 * 1024 * 1024 + 17, 5);
    await writeAll(stream.writable, payload, () => 100_000);
    const reply = text(await readAll(stream.readable));
    expect(reply).toBe(`got ${payload.byteLength} bytes ${await sha256(payload)}`);
    await stream.closed;
  }, 20_000);

  it('half-close the other way: the target FINs first and still receives what we send', async () => {
    const r = tcpRig();
    const stream = r.open({ kind: 'tcp', tunnel: 'greeter' });
    await stream.accepted;
    // The greeting ends with the target's FIN…
    expect(text(await readAll(stream.readable))).toBe('hello, and goodbye from my side');
    // …yet our direction stays open.
    const payload = bytes(2 * 1024 * 1024, 9);
    await writeAll(stream.writable, payload, () => 65_536);
    await stream.closed;
    await waitFor(() => counts.greeterReceived === payload.byteLength, 3_000, 'the target to see all bytes');
    expect(counts.greeterSha).toBe(await sha256(payload));
  }, 20_000);

  it('carries 64 MiB through an echo intact', async () => {
    const r = tcpRig();
    const stream = r.open({ kind: 'tcp', tunnel: 'echo' });
    await stream.accepted;
    const payload = bytes(64 * 1024 * 1024, 21);
    const [, echoed] = await Promise.all([writeAll(stream.writable, payload, () => 256 * 1024), readAll(stream.readable)]);
    expect(echoed.byteLength).toBe(payload.byteLength);
    expect(await sha256(echoed)).toBe(await sha256(payload));
  }, 30_000);

  it('resets with TARGET_REFUSED and the reason when nothing listens', async () => {
    const port = await unusedPort();
    const r = rig([tunnel('down', 'tcp', port)]);
    const reset = await resetOf(r.open({ kind: 'tcp', tunnel: 'down' }));
    expect(reset).toEqual({ code: 'TARGET_REFUSED', message: `connect ECONNREFUSED 127.0.0.1:${port}` });
    await waitFor(() => r.service.stats().open.tcp === 0, 2_000, 'the session to end');
  });

  it('resets with TARGET_TIMEOUT when the connect never completes', async () => {
    const r = rig([tunnel('slow', 'tcp', 9)], { connectTimeoutMs: 200, connectImpl: () => new Promise(() => {}) });
    const started = Date.now();
    const reset = await resetOf(r.open({ kind: 'tcp', tunnel: 'slow' }));
    expect(reset.code).toBe('TARGET_TIMEOUT');
    expect(reset.message).toBe('connect to 127.0.0.1:9 timed out after 0.2 s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await waitFor(() => r.service.stats().open.tcp === 0, 2_000, 'the session to end');
  });

  it('closes the target connection when the visitor resets', async () => {
    const r = tcpRig();
    const closedBefore = counts.closedConnections;
    const stream = r.open({ kind: 'tcp', tunnel: 'echo' });
    await stream.accepted;
    const writer = stream.writable.getWriter();
    await writer.write(utf8('x'));
    await stream.readable.getReader().read();
    stream.reset('CANCELLED', 'client went away');
    await waitFor(() => counts.closedConnections > closedBefore, 2_000, 'the echo server to see the close');
    await waitFor(() => r.service.stats().open.tcp === 0, 2_000, 'the session to end');
  });

  it('closeAll resets every stream and closes every target connection', async () => {
    const r = tcpRig();
    const closedBefore = counts.closedConnections;
    const streams = [r.open({ kind: 'tcp', tunnel: 'echo' }), r.open({ kind: 'tcp', tunnel: 'echo' })];
    await Promise.all(streams.map((s) => s.accepted));
    expect(r.service.stats().open.tcp).toBe(2);
    r.service.closeAll();
    for (const s of streams) {
      const err = await s.readable
        .getReader()
        .read()
        .then(
          () => null,
          (e) => e,
        );
      expect(err?.code).toBe('SOCKET_CLOSED');
    }
    await waitFor(() => counts.closedConnections >= closedBefore + 2, 2_000, 'both target connections to close');
    await waitFor(() => r.service.stats().open.tcp === 0, 2_000, 'the sessions to end');
  });

  it('reads the target only as fast as the hub takes the bytes (memory stays flat)', async () => {
    const r = tcpRig();
    const down = r.open({ kind: 'tcp', tunnel: 'source' });
    await down.accepted;
    const reader = down.readable.getReader();
    await reader.read();
    await new Promise((res) => setTimeout(res, 500));
    // The source could write 512 MiB at once; what may be out: the stream window, a chunk or two
    // waiting for credit, and the kernel's socket buffers.
    expect(counts.sourceWritten).toBeLessThan(24 * 1024 * 1024);
    const before = counts.sourceWritten;
    for (let got = 0; got < 32 * 1024 * 1024; ) got += (await reader.read()).value!.byteLength;
    expect(counts.sourceWritten).toBeGreaterThan(before);
    down.reset('CANCELLED', 'enough');
  }, 20_000);

  it('moves bulk data fast in both directions', async () => {
    const r = tcpRig();
    // Upload: the hub writes, the target sinks and reports the count after our FIN.
    const up = r.open({ kind: 'tcp', tunnel: 'sink' });
    await up.accepted;
    const block = bytes(4 * 1024 * 1024, 1);
    const upBytes = 512 * 1024 * 1024;
    let t = performance.now();
    const upWriter = up.writable.getWriter();
    for (let sent = 0; sent < upBytes; sent += block.byteLength) await upWriter.write(block);
    await upWriter.close();
    expect(text(await readAll(up.readable))).toBe(String(upBytes));
    const upRate = upBytes / 2 ** 20 / ((performance.now() - t) / 1000);

    // Download: the target sends SOURCE_BYTES then FIN.
    const down = r.open({ kind: 'tcp', tunnel: 'source' });
    t = performance.now();
    await down.accepted;
    await down.writable.close();
    let got = 0;
    const reader = down.readable.getReader();
    for (let next = await reader.read(); !next.done; next = await reader.read()) got += next.value.byteLength;
    const downRate = SOURCE_BYTES / 2 ** 20 / ((performance.now() - t) / 1000);
    expect(got).toBe(SOURCE_BYTES);
    console.log(`tcp tunnel through StreamMux in-process: upload ${upRate.toFixed(0)} MiB/s, download ${downRate.toFixed(0)} MiB/s`);
    // Speed is for `npm run bench`, not for assertions here; the figures are only printed.
  }, 60_000);
});
