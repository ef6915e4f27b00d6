// Hardening of the HTTP tunnel data path, end to end: a real relay in workerd, a real agent, and
// raw node:net sockets on both sides where a client library would clean a request up: visitors
// that write hostile bytes, and a target that logs every byte it receives and trusts
// Content-Length as a naive server does, so a smuggled request would show as a second request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';

let env: DevEnv;
let url: string;
let port: number;
let key: string;
let deviceId: string;

interface Seen {
  conn: number;
  method: string;
  path: string;
  headers: [string, string][];
  body: string;
}

/**
 * An HTTP/1.1 server that believes Content-Length (over Transfer-Encoding, as a naive one does),
 * keeps connections alive and answers each request in order, `delayMs` after it arrived, with
 * "answer to METHOD PATH". It records every request it parsed, per connection.
 */
class TrustingTarget {
  readonly seen: Seen[] = [];
  /** Every byte each connection brought, by connection number. */
  readonly raw = new Map<number, Buffer>();
  private conns = 0;
  delayMs = 0;
  private server: Server;
  port = 0;

  constructor() {
    this.server = createServer((sock) => this.serve(sock));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  reset(): void {
    this.seen.length = 0;
    this.raw.clear();
  }

  stop(): void {
    this.server.close();
  }

  private serve(sock: Socket): void {
    const conn = this.conns++;
    let buf = Buffer.alloc(0);
    let answering = Promise.resolve();
    sock.on('error', () => {});
    sock.on('data', (d: Buffer) => {
      this.raw.set(conn, Buffer.concat([this.raw.get(conn) ?? Buffer.alloc(0), d]));
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const [method = '', path = ''] = lines[0]!.split(' ');
        const headers = lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]);
        const cl = headers.find(([n]) => n === 'content-length')?.[1];
        const te = headers.find(([n]) => n === 'transfer-encoding')?.[1];
        let rest = buf.subarray(end + 4);
        let body: Buffer;
        if (cl !== undefined) {
          const n = Number(cl);
          if (!Number.isSafeInteger(n) || n > 1e6) {
            // A length it cannot wait for: it answers at once and gives up the connection.
            this.seen.push({ conn, method, path, headers, body: '' });
            sock.end(`HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
            return;
          }
          if (rest.byteLength < n) return;
          body = rest.subarray(0, n);
          rest = rest.subarray(n);
        } else if (te?.toLowerCase() === 'chunked') {
          const parts: Buffer[] = [];
          let at = 0;
          for (;;) {
            const lf = rest.indexOf('\r\n', at);
            if (lf < 0) return;
            const size = parseInt(rest.subarray(at, lf).toString('latin1'), 16);
            if (rest.byteLength < lf + 2 + size + 2) return;
            if (size === 0) {
              at = lf + 4;
              break;
            }
            parts.push(rest.subarray(lf + 2, lf + 2 + size));
            at = lf + 2 + size + 2;
          }
          body = Buffer.concat(parts);
          rest = rest.subarray(at);
        } else body = Buffer.alloc(0);
        buf = rest;
        this.seen.push({ conn, method, path, headers, body: body.toString('latin1') });
        const answer = `answer to ${method} ${path}`;
        const extra = path === '/cookies' ? COOKIE_ANSWER : '';
        answering = answering.then(async () => {
          if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
          if (!sock.destroyed) sock.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n${extra}content-length: ${answer.length}\r\n\r\n${answer}`);
        });
      }
    });
  }
}

/** What /cookies answers besides its body: cookies for its own host, for parents of it, the relay's own, and relay headers. */
const COOKIE_ANSWER = [
  'set-cookie: plain=1; Path=/',
  'set-cookie: own=2; Domain=raw.localhost; Path=/',
  'set-cookie: parent=3; Domain=localhost; Path=/',
  'set-cookie: dotted=4; domain=.LOCALHOST',
  'set-cookie: __Host-pirelay_session=planted; Path=/; Secure',
  'set-cookie: pirelay_session=planted',
  'x-pirelay-error: TUNNEL_NOT_FOUND',
  'x-pirelay-unknown-tunnel: 1',
  'x-app: kept',
  '',
].join('\r\n');

interface RawAnswer {
  status: number;
  head: string;
  headers: Record<string, string>;
  /** Every header line, in order (repeated ones kept apart). */
  lines: [string, string][];
  body: string;
}

/** Writes `text` to the relay as it is and reads one response (framed by its Content-Length, or the connection's end). */
function rawVisit(text: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = got.subarray(0, end).toString('latin1');
      const lines = head.split('\r\n');
      const headers: Record<string, string> = {};
      const all: [string, string][] = [];
      for (const l of lines.slice(1)) {
        const pair: [string, string] = [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()];
        headers[pair[0]] = pair[1];
        all.push(pair);
      }
      const body = got.subarray(end + 4);
      const cl = headers['content-length'];
      if (cl !== undefined && body.byteLength < Number(cl)) return;
      done = true;
      sock.destroy();
      resolve({ status: Number(lines[0]!.split(' ')[1]), head, headers, lines: all, body: body.subarray(0, cl !== undefined ? Number(cl) : undefined).toString('utf8') });
    };
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (/content-length/i.test(got.toString('latin1'))) finish();
    });
    sock.on('end', () => {
      finish();
      if (!done) reject(new Error(`connection ended without a response: ${JSON.stringify(got.toString('latin1').slice(0, 200))}`));
    });
    sock.on('error', (e) => {
      if (!done) reject(e);
    });
    sock.write(text);
  });
}

let raw: TrustingTarget;
const host = (name: string) => `${name}.localhost:${port}`;
/** A request head for `name`'s tunnel with the given extra header lines, closing the visitor's connection after the answer. */
const head = (method: string, path: string, name: string, ...lines: string[]) => [`${method} ${path} HTTP/1.1`, `Host: ${host(name)}`, ...lines, 'Connection: close', '', ''].join('\r\n');
const FRAMING = new Set(['content-length', 'transfer-encoding']);
/** The framing headers the target got with a request. */
const framing = (s: Seen) => s.headers.filter(([n]) => FRAMING.has(n));
/** Lets bytes still on their way reach the target before what it saw is checked. */
const settle = () => new Promise((r) => setTimeout(r, 300));
/**
 * The smuggling request of the review: a chunked body, and beside it a Content-Length of 5. A
 * target that trusts the length reads the agent's chunk-size line and one byte as the body, and
 * the rest as a second request: a TRACE with the attacker's Host and X-Forwarded-For.
 */
function smuggling(contentLength: string, path = '/smuggle'): string {
  const smuggled = 'TRACE /smuggled HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 7\r\n\r\n';
  const data = `X${smuggled}`;
  return head('POST', path, 'raw', 'Transfer-Encoding: chunked', `Content-Length: ${contentLength}`) + `${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n`;
}

async function createTunnel(body: Record<string, unknown>) {
  const r = await http(`${url}/api/v1/devices/${deviceId}/tunnels`, { key, json: body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

beforeAll(async () => {
  raw = new TrustingTarget();
  await raw.start();
  port = await freePort();
  env = await startDevEnv({ dir: await tempDir('security-tunnels'), port, demoDevices: ['secure-pi'], vars: { HEARTBEAT_INTERVAL_MS: '500' }, agentArgs: ['--max-backoff-ms', '500'] });
  await waitOnline(env);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
  await createTunnel({ name: 'raw', kind: 'http', target: `127.0.0.1:${raw.port}`, access: { mode: 'public' } });
  // A tunnel-control style tunnel: it closes when its agent goes away.
  await createTunnel({ name: 'gone', kind: 'http', target: `127.0.0.1:${raw.port}`, access: { mode: 'public' }, allow_clientless: false });
  await waitFor('tunnels reachable', async () => (await rawVisit(`GET /ready HTTP/1.1\r\nHost: ${host('raw')}\r\nConnection: close\r\n\r\n`)).status === 200, 15_000);
  raw.reset();
});

afterAll(async () => {
  await env?.stop();
  raw?.stop();
});


describe('request smuggling through an HTTP tunnel', () => {
  it('a chunked body with any Content-Length beside it reaches the target as one request, with one framing header', async () => {
    for (const cl of ['0000000000000005', '99999999999999999999', '9007199254740993']) {
      raw.reset();
      const r = await rawVisit(smuggling(cl));
      await settle();
      expect(r.status, cl).toBe(200);
      expect(r.body, cl).toBe('answer to POST /smuggle');
      expect(raw.seen.map((s) => `${s.method} ${s.path}`), cl).toEqual(['POST /smuggle']);
      expect(framing(raw.seen[0]!), cl).toEqual([['transfer-encoding', 'chunked']]);
      expect(raw.seen[0]!.body, cl).toContain('TRACE /smuggled');
    }
  });

  it('a Content-Length workerd accepts but the relay does not pass on (16 digits) still goes out with one framing header', async () => {
    raw.reset();
    const r = await rawVisit(head('POST', '/long', 'raw', 'Content-Length: 0000000000000004') + 'abcd');
    await settle();
    expect(r.status).toBe(200);
    expect(raw.seen.map((s) => [s.method, s.path, s.body])).toEqual([['POST', '/long', 'abcd']]);
    expect(framing(raw.seen[0]!)).toHaveLength(1);
  });

  it('two visitors over one kept-alive target connection each get their own answer', async () => {
    raw.reset();
    // A slow target answers in order: a smuggled second request's answer would still be on its
    // way when the next visitor's request goes out on the same connection.
    raw.delayMs = 300;
    try {
      const first = await rawVisit(smuggling('0000000000000005', '/first'));
      expect(first.body).toBe('answer to POST /first');
      const second = await rawVisit(head('GET', '/second', 'raw'));
      expect(second.body).toBe('answer to GET /second');
      await settle();
      expect(raw.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /first', 'GET /second']);
      expect(raw.seen[1]!.conn, 'the second request reused the first one\'s connection').toBe(raw.seen[0]!.conn);
    } finally {
      raw.delayMs = 0;
    }
  });
});

describe('relay credentials', () => {
  it('no relay session or API key reaches a target, as Bearer, as the Basic user name or in a second Cookie header; an app\'s own JWT does', async () => {
    const login = await http(`${url}/api/v1/auth/login`, { json: { username: env.state.adminUser, password: env.state.adminPassword } });
    expect(login.status).toBe(200);
    const jwt = login.body.token as string;
    const appJwt = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"aud":"my-app","sub":"u1"}').toString('base64url')}.c2ln`;
    const cases: [string, string[], (s: Seen) => void][] = [
      ['session as Bearer', [`Authorization: Bearer ${jwt}`], (s) => expect(s.headers.find(([n]) => n === 'authorization')).toBeUndefined()],
      ['session as Basic user', [`Authorization: Basic ${Buffer.from(`${jwt}:`).toString('base64')}`], (s) => expect(s.headers.find(([n]) => n === 'authorization')).toBeUndefined()],
      ['API key as Basic user', [`Authorization: Basic ${Buffer.from(`${key}:x`).toString('base64')}`], (s) => expect(s.headers.find(([n]) => n === 'authorization')).toBeUndefined()],
      ['app JWT', [`Authorization: Bearer ${appJwt}`], (s) => expect(s.headers.find(([n]) => n === 'authorization')?.[1]).toBe(`Bearer ${appJwt}`)],
      ['two Cookie headers', ['Cookie: a=1', `Cookie: __Host-pirelay_session=${jwt}`, `Cookie: pirelay_session=${jwt}; b=2`], (s) => expect(s.headers.filter(([n]) => n === 'cookie')).toEqual([['cookie', 'a=1; b=2']])],
    ];
    for (const [what, lines, check] of cases) {
      raw.reset();
      const r = await rawVisit(head('GET', '/creds', 'raw', ...lines));
      expect(r.status, what).toBe(200);
      expect(raw.seen, what).toHaveLength(1);
      check(raw.seen[0]!);
      expect(JSON.stringify(raw.seen[0]!.headers), what).not.toContain(jwt);
    }
  });
});

describe('tunnel loops', () => {
  let proxy: HttpServer;
  let forwarded = 0;

  beforeAll(async () => {
    // A reverse proxy on the device that sends everything to the tunnel `loopy` on the relay
    // (as nginx with proxy_set_header Host would): the tunnel's target leads back into itself.
    // It gives up after ten rounds, so a loop the relay misses ends.
    proxy = createHttpServer((req, res) => {
      if (++forwarded > 10) return void res.writeHead(502).end('loop fixture gave up');
      const out = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: { ...req.headers, host: host('loopy') } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => res.writeHead(502).end());
      req.pipe(out);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    await createTunnel({ name: 'loopy', kind: 'http', target: `127.0.0.1:${(proxy.address() as AddressInfo).port}`, access: { mode: 'public' } });
  });

  afterAll(() => proxy?.close());

  it('a tunnel whose target leads back into the relay answers 508 after one round, and the relay stays healthy', async () => {
    const r = await waitFor('loopy served', async () => {
      forwarded = 0;
      const res = await rawVisit(head('GET', '/again', 'loopy', 'Accept: application/json', 'CDN-Loop: other-cdn'));
      return res.status === 404 ? null : res;
    });
    expect(r.status).toBe(508);
    expect(JSON.parse(r.body).code).toBe('LOOP_DETECTED');
    expect(forwarded, 'the request went around once').toBe(1);
    const after = await rawVisit(head('GET', '/healthy', 'raw'));
    expect(after.body).toBe('answer to GET /healthy');
  });
});

describe('visitor mistakes', () => {
  it('TRACE is 405 with Allow, a "//" path and a header name that is no token are 400 from the relay, and none reaches the target', async () => {
    raw.reset();
    const trace = await rawVisit(head('TRACE', '/', 'raw', 'Accept: application/json'));
    expect(trace.status).toBe(405);
    expect(trace.headers.allow).toContain('GET');
    expect(JSON.parse(trace.body).code).toBe('METHOD_NOT_ALLOWED');
    const slashes = await rawVisit(head('GET', '//evil.example/x', 'raw', 'Accept: application/json'));
    expect(slashes.status).toBe(400);
    expect(JSON.parse(slashes.body).code).toBe('BAD_REQUEST');
    // workerd refuses most such names itself; a byte above 0x7f it lets through.
    const name = await rawVisit(Buffer.concat([Buffer.from(head('GET', '/', 'raw', 'Accept: application/json').slice(0, -2), 'latin1'), Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from(': 1\r\n\r\n')]));
    expect(name.status).toBe(400);
    expect(JSON.parse(name.body).code).toBe('BAD_REQUEST');
    await settle();
    expect(raw.seen).toEqual([]);
  });
});

describe('what a device sends back', () => {
  it('Set-Cookie for a parent of the tunnel\'s host or naming the relay\'s cookie, and x-pirelay-* headers, never reach the visitor', async () => {
    const r = await rawVisit(head('GET', '/cookies', 'raw'));
    expect(r.status).toBe(200);
    expect(r.lines.filter(([n]) => n === 'set-cookie').map(([, v]) => v)).toEqual(['plain=1; Path=/', 'own=2; Domain=raw.localhost; Path=/']);
    expect(r.lines.filter(([n]) => n.startsWith('x-pirelay-'))).toEqual([]);
    expect(r.headers['x-app']).toBe('kept');
  });
});

// Last: it takes the device offline, which closes its tunnels.
describe('a device that went offline', () => {
  it('its visitors are told the device is offline, not that the owner closed the tunnel', async () => {
    await env.stopAgent(deviceId);
    await waitFor('the tunnel closed with its device', async () => {
      const t = await http(`${url}/api/v1/devices/${deviceId}/tunnels/gone`, { key });
      return t.status === 200 && t.body.connected === false;
    });
    // Never visited before, so the ingress reads its row now, closed (it caches rows it has seen for a few seconds).
    const r = await rawVisit(head('GET', '/', 'gone', 'Accept: application/json'));
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'DEVICE_OFFLINE', error: 'The device behind "gone" is offline.' });
  });
});
