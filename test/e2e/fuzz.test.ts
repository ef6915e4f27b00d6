// A bounded, seeded fuzz of everything that takes input: thousands of malformed requests over
// every route (native ones from the relay's own OpenAPI document, the PiTunnel and tunnel-control
// layers, /agent/connect, tunnel ingress) and thousands of malformed frames from a fake agent of
// a second device, while tunnel visitors keep that agent's hub opening streams. The relay must
// refuse all of it with 4xx, never a 5xx of its own, and stay healthy: /health answers, the demo
// device (a real agent) still answers an RPC and serves its tunnel.
//
// FUZZ_SEED=<n> reruns a seed; the seed is printed, and every failure is reported with it, the
// request's number and the request itself. Request i is made from its own PRNG (seed, i), so one
// request reproduces alone; the frames depend on which streams the hub had open at the time, so
// they reproduce as a sequence but not to the byte.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request, WebSocket as UWebSocket, type Dispatcher } from 'undici';
import { startDevEnv, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, loopbackLookup, tempDir } from './harness.ts';
import { newKeyPair, signConnectToken } from '../../agent/identity.ts';
import { decodeFrame, FrameType } from '../../shared/protocol/frames.ts';
import { HEARTBEAT_PING } from '../../shared/protocol/envelope.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';
import { Prng, seedFrom } from './fuzz/prng.ts';
import { RequestFuzzer, routesFrom, type Fixtures, type FuzzRequest } from './fuzz/http.ts';
import { FrameFuzzer } from './fuzz/frames.ts';
import type { JWK } from 'jose';

const SEED = seedFrom(process.env.FUZZ_SEED, 20261201);
/** Round robin over the routes: at least MIN_PER_ROUTE each for the ~130 routes the KVM routes bring. */
const REQUESTS = 3_200;
const FRAMES = 2_400;
const CONCURRENCY = 6;
/** WebSocket clients of a TCP tunnel, and the malformed messages each sends. */
const TCP_CLIENTS = 40;
const TCP_MESSAGES = 25;
/** Each part runs in well under a minute here; the margin is for a busy machine. */
const FUZZ_TIMEOUT_MS = 180_000;
/** Every route must get at least this many requests (the spread is round robin over routes). */
const MIN_PER_ROUTE = 20;

/**
 * Which 5xx answers are not failures. A malformed request must be refused with a 4xx before any
 * device work, so a 5xx to one is a fault; but the fuzz also sends well-formed requests (a
 * mutation may leave a body valid, and junk ids like "true" become real once a valid POST
 * /api/v1/agents made a device of that name), and some of those get honest 5xx answers about the
 * state of things rather than about the input:
 * - 503 DEVICE_OFFLINE from a device RPC to any device but the demo one: the id was valid and
 *   named an approved device that is not connected. The demo device is online throughout, so
 *   a 503 or 504 naming it is a failure, as is every other code.
 * - 503 TUNNEL_DISABLED or TUNNEL_CLOSED from a TCP connect naming a spare tunnel, which
 *   well-formed PATCHes may have disabled or closed. The tunnels the ingress fuzz visits are
 *   never changed, so any 5xx from them counts.
 * Every other 5xx (500 INTERNAL above all) fails the test.
 */
const TUNNEL_STATE_CODES = new Set(['TUNNEL_DISABLED', 'TUNNEL_CLOSED']);

function isFailure(req: FuzzRequest, status: number, body: string): boolean {
  if (status < 500) return false;
  if (status !== 503) return true;
  let answer: { code?: string; details?: { device_id?: string } };
  try {
    answer = JSON.parse(body);
  } catch {
    return true;
  }
  if (answer.code === 'DEVICE_OFFLINE' && answer.details?.device_id !== fx.demoDevice.id) return false;
  return !(req.tunnelState && TUNNEL_STATE_CODES.has(answer.code ?? ''));
}

let env: DevEnv;
let url: string;
let port: number;
let key: string;
let target: Server;
let fx: Fixtures;
let fake: { id: string; jwk: JWK };
const dispatcher: Dispatcher = new Agent({ connect: { lookup: loopbackLookup } as never, headersTimeout: 60_000, bodyTimeout: 60_000 });

const api = async (path: string, init: Parameters<typeof http>[1] = {}) => {
  const r = await http(`${url}${path}`, { key, ...init });
  if (r.status >= 300) throw new Error(`fixture ${init.method ?? 'GET'} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};

function describeRequest(i: number, req: FuzzRequest): string {
  const body = req.body ? `${req.body.byteLength} bytes: ${JSON.stringify(Buffer.from(req.body.subarray(0, 300)).toString('latin1'))}` : 'none';
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, v.length > 200 ? `${v.slice(0, 200)}… (${v.length})` : v]));
  return `#${i} ${req.method} ${req.url.slice(0, 400)} [${req.mutations.join(', ')}] headers=${JSON.stringify(headers).slice(0, 600)} body=${body}`;
}

/**
 * One request as the fuzzer made it: the answer's status and (the start of) its body, with
 * `broken` when the body broke off after the head; or the transport error when no head came.
 */
async function send(req: FuzzRequest): Promise<{ status: number; body: string; broken?: string } | { error: string }> {
  const full = req.url.startsWith('http') ? req.url : `${url}${req.url}`;
  let res: Dispatcher.ResponseData;
  try {
    // A connection of its own (reset): a request whose body the relay refused unread must not take the next one down with it.
    res = await request(full, { method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.method === 'HEAD' ? undefined : req.body, dispatcher, reset: true });
  } catch (e) {
    return { error: `${(e as Error).name}: ${(e as Error).message}` };
  }
  // An event stream (GET /api/v1/stream) never ends by itself: its head is the answer.
  if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    res.body.destroy();
    return { status: res.statusCode, body: '' };
  }
  try {
    return { status: res.statusCode, body: (await res.body.text()).slice(0, 2000) };
  } catch (e) {
    return { status: res.statusCode, body: '', broken: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

beforeAll(async () => {
  console.log(`fuzz seed ${SEED} (rerun with FUZZ_SEED=${SEED})`);
  target = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const targetPort = (target.address() as AddressInfo).port;
  port = await freePort();
  env = await startDevEnv({
    dir: await tempDir('fuzz'),
    port,
    demoDevices: ['fuzz-pi'],
    // Visits to the fake agent's tunnel end soon when its answers are garbage or missing.
    vars: { TUNNEL_ACCEPT_TIMEOUT_MS: '2000', CLIENTLESS_WAIT_MS: '1000', RPC_TIMEOUT_MS: '5000' },
    agentArgs: ['--max-backoff-ms', '500'],
  });
  await waitOnline(env);
  url = env.state.url;
  key = env.state.apiKey;
  const demo = env.state.devices[0]!;

  // The fake device: enrolled through the API with a key pair made here, then approved.
  const tok = await api('/api/v1/enrollment-tokens', { json: { name: 'fuzz fake', max_uses: 1 } });
  const pair = await newKeyPair();
  const facts = { hostname: 'fake', serial: 'f', hardware: 'h', os: 'Linux', os_version: '1', architecture: 'x64', mac_address: '00:00:00:00:00:00' };
  const enrolled = await api('/api/v1/enroll', { json: { token: tok.token, public_key: pair.publicJwk, facts, agent_version: 'fuzz', name: 'fuzz-fake' } });
  await api(`/api/v1/devices/${enrolled.device_id}/approve`, { method: 'POST' });
  fake = { id: enrolled.device_id, jwk: pair.privateJwk };

  const me = await api('/api/v1/auth/me');
  const spareRoles = [];
  for (let k = 0; k < 2; k++) spareRoles.push((await api('/api/v1/roles', { json: { name: `fuzz-role-${k}`, permissions: ['devices:read'] } })).id);
  const spareUsers = [];
  for (let k = 0; k < 2; k++) spareUsers.push((await api('/api/v1/users', { json: { username: `fuzz-user-${k}`, password: 'fuzz-password-1', roles: ['viewer'] } })).id);
  const spareKeys = [];
  for (let k = 0; k < 3; k++) spareKeys.push((await api('/api/v1/api-keys', { json: { name: `fuzz-spare-${k}` } })).id);
  // tunnel-control allows 60 calls a minute per credential: enough keys that the fuzz gets past that check.
  const controlKeys = [];
  for (let k = 0; k < 8; k++) controlKeys.push((await api('/api/v1/api-keys', { json: { name: `fuzz-control-${k}` } })).key);
  const spareTokens = [];
  for (let k = 0; k < 2; k++) spareTokens.push((await api('/api/v1/enrollment-tokens', { json: { name: `fuzz-spare-${k}` } })).id);
  const spareDevices = [];
  for (let k = 0; k < 3; k++) spareDevices.push((await api('/api/v1/agents', { json: { id: `fuzz-spare-${k}` } })).agent.id);

  const tunnel = (device: string, body: Record<string, unknown>) => api(`/api/v1/devices/${device}/tunnels`, { json: body });
  const web = await tunnel(demo.id, { name: 'fzweb', kind: 'http', target: `127.0.0.1:${targetPort}`, access: { mode: 'public' } });
  await tunnel(demo.id, { name: 'fzbasic', kind: 'http', target: `127.0.0.1:${targetPort}`, access: { mode: 'basic', username: 'fz', password: 'fuzz-password-1' } });
  const spareTunnels = [];
  for (const [k, kind] of (['http', 'tcp', 'tcp'] as const).entries()) {
    const t = await tunnel(demo.id, { name: `fzspare${k}`, kind, target: `127.0.0.1:${20_000 + k}` });
    spareTunnels.push({ id: t.id, name: t.name, port: t.target_port });
  }
  // A TCP tunnel (to the same target) whose WebSocket clients the fuzz sends malformed messages.
  await tunnel(demo.id, { name: 'fztcp', kind: 'tcp', target: `127.0.0.1:${targetPort}`, access: { mode: 'pirelay' } });
  // The fake agent's tunnel: clientless, so it stays open across the fake agent's reconnects.
  await tunnel(fake.id, { name: 'fzfake', kind: 'http', target: '127.0.0.1:1', access: { mode: 'public' }, allow_clientless: true });

  fx = {
    apiKey: key,
    controlKeys,
    demoDevice: demo,
    fakeDevice: fake.id,
    spareDevices,
    adminUser: me.id,
    spareUsers,
    adminRole: 'admin',
    spareRoles,
    spareKeys,
    spareEnrollmentTokens: spareTokens,
    webTunnel: { id: web.id, name: web.name },
    basicTunnel: 'fzbasic',
    spareTunnels,
    port,
  };
  const visit = await send({ route: 'check', method: 'GET', url: `http://fzweb.localhost:${port}/`, headers: {}, mutations: [] });
  expect(visit).toEqual({ status: 200, body: 'ok' });
}, 120_000);

afterAll(async () => {
  await env?.stop();
  target?.close();
});

/** A fake agent on one socket: says hello, notes the streams the hub opens, and sends what it is told. */
class FakeAgent {
  ws: UWebSocket | null = null;
  /** Ids of streams the hub opened lately (tunnel visitors waiting for an ACCEPT). */
  readonly opens: number[] = [];
  /** Ids of RPCs the hub sent lately (API callers waiting for the device's answer). */
  readonly rpcs: number[] = [];
  readonly closes: { code: number; reason: string }[] = [];
  connects = 0;

  async connect(): Promise<void> {
    const token = await signConnectToken(fake.id, fake.jwk);
    const ws = new UWebSocket(`${url.replace(/^http/, 'ws')}/agent/connect`, { headers: { authorization: `Bearer ${token}` }, dispatcher } as never);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    const acked = new Promise<void>((resolve, reject) => {
      ws.onmessage = (e) => {
        if (typeof e.data === 'string') {
          if (e.data.includes('"hello_ack"')) resolve();
          const rpc = /^\{"t":"req","id":(\d+)/.exec(e.data);
          if (rpc) {
            this.rpcs.push(Number(rpc[1]));
            if (this.rpcs.length > 32) this.rpcs.shift();
          }
          return;
        }
        try {
          const f = decodeFrame(e.data as ArrayBuffer);
          if (f.type === FrameType.OPEN) {
            this.opens.push(f.streamId);
            if (this.opens.length > 32) this.opens.shift();
          }
        } catch {
          // the hub sent nothing malformed so far; the fuzz is about what it receives
        }
      };
      ws.onclose = (e) => {
        this.closes.push({ code: e.code, reason: e.reason });
        if (this.ws === ws) this.ws = null;
        reject(new Error(`closed before hello_ack: ${e.code} ${e.reason}`));
      };
      ws.onerror = () => {};
    });
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('WebSocket to /agent/connect failed'));
    });
    ws.send(JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, agent_version: 'fuzz', capabilities: [] }));
    await acked;
    this.connects++;
  }

  get open(): boolean {
    return this.ws?.readyState === UWebSocket.OPEN;
  }

  /** Waits while the socket has much unsent, so the fuzz runs at the hub's pace rather than the buffer's. */
  async drain(): Promise<void> {
    while (this.ws && this.open && this.ws.bufferedAmount > 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
  }

  close(): void {
    this.ws?.close(1000, 'fuzz done');
  }
}

describe('fuzz', () => {
  it(`refuses ${REQUESTS} malformed requests over every input route without a 5xx`, async () => {
    const doc = (await http(`${url}/api/v1/openapi.json`)).body;
    const fuzzer = new RequestFuzzer(SEED, routesFrom(doc), fx);
    const failures: string[] = [];
    /** How many failures each route had with each status, to see the pattern before the examples. */
    const failed = new Map<string, number>();
    const transport: string[] = [];
    let resetUnread = 0;
    const perRoute = new Map<string, number>();
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < REQUESTS; i = next++) {
        const req = fuzzer.make(i);
        perRoute.set(req.route, (perRoute.get(req.route) ?? 0) + 1);
        const res = await send(req);
        // workerd closes a connection whose request body the Worker answered without reading (a
        // huge body refused for its credentials, route or size), and the kernel turns the unread
        // bytes into a reset that may take the answer with it, or the rest of a long answer (the
        // OpenAPI document) after its head. That is the local runtime's way (Cloudflare's edge
        // reads the body first), not the Worker's: counted, not failed.
        const reset = 'error' in res ? res.error : res.broken;
        if (reset && (req.body?.byteLength ?? 0) >= 1024 * 1024 && /ECONNRESET|EPIPE|other side closed/.test(reset)) {
          resetUnread++;
          continue;
        }
        if ('error' in res || res.broken) {
          transport.push(`${describeRequest(i, req)}\n  → ${'error' in res ? res.error : `${res.status}, then ${res.broken}`}`);
          continue;
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (isFailure(req, res.status, res.body)) {
          failures.push(`${describeRequest(i, req)}\n  → ${res.status} ${res.body.slice(0, 600)}`);
          const what = `${req.route} → ${res.status}`;
          failed.set(what, (failed.get(what) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    console.log(`fuzz seed ${SEED}: ${REQUESTS} requests over ${perRoute.size} routes; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${resetUnread} huge bodies cut off unread`);

    const seedLine = `FUZZ_SEED=${SEED}`;
    const summary = [...failed].map(([what, n]) => `${n}× ${what}`).join('\n');
    expect(failures, `${seedLine}: ${failures.length} requests got a 5xx:\n${summary}\n${failures.slice(0, 30).join('\n')}`).toEqual([]);
    expect(transport, `${seedLine}: ${transport.length} requests got no answer:\n${transport.slice(0, 30).join('\n')}`).toEqual([]);
    for (const name of fuzzer.names) expect(perRoute.get(name) ?? 0, name).toBeGreaterThanOrEqual(MIN_PER_ROUTE);
  }, FUZZ_TIMEOUT_MS);

  it(`survives ${FRAMES} malformed frames from a fake agent while its tunnel has visitors`, async () => {
    const r = new Prng(SEED).fork();
    const frames = new FrameFuzzer(r);
    const agent = new FakeAgent();
    await agent.connect();
    const notes = new Map<string, number>();
    let done = false;

    // Visitors of the fake device's tunnel, so frames for real stream ids have streams to hit.
    const visits = new Map<string, number>();
    const visitFailures: string[] = [];
    const visitor = async (v: number) => {
      for (let k = 0; !done; k++) {
        const withBody = (v + k) % 3 === 0;
        const res = await send({ route: 'visit', method: withBody ? 'POST' : 'GET', url: `http://fzfake.localhost:${port}/v${k}`, headers: {}, body: withBody ? new Uint8Array(300_000) : undefined, mutations: [] });
        const label = 'error' in res ? 'no answer' : `${res.status} ${/"code":"(\w+)"/.exec(res.body)?.[1] ?? ''}${res.broken ? ' body broken off' : ''}`.trim();
        visits.set(label, (visits.get(label) ?? 0) + 1);
        // The fake agent answers with garbage, so 502/503/504 are what visitors should get, or the
        // head the garbage held with its body broken off when the rest did not fit (a Content-Length
        // the DATA did not match); a 500, or no answer at all, is the relay failing.
        if ('error' in res || res.status === 500) visitFailures.push(`visit ${k}: ${label} ${'error' in res ? res.error : res.body.slice(0, 300)}`);
      }
    };
    const visitors = Array.from({ length: 4 }, (_, v) => visitor(v));
    // And API callers of its RPCs, so answers for real RPC ids have callers to reach.
    const rpcStatuses = new Map<number, number>();
    const caller = async (v: number) => {
      for (let k = 0; !done; k++) {
        const res = await http(`${url}/api/v1/devices/${fake.id}/${(v + k) % 2 ? 'info' : 'processes'}`, { key });
        rpcStatuses.set(res.status, (rpcStatuses.get(res.status) ?? 0) + 1);
        // 502 BAD_DEVICE_RESPONSE, 503 DEVICE_OFFLINE and 504 DEVICE_TIMEOUT are honest answers about this device; 500 is not.
        if (res.status === 500) visitFailures.push(`RPC ${k}: 500 ${JSON.stringify(res.body).slice(0, 300)}`);
      }
    };
    visitors.push(...Array.from({ length: 2 }, (_, v) => caller(v)));

    let lastPing = Date.now();
    for (let k = 0; k < FRAMES; k++) {
      if (!agent.open) await agent.connect();
      const out = frames.make(agent.opens, agent.rpcs);
      notes.set(out.note, (notes.get(out.note) ?? 0) + 1);
      try {
        if ('text' in out) agent.ws!.send(out.text);
        else agent.ws!.send(out.binary);
      } catch {
        // closed under us: the next round reconnects
      }
      if (Date.now() - lastPing > 2_000) {
        agent.ws?.send(HEARTBEAT_PING);
        lastPing = Date.now();
      }
      if (k % 8 === 0) {
        await agent.drain();
        await new Promise((res) => setTimeout(res, 2));
      }
    }
    // Let the hub work through what is buffered before judging.
    await agent.drain();
    await new Promise((res) => setTimeout(res, 500));
    done = true;
    await Promise.all(visitors);
    agent.close();
    console.log(`fuzz seed ${SEED}: ${FRAMES} frames, ${agent.connects} connects, closes ${JSON.stringify(agent.closes)}; visits ${JSON.stringify(Object.fromEntries(visits))}; RPCs ${JSON.stringify(Object.fromEntries(rpcStatuses))}`);

    // A close the hub chose (with a reason) is fine; 1011 or 1006 means it failed or dropped the socket.
    const crashes = agent.closes.filter((c) => c.code === 1011 || c.code === 1006);
    expect(crashes, `FUZZ_SEED=${SEED}: the hub dropped the fake agent's socket`).toEqual([]);
    expect(visitFailures, `FUZZ_SEED=${SEED}: tunnel visitors of the fake agent got:\n${visitFailures.slice(0, 20).join('\n')}`).toEqual([]);

    // The hub still serves the device: a clean agent connects, says hello and shows online.
    const clean = new FakeAgent();
    await clean.connect();
    const dev = await http(`${url}/api/v1/devices/${fake.id}`, { key });
    expect(dev.body.online).toBe(true);
    clean.close();
  }, FUZZ_TIMEOUT_MS);

  it(`survives ${TCP_CLIENTS * TCP_MESSAGES} malformed messages from TCP tunnel clients`, async () => {
    const r = new Prng(SEED ^ 0x5bd1e995);
    const closes = new Map<string, number>();
    const failures: string[] = [];
    const messages: (() => string | Uint8Array)[] = [
      () => r.pick(['{"t":"eof"}', '{"t":"eof","x":1}', '{"t":"ack","n":1}', '{"t":"ack","n":-1}', '{"t":"ack","n":1e309}', '{"t":"ack","n":"1"}', '{"t":"ack"}']),
      () => r.pick(['{"t":"nope"}', '{"t":null}', '[]', 'null', '{', 'garbage', '', '\ud800', '{"t":"ack","n":18446744073709551616}']),
      () => '['.repeat(r.pick([100, 10_000])),
      () => JSON.stringify({ t: 'eof', pad: 'p'.repeat(r.int(1, 1024 * 1024)) }),
      () => r.bytes(r.int(0, 4096)),
      () => new TextEncoder().encode(r.pick(['GET / HTTP/1.0\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', '\r\n\r\n'])),
    ];
    for (let c = 0; c < TCP_CLIENTS; c++) {
      const flow = r.chance(0.5) ? '?flow=ack' : r.pick(['', '?flow=nope', '?flow=ack&flow=ack', '?flow=%FF']);
      const auth = r.chance(0.8) ? { headers: { authorization: `Bearer ${key}` } } : {};
      const apiKey = r.pick([key, 'garbage']);
      const query = 'headers' in auth ? flow : `${flow ? `${flow}&` : '?'}api_key=${encodeURIComponent(apiKey)}`;
      const wellFormed = (flow === '' || flow === '?flow=ack') && ('headers' in auth || apiKey === key);
      const ws = new UWebSocket(`${url.replace(/^http/, 'ws')}/api/v1/tunnels/fztcp/connect${query}`, { ...auth, dispatcher } as never);
      ws.binaryType = 'arraybuffer';
      const opened = await new Promise<boolean>((resolve) => {
        ws.onopen = () => resolve(true);
        ws.onerror = () => resolve(false);
      });
      if (!opened) {
        closes.set('refused', (closes.get('refused') ?? 0) + 1);
        if (wellFormed) failures.push(`client ${c}${query}: a well-formed dial was refused`);
        continue;
      }
      const closed = new Promise<{ code: number; reason: string }>((resolve) => (ws.onclose = (e) => resolve({ code: e.code, reason: e.reason })));
      for (let k = 0; k < TCP_MESSAGES && ws.readyState === UWebSocket.OPEN; k++) {
        try {
          // Mostly bytes, so a connection lives long enough for the odd bad message to land mid-stream.
          ws.send(r.chance(0.75) ? r.pick(messages.slice(-2))() : r.pick(messages)());
        } catch {
          break;
        }
      }
      // Closed by us only once the relay has had its say: a close crossing the relay's own (it
      // refuses a bad message with 1008) is a race of the runtime's, which then drops the connection.
      await Promise.race([closed, new Promise((res) => setTimeout(res, 500))]);
      if (ws.readyState === UWebSocket.OPEN) ws.close(1000, 'fuzz done');
      const { code, reason } = await closed;
      closes.set(String(code), (closes.get(String(code)) ?? 0) + 1);
      // A close the relay chose carries its code and reason (1008 bad message, 1011 connection lost); 1006 is a socket torn down without one.
      if (code === 1006) failures.push(`client ${c}${query}: closed with ${code} ${reason}`);
    }
    console.log(`fuzz seed ${SEED}: ${TCP_CLIENTS} TCP tunnel clients, closes ${JSON.stringify(Object.fromEntries(closes))}`);
    expect(failures, `FUZZ_SEED=${SEED}:\n${failures.join('\n')}`).toEqual([]);
  }, FUZZ_TIMEOUT_MS);

  it('is healthy afterwards: /health answers, the demo device answers an RPC and serves its tunnel', async () => {
    expect((await http(`${url}/health`)).status).toBe(200);
    const info = await http(`${url}/api/v1/devices/${fx.demoDevice.id}/info`, { key });
    expect(info.status, JSON.stringify(info.body)).toBe(200);
    const visit = await send({ route: 'check', method: 'GET', url: `http://fzweb.localhost:${port}/`, headers: {}, mutations: [] });
    expect(visit).toEqual({ status: 200, body: 'ok' });
    for (const child of env.agents.values()) expect(child.exitCode).toBeNull();
  });
});
