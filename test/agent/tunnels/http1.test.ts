// The agent's HTTP/1.1 client for tunnel targets, against raw TCP servers that write exactly the
// bytes each case needs (split heads, chunked coding byte by byte, interim answers, smuggling
// shapes, idle closes), and against Bun.serve for keep-alive.
import { afterAll, afterEach, describe, expect, it } from 'bun:test';
import type { Socket, TCPSocketListener } from 'bun';
import { BadRequestError, Http1Agent, type Http1Request, type Http1Response } from '../../../agent/tunnels/http1.ts';
import { BadResponseError } from '../../../agent/tunnels/http1-parse.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const listeners: TCPSocketListener<unknown>[] = [];

afterEach(() => {
  for (const l of listeners.splice(0)) l.stop(true);
});

interface Seen {
  /** Every request head each connection received, by connection number. */
  requests: string[][];
  connections: number;
}

/**
 * A raw HTTP "server": for each request head it receives (bodies are read as Content-Length or
 * chunked says, crudely), `answer` returns the bytes to write (strings or byte arrays, written
 * one after another), or 'close' to drop the connection without answering.
 */
function rawServer(answer: (head: string, conn: number, nth: number) => (string | Uint8Array)[] | 'close'): { port: number; seen: Seen } {
  const seen: Seen = { requests: [], connections: 0 };
  const l = Bun.listen<{ conn: number; buf: string }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { conn: seen.connections++, buf: '' };
        seen.requests.push([]);
      },
      async data(s, d) {
        s.data.buf += Buffer.from(d).toString('latin1');
        for (;;) {
          const end = s.data.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = s.data.buf.slice(0, end);
          let rest = s.data.buf.slice(end + 4);
          const cl = /content-length: (\d+)/i.exec(head);
          if (cl) {
            if (rest.length < Number(cl[1])) return;
            rest = rest.slice(Number(cl[1]));
          } else if (/transfer-encoding: chunked/i.test(head)) {
            const last = rest.indexOf('0\r\n\r\n');
            if (last < 0) return;
            rest = rest.slice(last + 5);
          }
          s.data.buf = rest;
          const list = seen.requests[s.data.conn]!;
          list.push(head);
          const out = answer(head, s.data.conn, list.length);
          if (out === 'close') return void s.end();
          for (const part of out) {
            s.write(part);
            s.flush();
            if (out.length > 1) await Bun.sleep(1);
          }
        }
      },
    },
  });
  listeners.push(l as TCPSocketListener<unknown>);
  return { port: l.port, seen };
}

const target = (port: number) => ({ host: '127.0.0.1', port });
const get = (path = '/', extra: Partial<Http1Request> = {}): Http1Request => ({ method: 'GET', path, headers: [['host', 'example']], body: null, bodyLength: null, ...extra });

async function readBody(res: Http1Response): Promise<string> {
  let out = '';
  for (let c = await res.read(); c !== null; c = await res.read()) out += text(c);
  return out;
}

const ok = (body: string, extra = '') => [`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`];

describe('http1 client', () => {
  it('reuses one keep-alive connection for requests in sequence', async () => {
    const { port, seen } = rawServer((head) => ok(`you asked ${head.split(' ')[1]}`));
    const agent = new Http1Agent();
    for (const path of ['/a', '/b', '/c']) {
      const res = await agent.request(target(port), get(path));
      expect(res.status).toBe(200);
      expect(await readBody(res)).toBe(`you asked ${path}`);
    }
    expect(agent.connects).toBe(1);
    expect(seen.connections).toBe(1);
    expect(seen.requests[0]).toHaveLength(3);
    expect(seen.requests[0]![0]).toBe('GET /a HTTP/1.1\r\nhost: example');
    agent.closeIdle();
  });

  it('decodes a chunked body that arrives a byte at a time, with extensions and trailers, and reuses the connection', async () => {
    const wire = '5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: yes\r\n\r\n';
    const { port } = rawServer((_h, _c, nth) => (nth === 1 ? ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', ...wire.split('')] : ok('second')));
    const agent = new Http1Agent();
    const res = await agent.request(target(port), get());
    expect(res.headers).toContainEqual(['transfer-encoding', 'chunked']);
    expect(await readBody(res)).toBe('hello, world');
    expect(await readBody(await agent.request(target(port), get()))).toBe('second');
    expect(agent.connects).toBe(1);
    agent.closeIdle();
  });

  it('skips interim 1xx answers and reads a head split across writes', async () => {
    const { port } = rawServer(() => ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n', 'HTTP/1.1 201 Cre', 'ated\r\nx-a: 1\r\nX-A: 2\r\n', 'content-length: 2\r\n\r\nok']);
    const agent = new Http1Agent();
    const res = await agent.request(target(port), get());
    expect(res.status).toBe(201);
    expect(res.statusText).toBe('Created');
    // Names lower-cased, repeated lines kept apart, the 103's headers not mixed in.
    expect(res.headers).toEqual([
      ['x-a', '1'],
      ['x-a', '2'],
      ['content-length', '2'],
    ]);
    expect(await readBody(res)).toBe('ok');
    agent.closeIdle();
  });

  it('reads a body without a length to the end of the connection, and does not reuse it', async () => {
    const { port, seen } = rawServer(() => ['HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ', 'the end']);
    // The server above never closes by itself: close after the answer.
    const agent = new Http1Agent();
    const res = await agent.request(target(port), get());
    const reading = readBody(res);
    await Bun.sleep(50);
    for (const l of listeners) l.stop(true);
    expect(await reading).toBe('until the end');
    expect(seen.connections).toBe(1);
    expect(agent.idleCount).toBe(0);
  });

  it('does not reuse a connection after Connection: close, bytes past the response (with or without a body), or Transfer-Encoding with Content-Length', async () => {
    const noBody = ['HTTP/1.1 204 No Content\r\n\r\nEXTRA'];
    {
      const { port } = rawServer(() => noBody);
      const agent = new Http1Agent();
      expect((await agent.request(target(port), get())).status).toBe(204);
      expect((await agent.request(target(port), get())).status).toBe(204);
      expect(agent.connects).toBe(2);
      agent.closeIdle();
    }
    for (const answer of [ok('x', 'connection: close\r\n'), ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxEXTRA'], ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n']]) {
      const { port } = rawServer(() => answer);
      const agent = new Http1Agent();
      expect(await readBody(await agent.request(target(port), get()))).toBe('x');
      await agent.request(target(port), get()).then(readBody);
      expect(agent.connects).toBe(2);
      agent.closeIdle();
    }
  });

  it('sends a sized body with its Content-Length, an unsized one chunked, and Content-Length: 0 on an empty POST', async () => {
    const { port, seen } = rawServer(() => ok('done'));
    const agent = new Http1Agent();
    const body = (parts: string[]) => new ReadableStream<Uint8Array>({ start(c) { for (const p of parts) c.enqueue(new TextEncoder().encode(p)); c.close(); } });
    await agent.request(target(port), { method: 'PUT', path: '/sized', headers: [['host', 'h'], ['content-length', '6']], body: body(['abc', 'def']), bodyLength: 6 }).then(readBody);
    await agent.request(target(port), { method: 'POST', path: '/chunked', headers: [['host', 'h']], body: body(['abc', 'defgh']), bodyLength: null }).then(readBody);
    await agent.request(target(port), { method: 'POST', path: '/empty', headers: [['host', 'h']], body: null, bodyLength: null }).then(readBody);
    const heads = seen.requests.flat();
    expect(heads[0]).toContain('content-length: 6');
    expect(heads[0]).not.toContain('transfer-encoding');
    expect(heads[1]).toContain('transfer-encoding: chunked');
    expect(heads[2]).toContain('content-length: 0');
    // All three on the one connection: each body was framed right, or the server would have lost track.
    expect(seen.connections).toBe(1);
    agent.closeIdle();
  });

  it('sends a GET again on a fresh connection when the reused one was closed while idle, but never a POST', async () => {
    // The second request on any connection is dropped unanswered, as when a keep-alive runs out.
    const { port, seen } = rawServer((_h, _c, nth) => (nth === 1 ? ok('fresh') : 'close'));
    const agent = new Http1Agent();
    expect(await readBody(await agent.request(target(port), get()))).toBe('fresh');
    expect(await readBody(await agent.request(target(port), get()))).toBe('fresh');
    expect(seen.connections).toBe(2);
    const post = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(new Uint8Array([1])); c.close(); } });
    await expect(agent.request(target(port), { method: 'POST', path: '/', headers: [['host', 'h'], ['content-length', '1']], body: post, bodyLength: 1 })).rejects.toThrow(/closed the connection/);
    expect(seen.connections).toBe(2);
    agent.closeIdle();
  });

  it('refuses header names and values that would split the request, before writing anything', async () => {
    const { port, seen } = rawServer(() => ok('x'));
    const agent = new Http1Agent();
    await expect(agent.request(target(port), get('/', { headers: [['x-a', 'one\r\nx-injected: 1']] }))).rejects.toBeInstanceOf(BadRequestError);
    await expect(agent.request(target(port), get('/', { headers: [['bad name', 'v']] }))).rejects.toBeInstanceOf(BadRequestError);
    await expect(agent.request(target(port), get('/a HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /b'))).rejects.toBeInstanceOf(BadRequestError);
    await expect(agent.request(target(port), { ...get(), method: 'GET /x' })).rejects.toBeInstanceOf(BadRequestError);
    expect(seen.requests.flat()).toHaveLength(0);
  });

  it('rejects malformed responses', async () => {
    for (const bad of ['SSH-2.0-OpenSSH\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', 'HTTP/1.1 101 Switching\r\n\r\n']) {
      const { port } = rawServer(() => [bad]);
      const agent = new Http1Agent();
      await expect(agent.request(target(port), get())).rejects.toBeInstanceOf(BadResponseError);
    }
    for (const value of ['a\x00b', 'a\rb', 'a\x1bb', 'a\x7f']) {
      const { port } = rawServer(() => [`HTTP/1.1 200 OK\r\nx-odd: ${value}\r\ncontent-length: 0\r\n\r\n`]);
      await expect(new Http1Agent().request(target(port), get()), JSON.stringify(value)).rejects.toThrow(/control character in the x-odd header/);
    }
    // HTAB is allowed inside a value (bytes above 0x7f too: see the latin1 test).
    const tabbed = rawServer(() => ['HTTP/1.1 200 OK\r\nx-tab: a\tb\r\ncontent-length: 0\r\n\r\n']);
    expect((await new Http1Agent().request(target(tabbed.port), get())).headers).toContainEqual(['x-tab', 'a\tb']);
    const folded = rawServer(() => ['HTTP/1.1 200 OK\r\nx-a: 1\r\n folded: 2\r\ncontent-length: 0\r\n\r\n']);
    await expect(new Http1Agent().request(target(folded.port), get())).rejects.toThrow(/folding/);
    const { port } = rawServer(() => ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n']);
    const res = await new Http1Agent().request(target(port), get());
    await expect(readBody(res)).rejects.toBeInstanceOf(BadResponseError);
  });

  it('fails a body the target breaks off before its Content-Length', async () => {
    const { port } = rawServer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort']);
    const res = await new Http1Agent().request(target(port), get());
    const reading = readBody(res);
    await Bun.sleep(20);
    for (const l of listeners) l.stop(true);
    await expect(reading).rejects.toThrow(/before the response was complete/);
  });

  it('keeps header bytes as latin1 characters, as fetch does', async () => {
    const { port } = rawServer(() => [new Uint8Array([...Buffer.from('HTTP/1.1 200 OK\r\nx-v: caf'), 0xe9, ...Buffer.from('\r\ncontent-length: 0\r\n\r\n')])]);
    const res = await new Http1Agent().request(target(port), get());
    expect(res.headers[0]).toEqual(['x-v', 'caf\u00e9']);
  });

  it('closes idle connections after the idle timeout', async () => {
    const { port } = rawServer(() => ok('x'));
    const agent = new Http1Agent({ idleTimeoutMs: 30 });
    await agent.request(target(port), get()).then(readBody);
    expect(agent.idleCount).toBe(1);
    await Bun.sleep(80);
    expect(agent.idleCount).toBe(0);
  });

  it('an abort does not wait for a connect that hangs (a host that drops packets)', async () => {
    const agent = new Http1Agent({ connect: () => new Promise(() => {}) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('gave up')), 30);
    // Without the race against the signal this never settles, and the test times out.
    await expect(agent.request(target(9), get('/', { signal: controller.signal }))).rejects.toThrow('gave up');
  });

  it('aborting mid-body closes the connection to the target', async () => {
    let closed = false;
    const l = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s: Socket<undefined>) {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nsome');
        },
        close() {
          closed = true;
        },
      },
    });
    listeners.push(l as TCPSocketListener<unknown>);
    const controller = new AbortController();
    const agent = new Http1Agent();
    const res = await agent.request(target(l.port), get('/', { signal: controller.signal }));
    expect(text((await res.read())!)).toBe('some');
    const next = res.read();
    controller.abort();
    await expect(next).rejects.toThrow();
    for (let i = 0; i < 50 && !closed; i++) await Bun.sleep(5);
    expect(closed).toBe(true);
    expect(agent.idleCount).toBe(0);
  });

  it('stops reading the socket while a large body goes unread (the target is paced)', async () => {
    let written = 0;
    const block = new Uint8Array(64 * 1024);
    const l = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s: Socket<undefined>) {
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${256 * 1024 * 1024}\r\n\r\n`);
          const pump = () => {
            while (written < 256 * 1024 * 1024) {
              const n = s.write(block);
              written += Math.max(0, n);
              if (n < block.byteLength) return;
            }
          };
          (s as unknown as { pump: () => void }).pump = pump;
          pump();
        },
        drain(s: Socket<undefined>) {
          (s as unknown as { pump: () => void }).pump();
        },
      },
    });
    listeners.push(l as TCPSocketListener<unknown>);
    const res = await new Http1Agent().request(target(l.port), get());
    await Bun.sleep(300);
    // Unread, the client holds about a MiB; the rest waits in kernel buffers, not a 256 MiB flood.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    let got = 0;
    for (let c = await res.read(); c !== null && got < 64 * 1024 * 1024; c = await res.read()) got += c.byteLength;
    expect(got).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    res.cancel();
  });
});

afterAll(() => {
  for (const l of listeners.splice(0)) l.stop(true);
});

describe('request framing', () => {
  const sized = (parts: string[]) => new ReadableStream<Uint8Array>({ start(c) { for (const p of parts) c.enqueue(new TextEncoder().encode(p)); c.close(); } });
  const framingLines = (head: string) => head.split('\r\n').filter((l) => /^(content-length|transfer-encoding):/i.test(l));

  it('writes exactly one framing header of its own, whatever framing headers the caller passed', async () => {
    const { port, seen } = rawServer(() => ok('done'));
    const agent = new Http1Agent();
    const passed: [string, string][] = [['host', 'h'], ['Content-Length', '0000000000000005'], ['transfer-encoding', 'chunked'], ['TRANSFER-ENCODING', 'gzip']];
    await agent.request(target(port), { method: 'POST', path: '/sized', headers: passed, body: sized(['abc', 'def']), bodyLength: 6 }).then(readBody);
    await agent.request(target(port), { method: 'POST', path: '/unsized', headers: passed, body: sized(['abc']), bodyLength: null }).then(readBody);
    await agent.request(target(port), { method: 'PUT', path: '/empty', headers: passed, body: null, bodyLength: null }).then(readBody);
    const heads = seen.requests.flat();
    expect(heads.map(framingLines)).toEqual([['content-length: 6'], ['transfer-encoding: chunked'], ['content-length: 0']]);
    expect(seen.connections).toBe(1);
    agent.closeIdle();
  });

  it('fails a request whose body does not match its length and closes the connection instead of pooling it', async () => {
    const { port, seen } = rawServer(() => ok('done'));
    const agent = new Http1Agent();
    // Longer: the excess is never written (a target would read it as the next request).
    await expect(agent.request(target(port), { method: 'POST', path: '/long', headers: [['host', 'h']], body: sized(['abc', 'TRACE / HTTP/1.1\r\n\r\n']), bodyLength: 3 }).then(readBody)).rejects.toBeInstanceOf(BadRequestError);
    expect(agent.idleCount).toBe(0);
    // Shorter: the target would wait for the rest, or take the next request's bytes for it.
    await expect(agent.request(target(port), { method: 'POST', path: '/short', headers: [['host', 'h']], body: sized(['ab']), bodyLength: 3 }).then(readBody)).rejects.toBeInstanceOf(BadRequestError);
    expect(agent.idleCount).toBe(0);
    expect(seen.requests.flat().filter((h) => h.startsWith('TRACE'))).toEqual([]);
    expect(seen.connections).toBe(2);
  });
});
