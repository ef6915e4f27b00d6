// Tunnels end to end: the relay in workerd, a real agent, real local services (a Bun HTTP/WS
// server and a TCP echo), and visitors that reach them by subdomain, WebSocket and `pirelay tcp`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Agent, fetch as ufetch, request, WebSocket as UWebSocket, type Dispatcher } from 'undici';
import { BUN, ROOT, startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { agentCli, freePort, http, loopbackLookup, startTargets, tcpExchange, tempDir, type Targets } from './harness.ts';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startRelay } from '../../scripts/relay.ts';

let env: DevEnv;
let url: string;
let port: number;
let key: string;
let deviceId: string;
let targets: Targets;
let ports: { http: number; tcp: number; sized: number };
/** Resolves every name (e.g. myapp.localhost) to 127.0.0.1, as browsers and curl do. */
const dispatcher: Dispatcher = new Agent({ connect: { lookup: loopbackLookup } as never });
const visit = (name: string, path: string, init: Parameters<typeof ufetch>[1] = {}) => ufetch(`http://${name}.localhost:${port}${path}`, { dispatcher, ...init });

/** The target's count of /big downloads in progress and cancelled by their client. */
const downloads = async () => (await (await ufetch(`http://127.0.0.1:${ports.http}/downloads`)).json()) as { open: number; cancelled: number };
/** The target's count of /upload bodies being read and broken off before their end. */
const uploads = async () => (await (await ufetch(`http://127.0.0.1:${ports.http}/uploads`)).json()) as { open: number; aborted: number };
const RELAY_VARS = { HEARTBEAT_INTERVAL_MS: '500', CLIENTLESS_WAIT_MS: '8000' };

/** Stops the relay and starts it again on the same port and state (the agents reconnect by themselves). */
async function restartRelay(): Promise<void> {
  await env.relay.stop();
  const secrets = JSON.parse(readFileSync(join(env.dir, 'secrets.json'), 'utf8'));
  env.relay = await startRelay({ port, stateDir: join(env.dir, 'state'), vars: { ...secrets, ...RELAY_VARS } });
}

async function createTunnel(body: Record<string, unknown>) {
  const r = await http(`${url}/api/v1/devices/${deviceId}/tunnels`, { key, json: body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

beforeAll(async () => {
  targets = await startTargets();
  ports = targets;
  port = await freePort();
  env = await startDevEnv({ dir: await tempDir('tunnels'), port, demoDevices: ['tunnel-pi'], vars: RELAY_VARS, agentArgs: ['--max-backoff-ms', '500'] });
  await waitOnline(env);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
  await createTunnel({ name: 'web', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'public' } });
  // The agent learns the new tunnel over its socket; give it a moment.
  await waitFor('tunnel reachable', async () => (await visit('web', '/tiny')).status === 200, 10_000);
});

afterAll(async () => {
  await env?.stop();
  targets?.stop();
});

describe('HTTP tunnels', () => {
  it('carries method, path, query, headers and body, and adds X-Forwarded-*', async () => {
    const res = await visit('web', '/echo/here?x=1&y=two', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-custom': 'yes' }, body: 'hello target' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-target')).toBe('echo');
    const seen = (await res.json()) as { method: string; path: string; query: string; headers: Record<string, string>; body: string };
    expect(seen.method).toBe('POST');
    expect(seen.path).toBe('/echo/here');
    expect(seen.query).toBe('?x=1&y=two');
    expect(seen.body).toBe('hello target');
    expect(seen.headers['x-custom']).toBe('yes');
    expect(seen.headers['x-forwarded-host']).toBe(`web.localhost:${port}`);
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    // The local relay listens on loopback, so the visitor can only be this machine.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(Object.keys(seen.headers).filter((h) => h.startsWith('x-pirelay-'))).toEqual([]);
  });

  it('carries large and unusual header values intact (the head travels to the hub as JSON)', async () => {
    const big = 'v'.repeat(12 * 1024);
    // UTF-8 bytes, as a client sends them (undici writes a string's characters as single bytes).
    const odd = Buffer.from('a "quoted" \\ back\tslash, caf\u00e9 \u2713', 'utf8').toString('latin1');
    const res = await visit('web', '/echo/h', { headers: { 'x-big': big, 'x-odd': odd, cookie: 'pirelay_session=x.y.z; app=1' } });
    expect(res.status, await res.clone().text()).toBe(200);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(seen.headers['x-big']).toBe(big);
    expect(seen.headers['x-odd']).toBe(odd);
    expect(seen.headers.cookie).toBe('app=1');
    // A value past what a stream's head carries is refused by the relay with 431, not sent.
    const huge = await visit('web', '/echo/h', { headers: { 'x-huge': 'v'.repeat(17 * 1024), accept: 'application/json' } });
    expect(huge.status).toBe(431);
    expect(((await huge.json()) as { code: string }).code).toBe('HEADERS_TOO_LARGE');
    const long = await visit('web', `/echo/${'p'.repeat(17 * 1024)}`, { headers: { accept: 'application/json' } });
    expect(long.status).toBe(414);
  });

  it('passes a body the target compressed through as it is, small or streamed, sized or chunked', async () => {
    for (const [query, lines] of [['n=1000', 1000], ['n=2000000', 2_000_000], ['n=2000000&chunked', 2_000_000]] as const) {
      // undici decodes Content-Encoding as a browser does: one gzip layer, the target's.
      const res = await visit('web', `/gzip?${query}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(res.status, query).toBe(200);
      expect(res.headers.get('content-encoding'), query).toBe('gzip');
      const text = await res.text();
      expect(text.length, query).toBe(lines * 'compressed once\n'.length);
      expect(text.startsWith('compressed once\ncompressed once\n'), query).toBe(true);
    }
    // The raw bytes are the target's gzip stream, not compressed a second time.
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/gzip?n=1000', headers: { host: `web.localhost:${port}`, 'accept-encoding': 'gzip' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(gunzipSync(raw).toString()).toBe('compressed once\n'.repeat(1000));
  });

  it('behaves as the web server behind it does: HEAD, redirects, ETag and 304, Range and 206, Expect: 100-continue', async () => {
    const head = await visit('web', '/file', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe('"v1"');
    expect(await head.text()).toBe('');

    const moved = await visit('web', '/dir', { redirect: 'manual' });
    expect(moved.status).toBe(301);
    expect(moved.headers.get('location')).toBe('/dir/');

    const cached = await visit('web', '/file', { headers: { 'if-none-match': '"v1"' } });
    expect(cached.status).toBe(304);
    expect(await cached.text()).toBe('');

    const part = await visit('web', '/file', { headers: { range: 'bytes=5-14' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 5-14/1000');
    expect(part.headers.get('content-length')).toBe('10');
    expect(await part.text()).toBe('5678901234');

    // curl sends Expect: 100-continue before a large upload and waits (briefly) for the go-ahead.
    const payload = Buffer.alloc(3 * 1024 * 1024, 9);
    const up = await request(`http://web.localhost:${port}/upload`, { dispatcher, method: 'PUT', body: payload, expectContinue: true, headers: { 'content-length': String(payload.length) } });
    expect(up.statusCode).toBe(200);
    expect(await up.body.json()).toEqual({ size: payload.length, sha256: createHash('sha256').update(payload).digest('hex') });
  });

  it('keeps both Set-Cookie headers', async () => {
    const res = await visit('web', '/cookies');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  });

  it('streams SSE as it is produced, not buffered', async () => {
    const res = await visit('web', '/sse?n=4&every=400');
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const started = Date.now();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    expect(new TextDecoder().decode(first.value)).toContain('"n":0');
    // The whole stream takes ≥ 1.2 s; the first event must arrive long before that.
    expect(firstAt).toBeLessThan(800);
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toContain('"n":3');
  });

  it('passes a 64 MiB download intact', async () => {
    const bytes = 64 * 1024 * 1024;
    const res = await visit('web', `/big?bytes=${bytes}`);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of res.body!) {
      hash.update(chunk);
      size += chunk.byteLength;
    }
    const expected = createHash('sha256');
    for (let i = 0, sent = 0; sent < bytes; i++, sent += 65536) expected.update(Buffer.alloc(Math.min(65536, bytes - sent), i & 0xff));
    expect(size).toBe(bytes);
    expect(hash.digest('hex')).toBe(expected.digest('hex'));
  });

  it('a bulk download nobody reads does not stall a small request on the same device socket', async () => {
    const controller = new AbortController();
    const big = await visit('web', `/big?bytes=${1024 * 1024 * 1024}`, { signal: controller.signal });
    await big.body!.getReader().read(); // then stop reading: its window fills and it waits
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const small = await visit('web', '/tiny');
    expect(await small.text()).toBe('ok');
    expect(Date.now() - started).toBeLessThan(2_000);
    controller.abort();
    await waitFor('the paused download to end at the target', async () => (await downloads()).open === 0, 5_000, 50);
  });

  it('a visitor that goes away mid-download frees the stream at once, up to the target', async () => {
    const direct = downloads;
    const before = await direct();
    const controller = new AbortController();
    const res = await visit('web', `/big?bytes=${1024 * 1024 * 1024}`, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    expect((await direct()).open).toBe(before.open + 1);
    controller.abort();
    // The hub resets the stream, the agent aborts its fetch, the target sees its response cancelled.
    await waitFor('target download cancelled', async () => {
      const now = await direct();
      return now.open === before.open && now.cancelled === before.cancelled + 1;
    }, 5_000, 50);
  });

  it('passes a 32 MiB streamed upload intact', async () => {
    const total = 32 * 1024 * 1024;
    const hash = createHash('sha256');
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        const chunk = new Uint8Array(Math.min(256 * 1024, total - sent)).map((_, i) => (i * 7 + sent) & 0xff);
        hash.update(chunk);
        sent += chunk.byteLength;
        c.enqueue(chunk);
      },
    });
    const res = await visit('web', '/upload', { method: 'POST', body, duplex: 'half' } as never);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ size: total, sha256: hash.digest('hex') });
  });

  it('a visitor that goes away mid-upload frees the stream at once, up to the target', async () => {
    const before = await uploads();
    const controller = new AbortController();
    let timer: ReturnType<typeof setInterval> | undefined;
    // An upload that never ends by itself: 64 KiB every 50 ms.
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        timer = setInterval(() => c.enqueue(new Uint8Array(64 * 1024).fill(1)), 50);
      },
      cancel() {
        clearInterval(timer);
      },
    });
    const pending = visit('web', '/upload', { method: 'POST', body, duplex: 'half', signal: controller.signal } as never);
    pending.catch(() => {});
    try {
      await waitFor('the target reading the upload', async () => (await uploads()).open === before.open + 1, 10_000, 50);
      controller.abort();
      await expect(pending).rejects.toThrow();
      // The hub resets the stream, the agent drops its request, the target's read of the body fails.
      await waitFor('target upload broken off', async () => {
        const now = await uploads();
        return now.open === before.open && now.aborted === before.aborted + 1;
      }, 5_000, 50);
    } finally {
      clearInterval(timer);
    }
  });

  it('passes WebSocket upgrades through and echoes messages both ways', async () => {
    const ws = new UWebSocket(`ws://web.localhost:${port}/ws`, { dispatcher, protocols: ['echo'] } as never);
    ws.binaryType = 'arraybuffer';
    const got: (string | number)[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => {
        ws.send('hello');
        ws.send(new Uint8Array([1, 2, 3, 4, 5]));
      };
      ws.onmessage = (ev) => {
        got.push(typeof ev.data === 'string' ? ev.data : (ev.data as ArrayBuffer).byteLength);
        if (got.length === 2) resolve();
      };
      ws.onerror = () => reject(new Error('websocket error'));
    });
    expect(ws.protocol).toBe('echo');
    expect(got).toEqual(['hello', 5]);
    ws.close();
  });

  it('reaches a target on another address of the device (its LAN side), not only loopback', async (ctx) => {
    // A server bound to the machine's non-loopback address only, as a LAN host would be.
    const lan = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!lan) {
      console.warn('no non-loopback IPv4 address on this machine: LAN target test skipped');
      return ctx.skip();
    }
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ host: req.headers.host, path: req.url, local: req.socket.localAddress }));
    });
    await new Promise<void>((resolve) => server.listen(0, lan, resolve));
    try {
      const lanPort = (server.address() as AddressInfo).port;
      await createTunnel({ name: 'lanhost', kind: 'http', target: `${lan}:${lanPort}`, access: { mode: 'public' } });
      const res = await waitFor('the LAN tunnel', async () => {
        const r = await visit('lanhost', '/on/the/lan?q=1');
        return r.status === 200 ? r : (await r.body?.cancel(), null);
      }, 10_000);
      const seen = (await res.json()) as { host: string; path: string; local: string };
      expect(seen).toEqual({ host: `${lan}:${lanPort}`, path: '/on/the/lan?q=1', local: lan });
      // Nothing listens on that address's loopback twin: the target really is the LAN address.
      const refused = await ufetch(`http://127.0.0.1:${lanPort}/`).then(() => 'answered', () => 'refused');
      expect(refused).toBe('refused');
    } finally {
      server.close();
    }
  });

  it('answers an unknown subdomain with a 404 page and a refused target with 502 and the reason', async () => {
    const unknown = await visit('no-such-tunnel', '/');
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toMatch(/<html/i);
    const dead = await freePort();
    await createTunnel({ name: 'dead', kind: 'http', target: `127.0.0.1:${dead}`, access: { mode: 'public' } });
    const res = await waitFor('dead tunnel known', async () => {
      const r = await visit('dead', '/', { headers: { accept: 'application/json' } });
      return r.status !== 404 && r;
    });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('TARGET_REFUSED');
    expect(body.error).toMatch(/refused|ECONNREFUSED/i);
  });
});

describe('tunnel access control', () => {
  it('basic auth: refused without credentials (WWW-Authenticate), allowed with, never forwarded', async () => {
    await createTunnel({ name: 'basic', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'basic', username: 'pi', password: 'raspberry-pie' } });
    const denied = await waitFor('basic tunnel known', async () => {
      const r = await visit('basic', '/');
      return r.status !== 404 && r;
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toMatch(/^Basic/);
    const wrong = await visit('basic', '/', { headers: { authorization: `Basic ${Buffer.from('pi:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const ok = await visit('basic', '/', { headers: { authorization: `Basic ${Buffer.from('pi:raspberry-pie').toString('base64')}`, cookie: 'pirelay_session=secret; theme=dark' } });
    expect(ok.status).toBe(200);
    const seen = (await ok.json()) as { headers: Record<string, string> };
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers.cookie ?? '').not.toContain('pirelay_session');
  });

  it('bearer token: refused without, allowed with the token shown once', async () => {
    const t = await createTunnel({ name: 'bearer', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'bearer' } });
    const token = t.bearer_token;
    expect(token).toBeTruthy();
    const denied = await waitFor('bearer tunnel known', async () => {
      const r = await visit('bearer', '/');
      return r.status !== 404 && r;
    });
    expect(denied.status).toBe(401);
    expect((await visit('bearer', '/', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await visit('bearer', '/', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { headers: Record<string, string> }).headers.authorization).toBeUndefined();
  });

  it('pirelay users: refused anonymously, allowed with an API key holding tunnels:use', async () => {
    await createTunnel({ name: 'members', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'pirelay' } });
    const denied = await waitFor('members tunnel known', async () => {
      const r = await visit('members', '/');
      return r.status !== 404 && r;
    });
    expect(denied.status).toBe(401);
    const ok = await visit('members', '/', { headers: { authorization: `Bearer ${key}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { headers: Record<string, string> }).headers.authorization).toBeUndefined();
  });

  it('rate limit per tunnel answers 429', async () => {
    await createTunnel({ name: 'limited', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'public' }, rate_limit_per_minute: 3 });
    await waitFor('limited tunnel known', async () => (await visit('limited', '/tiny')).status !== 404);
    // The wait above used some of the minute's 3 requests (at least the one that got through).
    const answers: Awaited<ReturnType<typeof visit>>[] = [];
    for (let i = 0; i < 4; i++) answers.push(await visit('limited', '/tiny', { headers: { accept: 'application/json' } }));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(2);
    expect(statuses.at(-1)).toBe(429);
    const limited = answers.at(-1)!;
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { code: string }).code).toBe('RATE_LIMITED');
    // The limit is the tunnel's own: another tunnel on the same device is still served.
    expect((await visit('web', '/tiny')).status).toBe(200);
  });
});

describe('TCP tunnels', () => {
  const clients: ChildProcess[] = [];
  afterAll(() => clients.forEach((c) => c.kill()));
  beforeAll(async () => {
    await createTunnel({ name: 'echo', kind: 'tcp', target: `127.0.0.1:${ports.tcp}`, access: { mode: 'pirelay' } });
  });

  const runtimes: [string, string[]][] = [
    ['Bun', [BUN, join(ROOT, 'client/pirelay.ts')]],
    ['Node', [process.execPath, '--import', 'tsx', join(ROOT, 'client/pirelay.ts')]],
  ];
  it.each(runtimes)('carries a TCP connection through `pirelay tcp` on %s with half-close respected', async (_name, command) => {
    const listen = await freePort();
    const client = spawn(command[0]!, [...command.slice(1), 'tcp', `${deviceId}:${ports.tcp}`, '--listen', `127.0.0.1:${listen}`, '--relay', url, '--api-key', key], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    clients.push(client);
    await new Promise<void>((resolve) => client.stdout!.on('data', (d) => String(d).includes('listening') && resolve()));
    // The echo server answers "bye" only after it sees our EOF, so both directions worked.
    expect(await tcpExchange(listen, 'ping over tcp\n')).toBe('ping over tcp\nbye after 14 bytes\n');
    // A second connection through the same client is a stream of its own.
    expect(await tcpExchange(listen, 'again\n')).toBe('again\nbye after 6 bytes\n');
  });

  it.each([['the tunnel\'s name', () => `/api/v1/tunnels/echo/connect`], ['the device and port', () => `/api/v1/devices/${deviceId}/tcp/${ports.tcp}/connect`]])(
    'any WebSocket client reaches it by %s with ?api_key=, bytes as binary messages and {"t":"eof"} as the half-close',
    async (_name, path) => {
      const ws = new UWebSocket(`${url.replace(/^http/, 'ws')}${path()}?api_key=${encodeURIComponent(key)}`);
      ws.binaryType = 'arraybuffer';
      const got: string[] = [];
      const done = new Promise<number>((resolve, reject) => {
        ws.onmessage = (ev) => got.push(typeof ev.data === 'string' ? `text:${ev.data}` : Buffer.from(ev.data as ArrayBuffer).toString());
        ws.onclose = (ev) => resolve(ev.code);
        ws.onerror = () => reject(new Error('websocket error'));
      });
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error('websocket refused'));
      });
      ws.send(new TextEncoder().encode('raw bytes\n'));
      ws.send('{"t":"eof"}');
      expect(await done).toBe(1000);
      const bytes = got.filter((m) => !m.startsWith('text:')).join('');
      expect(bytes).toBe('raw bytes\nbye after 10 bytes\n');
      expect(got.at(-1)).toBe('text:{"t":"eof"}');
    },
  );

  it('refuses a WebSocket client without a key, and one with a key that is not valid', async () => {
    /** The status a WebSocket handshake gets (101 when it is let in). */
    const handshake = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${url}${path}`, { headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('upgrade', (_res, socket) => {
          socket.destroy();
          resolve(101);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await handshake('/api/v1/tunnels/echo/connect')).toBe(401);
    expect(await handshake('/api/v1/tunnels/echo/connect?api_key=prk_not_a_real_key')).toBe(401);
    expect(await handshake(`/api/v1/tunnels/echo/connect?api_key=${encodeURIComponent(key)}`)).toBe(101);
  });
});

describe('tunnel-control API error codes, end to end', () => {
  const call = (name: string, params: Record<string, string>, apiKey = key) =>
    http(`${url}/tunnel-api/${name}?${new URLSearchParams({ device_id: deviceId, tunnel: 'web', api_key: apiKey, ...params })}`);

  it('21 for a call that does not exist', async () => {
    expect((await call('reboot', {})).body).toMatchObject({ error_code: 21, success: false });
  });

  it('31 for wrong data: an unknown tunnel or device, a missing device_id, allow that is not true|false', async () => {
    expect((await call('client_status', { tunnel: 'nope' })).body).toMatchObject({ error_code: 31, success: false });
    expect((await call('connect', { device_id: 'f'.repeat(40) })).body).toMatchObject({ error_code: 31, success: false });
    expect((await http(`${url}/tunnel-api/client_status?api_key=${key}`)).body).toMatchObject({ error_code: 31, success: false });
    expect((await call('set_allow_clientless', { allow: 'maybe' })).body).toMatchObject({ error_code: 31, success: false });
  });

  it('11 when connecting a disabled tunnel; it stays closed to visitors', async () => {
    const patch = (enabled: boolean) => http(`${url}/api/v1/devices/${deviceId}/tunnels/web`, { key, method: 'PATCH', json: { enabled } });
    expect((await patch(false)).status).toBe(200);
    try {
      expect((await call('connect', {})).body).toMatchObject({ error_code: 11, success: false });
      expect((await visit('web', '/tiny')).status).toBe(503);
    } finally {
      expect((await patch(true)).status).toBe(200);
    }
    await waitFor('web served again', async () => (await visit('web', '/tiny')).status === 200, 10_000);
  });

  it('23 for a device that is still waiting for approval', async () => {
    const tok = await http(`${url}/api/v1/enrollment-tokens`, { key, json: { name: 'e2e pending', auto_approve: false } });
    expect(tok.status).toBe(201);
    const enrolled = await agentCli(['enroll', '--relay', url, '--token', tok.body.token, '--config', join(env.dir, 'pending.json'), '--name', 'pending-pi']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const pending = JSON.parse(enrolled.stdout) as { device_id: string; status: string };
    expect(pending.status).toBe('pending');
    expect((await call('client_status', { device_id: pending.device_id })).body).toMatchObject({ error_code: 23, success: false });
    expect((await call('connect', { device_id: pending.device_id })).body).toMatchObject({ error_code: 23, success: false });
  });

  it('22 after 60 calls in a minute with one key; other keys are counted apart', async () => {
    const fresh = await http(`${url}/api/v1/api-keys`, { key, json: { name: 'e2e tunnel-control', expires_in_days: 1 } });
    expect(fresh.status).toBe(201);
    for (let i = 0; i < 60; i++) expect((await call('client_status', {}, fresh.body.key)).body.error_code, `call ${i + 1}`).toBe(0);
    const over = await call('client_status', {}, fresh.body.key);
    expect(over.body).toMatchObject({ error_code: 22, success: false });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await call('client_status', {})).body).toMatchObject({ message: 'online', error_code: 0 });
  });
});

describe('tunnel-control API and allow_clientless', () => {
  const call = (name: string, params: Record<string, string>) => http(`${url}/tunnel-api/${name}?${new URLSearchParams({ device_id: deviceId, tunnel: 'web', api_key: key, ...params })}`);

  it('client_status says online while the agent is connected', async () => {
    const r = await call('client_status', {});
    expect(r.body).toEqual({ message: 'online', error_code: 0, success: true });
  });

  it('with allow_clientless a visitor waits for the agent to come back', async () => {
    expect((await call('set_allow_clientless', { allow: 'true' })).body).toEqual({ allow_clientless: true, message: 'success', error_code: 0, success: true });
    await env.stopAgent(deviceId);
    await waitFor('offline', async () => (await call('client_status', {})).body.message === 'offline', 10_000);
    expect((await call('client_status', {})).body).toEqual({ message: 'offline', error_code: 24, success: true });
    const pending = visit('web', '/tiny');
    await new Promise((r) => setTimeout(r, 500));
    env.startAgent(deviceId);
    const res = await pending;
    expect(res.status).toBe(200);
  });

  it('with allow_clientless a visitor waits at most CLIENTLESS_WAIT_MS (8 s here), then gets 503', async () => {
    await env.stopAgent(deviceId);
    await waitFor('offline', async () => (await call('client_status', {})).body.message === 'offline', 10_000);
    const started = Date.now();
    const res = await visit('web', '/tiny', { headers: { accept: 'application/json' } });
    const waited = Date.now() - started;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('DEVICE_OFFLINE');
    expect(waited).toBeGreaterThanOrEqual(7_500);
    expect(waited).toBeLessThan(20_000);
    env.startAgent(deviceId);
    await waitFor('online again', async () => (await call('client_status', {})).body.message === 'online', 10_000);
  });

  it('without allow_clientless the tunnel closes as soon as the agent goes offline', async () => {
    expect((await call('set_allow_clientless', { allow: 'false' })).body).toMatchObject({ allow_clientless: false, error_code: 0, success: true });
    await waitFor('online', async () => (await call('client_status', {})).body.message === 'online', 10_000);
    await env.stopAgent(deviceId);
    await waitFor('offline', async () => (await call('client_status', {})).body.message === 'offline', 10_000);
    const started = Date.now();
    const res = await visit('web', '/tiny');
    expect(res.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(2_000);
    env.startAgent(deviceId);
    await waitFor('online again', async () => (await call('client_status', {})).body.message === 'online', 10_000);
    // Still closed after the agent is back, until someone connects it again.
    expect((await visit('web', '/tiny')).status).toBe(503);
    expect((await call('connect', {})).body).toEqual({ message: 'OK', error_code: 0, success: true });
    await waitFor('reopened', async () => (await visit('web', '/tiny')).status === 200, 10_000);
  });

  it('a device that vanishes mid-download ends the visitor\'s body at once, and the tunnel works when it is back', async () => {
    // A download with a declared length (from a node:http target): Bun.serve would send it chunked.
    await createTunnel({ name: 'sized', kind: 'http', target: `127.0.0.1:${ports.sized}`, access: { mode: 'public' } });
    // Both of the device's tunnels stay open while it is away (no tunnel parameter: all of them).
    const all = await http(`${url}/tunnel-api/set_allow_clientless?${new URLSearchParams({ device_id: deviceId, api_key: key, allow: 'true' })}`);
    expect(all.body).toMatchObject({ allow_clientless: true, success: true });
    await waitFor('sized tunnel known', async () => (await visit('sized', '/big?bytes=10')).status === 200, 10_000);
    const before = await downloads();
    const res = await visit('sized', `/big?bytes=${1024 * 1024 * 1024}`);
    const reader = res.body!.getReader();
    expect(res.status).toBe(200);
    // The target's length reaches the visitor, so a body cut short is a visible error, not a short file.
    expect(res.headers.get('content-length')).toBe(String(1024 * 1024 * 1024));
    await reader.read();
    await env.stopAgent(deviceId, 'SIGKILL'); // no goodbye: the socket just drops
    const started = Date.now();
    await expect((async () => {
      for (;;) if ((await reader.read()).done) return;
    })()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitFor('the target connection closed with the agent', async () => (await downloads()).open === before.open, 5_000, 50);
    env.startAgent(deviceId);
    await waitFor('served again', async () => (await visit('sized', '/big?bytes=10')).status === 200, 15_000);
  });

  it('when the relay goes away mid-download, the agent drops the stream and its target connection, then reconnects', async () => {
    const before = await downloads();
    const res = await visit('sized', `/big?bytes=${1024 * 1024 * 1024}`);
    expect(res.status).toBe(200);
    await res.body!.getReader().read();
    expect((await downloads()).open).toBe(before.open + 1);
    await restartRelay();
    // The agent process lives on: it must close the stale stream's target connection itself.
    await waitFor('the agent to close the target connection', async () => (await downloads()).open === before.open, 10_000, 50);
    await waitFor('served again through the new relay', async () => (await visit('sized', '/big?bytes=10')).status === 200, 15_000);
  });

  it('an agent that has been gone since before the hub started is not waited for: 503 at once', async () => {
    expect((await call('set_allow_clientless', { allow: 'true' })).body).toMatchObject({ allow_clientless: true, success: true });
    await env.stopAgent(deviceId);
    await restartRelay();
    const started = Date.now();
    const res = await visit('web', '/tiny', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('DEVICE_OFFLINE');
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
