// HTTP tunnels end to end inside one process: the test opens streams on a real hub-side StreamMux,
// the tunnel service answers on the agent side, and a real Bun.serve is the device's local server.
import { afterAll, beforeAll, describe, expect, it } from 'bun:test';
import { gzipSync } from 'node:zlib';
import type { Server, TCPSocketListener } from 'bun';
import { bytes, headerObject, httpOpen, readAll, resetOf, rig, sha256, sleep, text, tunnel, unusedPort, utf8, waitFor, writeAll, type Rig } from './helpers.ts';

const BIG = 64 * 1024 * 1024;
let bigBody: Uint8Array;
let bigSha: string;
let server: Server<unknown>;
/** What the server saw of the lazily produced download, for the backpressure and abort tests. */
const lazy = { pulled: 0, cancelled: false, aborted: false };
/** Raw TCP "HTTP servers" for misbehaviour fetch-based servers cannot produce. */
let hanging: TCPSocketListener<undefined>;
let short: TCPSocketListener<undefined>;

beforeAll(async () => {
  bigBody = bytes(BIG, 7);
  bigSha = await sha256(bigBody);
  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 60,
    async fetch(req) {
      const url = new URL(req.url);
      switch (url.pathname) {
        case '/echo': {
          const body = await req.text();
          return Response.json({ method: req.method, path: url.pathname + url.search, headers: headerObject(req.headers), body });
        }
        case '/sse': {
          let n = 0;
          const stream = new ReadableStream<Uint8Array>({
            async pull(c) {
              await sleep(50);
              c.enqueue(utf8(`data: event ${n}\n\n`));
              if (++n === 10) c.close();
            },
          });
          return new Response(stream, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
        }
        case '/download':
          return new Response(bigBody as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } });
        case '/lazy': {
          lazy.pulled = 0;
          lazy.cancelled = false;
          lazy.aborted = false;
          req.signal.addEventListener('abort', () => (lazy.aborted = true));
          const chunk = bytes(64 * 1024, 3);
          const stream = new ReadableStream<Uint8Array>(
            {
              pull(c) {
                lazy.pulled += chunk.byteLength;
                c.enqueue(chunk);
                if (lazy.pulled >= 512 * 1024 * 1024) c.close();
              },
              cancel() {
                lazy.cancelled = true;
              },
            },
            { highWaterMark: 0 },
          );
          return new Response(stream);
        }
        case '/upload': {
          const hasher = new Bun.CryptoHasher('sha256');
          let length = 0;
          const reader = req.body!.getReader();
          for (let next = await reader.read(); !next.done; next = await reader.read()) {
            hasher.update(next.value);
            length += next.value.byteLength;
          }
          return Response.json({ sha: hasher.digest('hex'), length, te: req.headers.get('transfer-encoding'), cl: req.headers.get('content-length') });
        }
        case '/cookies': {
          const headers = new Headers({ 'content-type': 'text/plain' });
          headers.append('set-cookie', 'a=1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly');
          headers.append('set-cookie', 'b=2; Path=/, x; Secure');
          return new Response('cookies', { headers });
        }
        case '/gzip':
          return new Response(new Uint8Array(gzipSync(utf8('hello '.repeat(1000)))), { headers: { 'content-encoding': 'gzip', 'content-type': 'text/plain' } });
        case '/redirect':
          return new Response(null, { status: 302, headers: { location: 'http://elsewhere.example/next' } });
        case '/hop':
          return new Response('hop', { headers: { 'keep-alive': 'timeout=5', 'x-drop-me': '1', connection: 'x-drop-me', 'x-keep': 'yes' } });
        case '/many-headers': {
          // One header over the 16 KiB a StreamAccept allows per value.
          return new Response('big', { headers: { 'x-big': 'v'.repeat(20 * 1024) } });
        }
        case '/no-content':
          return new Response(null, { status: 204, headers: { 'x-was': 'here' } });
        default:
          return new Response('not found', { status: 404 });
      }
    },
  });
  // Accepts and reads, but never answers.
  hanging = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  // Announces 1000 bytes and sends 10 before closing.
  short = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s) {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n0123456789');
        s.end();
      },
    },
  });
});

afterAll(() => {
  server.stop(true);
  hanging.stop(true);
  short.stop(true);
});

function webRig(extra: Parameters<typeof rig>[1] = {}): Rig {
  return rig([tunnel('web', 'http', server.port!), tunnel('hang', 'http', hanging.port), tunnel('short', 'http', short.port)], extra);
}

async function get(r: Rig, path: string, headers: [string, string][] = [], tunnelId = 'web') {
  const stream = r.open(httpOpen(tunnelId, 'GET', path, headers));
  await stream.writable.close();
  const head = await stream.accepted;
  return { stream, head, body: () => readAll(stream.readable) };
}

const header = (head: { headers?: [string, string][] }, name: string) => (head.headers ?? []).filter(([n]) => n === name).map(([, v]) => v);

describe('http tunnel', () => {
  it('carries a GET to the target and its response back', async () => {
    const r = webRig();
    const { head, body } = await get(r, '/echo?x=1', [['accept', 'application/json'], ['x-custom', 'kept']]);
    expect(head.status).toBe(200);
    const seen = JSON.parse(text(await body()));
    expect(seen.method).toBe('GET');
    expect(seen.path).toBe('/echo?x=1');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(header(head, 'content-type')[0]).toContain('application/json');
    await waitFor(() => r.service.stats().open.http === 0, 2_000, 'the session to end');
    expect(r.service.stats().opened.http).toBe(1);
  });

  it('sends Host as the target authority and keeps the public name in X-Forwarded-Host', async () => {
    const r = webRig();
    const { body } = await get(r, '/echo', [['host', 'web.tunnels.example'], ['connection', 'keep-alive, x-secret'], ['x-secret', 'hop'], ['te', 'trailers'], ['upgrade', 'h2c']]);
    const seen = JSON.parse(text(await body()));
    expect(seen.headers.host).toBe(`127.0.0.1:${server.port}`);
    expect(seen.headers['x-forwarded-host']).toBe('web.tunnels.example');
    // Hop-by-hop headers, and those a Connection header names, stop at the agent.
    expect(seen.headers['x-secret']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers.upgrade).toBeUndefined();
  });

  it('leaves an X-Forwarded-Host the relay set alone', async () => {
    const r = webRig();
    const { body } = await get(r, '/echo', [['host', 'a.example'], ['x-forwarded-host', 'relay-set.example']]);
    expect(JSON.parse(text(await body())).headers['x-forwarded-host']).toBe('relay-set.example');
  });

  it('streams a POST body to the target', async () => {
    const r = webRig();
    const stream = r.open(httpOpen('web', 'POST', '/echo', [['content-type', 'text/plain'], ['content-length', '11']]));
    await writeAll(stream.writable, utf8('hello world'));
    const head = await stream.accepted;
    expect(head.status).toBe(200);
    const seen = JSON.parse(text(await readAll(stream.readable)));
    expect(seen).toMatchObject({ method: 'POST', body: 'hello world' });
    expect(seen.headers['content-length']).toBe('11');
  });

  it('sends a bodyless DELETE without a body, and an unsized POST chunked', async () => {
    const r = webRig();
    const del = r.open(httpOpen('web', 'DELETE', '/echo'));
    await del.writable.close();
    await del.accepted;
    const seenDel = JSON.parse(text(await readAll(del.readable)));
    expect(seenDel.method).toBe('DELETE');
    expect(seenDel.headers['transfer-encoding']).toBeUndefined();

    const post = r.open(httpOpen('web', 'POST', '/upload'));
    const w = post.writable.getWriter();
    for (const part of ['one ', 'two ', 'three']) await w.write(utf8(part));
    await w.close();
    await post.accepted;
    const seen = JSON.parse(text(await readAll(post.readable)));
    expect(seen.length).toBe(13);
    expect(seen.sha).toBe(await sha256(utf8('one two three')));
    expect(seen.te).toBe('chunked');
  });

  it('delivers SSE events as they are produced, not at the end', async () => {
    const r = webRig();
    const started = Date.now();
    const { head, stream } = await get(r, '/sse', [['accept', 'text/event-stream']]);
    expect(header(head, 'content-type')[0]).toBe('text/event-stream');
    const reader = stream.readable.getReader();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    expect(text(first.value!)).toContain('data: event 0');
    let all = text(first.value!);
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      all += text(next.value);
    }
    const endAt = Date.now() - started;
    expect(all).toContain('data: event 9');
    // Ten events 50 ms apart: the whole stream takes ≥ 450 ms; the first must come well before.
    expect(endAt).toBeGreaterThanOrEqual(450);
    expect(firstAt).toBeLessThan(endAt - 300);
  });

  it('streams a 64 MiB download intact', async () => {
    const r = webRig();
    const { head, body } = await get(r, '/download');
    expect(header(head, 'content-length')[0]).toBe(String(BIG));
    const got = await body();
    expect(got.byteLength).toBe(BIG);
    expect(await sha256(got)).toBe(bigSha);
  }, 30_000);

  it('streams a 32 MiB upload intact', async () => {
    const r = webRig();
    const size = 32 * 1024 * 1024;
    const data = bigBody.subarray(0, size);
    const stream = r.open(httpOpen('web', 'PUT', '/upload', [['content-length', String(size)]]));
    const writing = writeAll(stream.writable, data, () => 200_000);
    const head = await stream.accepted;
    await writing;
    expect(head.status).toBe(200);
    const seen = JSON.parse(text(await readAll(stream.readable)));
    expect(seen.length).toBe(size);
    expect(seen.sha).toBe(await sha256(data));
    expect(seen.cl).toBe(String(size));
  }, 30_000);

  it('reads the target only as fast as the visitor reads (memory stays flat)', async () => {
    const r = webRig();
    const { stream } = await get(r, '/lazy');
    const reader = stream.readable.getReader();
    await reader.read();
    await sleep(500);
    // The target can produce 512 MiB at once; without backpressure all of it would be pulled.
    // What may be in flight: the stream window, Bun's and the kernel's socket buffers.
    expect(lazy.pulled).toBeLessThan(24 * 1024 * 1024);
    const before = lazy.pulled;
    let read = 0;
    while (read < 32 * 1024 * 1024) read += (await reader.read()).value!.byteLength;
    // And it flows again once the visitor reads.
    expect(lazy.pulled).toBeGreaterThan(before);
    await reader.cancel();
  }, 20_000);

  it('aborts the request to the target as soon as the visitor goes away', async () => {
    const r = webRig();
    const { stream } = await get(r, '/lazy');
    const reader = stream.readable.getReader();
    for (let got = 0; got < 1024 * 1024; ) got += (await reader.read()).value!.byteLength;
    expect(lazy.cancelled || lazy.aborted).toBe(false);
    stream.reset('CANCELLED', 'visitor left');
    await waitFor(() => lazy.cancelled || lazy.aborted, 3_000, 'the target to see the abort');
    await waitFor(() => r.service.stats().open.http === 0, 3_000, 'the session to end');
  }, 20_000);

  it('keeps every Set-Cookie line separate', async () => {
    const r = webRig();
    const { head } = await get(r, '/cookies');
    expect(header(head, 'set-cookie')).toEqual(['a=1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly', 'b=2; Path=/, x; Secure']);
  });

  it('passes compressed bodies through untouched', async () => {
    const r = webRig();
    const { head, body } = await get(r, '/gzip', [['accept-encoding', 'gzip']]);
    expect(header(head, 'content-encoding')).toEqual(['gzip']);
    const got = await body();
    expect(Buffer.from(got)).toEqual(gzipSync(utf8('hello '.repeat(1000))));
  });

  it('hands redirects to the visitor instead of following them', async () => {
    const r = webRig();
    const { head } = await get(r, '/redirect');
    expect(head.status).toBe(302);
    expect(header(head, 'location')).toEqual(['http://elsewhere.example/next']);
  });

  it('drops hop-by-hop response headers', async () => {
    const r = webRig();
    const { head } = await get(r, '/hop');
    expect(header(head, 'x-keep')).toEqual(['yes']);
    expect(header(head, 'keep-alive')).toEqual([]);
    expect(header(head, 'x-drop-me')).toEqual([]);
    expect(header(head, 'connection')).toEqual([]);
  });

  it('answers HEAD and 204 without a body', async () => {
    const r = webRig();
    const head = await get(r, '/download', [], 'web');
    head.stream.reset('CANCELLED', 'not needed');
    const h = r.open(httpOpen('web', 'HEAD', '/download'));
    await h.writable.close();
    const hh = await h.accepted;
    expect(hh.status).toBe(200);
    expect((await readAll(h.readable)).byteLength).toBe(0);
    const nc = await get(r, '/no-content');
    expect(nc.head.status).toBe(204);
    expect(header(nc.head, 'x-was')).toEqual(['here']);
    expect((await nc.body()).byteLength).toBe(0);
  });

  it('resets with TARGET_REFUSED and the reason when nothing listens', async () => {
    const port = await unusedPort();
    const r = rig([tunnel('down', 'http', port)]);
    const stream = r.open(httpOpen('down', 'GET', '/'));
    await stream.writable.close().catch(() => {});
    const reset = await resetOf(stream);
    expect(reset).toEqual({ code: 'TARGET_REFUSED', message: `connect ECONNREFUSED 127.0.0.1:${port}` });
    await waitFor(() => r.service.stats().open.http === 0, 2_000, 'the session to end');
  });

  it('resets with TARGET_TIMEOUT when the target never answers', async () => {
    const r = webRig({ connectTimeoutMs: 300 });
    const started = Date.now();
    const stream = r.open(httpOpen('hang', 'GET', '/'));
    await stream.writable.close();
    const reset = await resetOf(stream);
    expect(reset.code).toBe('TARGET_TIMEOUT');
    expect(reset.message).toContain(`127.0.0.1:${hanging.port}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('resets a response shorter than its Content-Length instead of ending it cleanly', async () => {
    // A small response is read whole before its ACCEPT (one frame), so the reset comes before
    // any head: the visitor gets a 502, never a clean but truncated body.
    const r = webRig();
    const stream = r.open(httpOpen('short', 'GET', '/'), { fin: true });
    const reset = await resetOf(stream);
    expect(reset.code).toBe('TARGET_ERROR');
    expect(reset.message).toMatch(/of the \d+ bytes it announced/);
  });

  it('resets when the response head is too large to carry (instead of throwing)', async () => {
    const r = webRig();
    const stream = r.open(httpOpen('web', 'GET', '/many-headers'));
    await stream.writable.close();
    const reset = await resetOf(stream);
    expect(reset.code).toBe('TARGET_ERROR');
    expect(reset.message).toContain('too large');
    await waitFor(() => r.service.stats().open.http === 0, 2_000, 'the session to end');
  });

  it('refuses a body longer than its Content-Length rather than forwarding the excess', async () => {
    const r = webRig();
    const stream = r.open(httpOpen('web', 'POST', '/echo', [['content-length', '5']]));
    void writeAll(stream.writable, utf8('hello, and a smuggled request')).catch(() => {});
    const reset = await resetOf(stream);
    expect(reset.code).toBe('BAD_REQUEST');
    expect(reset.message).toContain('Content-Length');
  });

  it('refuses a Content-Length it cannot read exactly with BAD_REQUEST, before anything reaches the target', async () => {
    let connections = 0;
    const counting = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { open: () => void connections++, data() {} } });
    try {
      const r = rig([tunnel('count', 'http', counting.port)]);
      const cases: [string, string][][] = [[['content-length', '4, 10']], [['content-length', '+4']], [['content-length', '4.0']], [['content-length', '0000000000000004']], [['content-length', '9007199254740993']], [['content-length', '4'], ['content-length', '4']]];
      for (const headers of cases) {
        const stream = r.open(httpOpen('count', 'POST', '/', headers));
        void writeAll(stream.writable, utf8('abcd')).catch(() => {});
        const reset = await resetOf(stream);
        expect(reset.code, JSON.stringify(headers)).toBe('BAD_REQUEST');
        expect(reset.message, JSON.stringify(headers)).toContain('Content-Length');
      }
      expect(connections).toBe(0);
    } finally {
      counting.stop(true);
    }
  });
});
