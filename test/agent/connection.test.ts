// The agent's connection against a fake relay (Bun.serve) that we fully control: hello, RPC
// answers, garbage from the relay, heartbeats, and reconnecting after the relay goes away.
import { afterEach, describe, expect, it } from 'bun:test';
import { jwtVerify, importJWK, type JWK } from 'jose';
import type { Server, ServerWebSocket } from 'bun';
import { AgentConnection, type ConnectionState } from '../../agent/connection.ts';
import { newKeyPair } from '../../agent/identity.ts';
import { createLogger } from '../../agent/log.ts';
import { backoffDelay, REPLACED_BACKOFF } from '../../agent/backoff.ts';
import { dispatchRpc } from '../../agent/rpc.ts';
import { AGENT_JWT_AUDIENCE } from '../../shared/constants.ts';
import { encodeFrame, FrameType } from '../../shared/protocol/frames.ts';
import { HEARTBEAT_PING, HEARTBEAT_PONG } from '../../shared/protocol/envelope.ts';

type Ws = ServerWebSocket<{ id: number }>;

interface FakeRelay {
  server: Server<{ id: number }>;
  url: string;
  received: string[];
  sockets: Ws[];
  tokens: string[];
  connects: number;
  /** When each connection was accepted (Date.now()). */
  connectedAt: number[];
  pings: number;
  /** When true the relay swallows heartbeats instead of answering them. */
  silent: boolean;
  waitFor<T>(fn: () => T | undefined | false, ms?: number): Promise<T>;
  stop(): void;
}

/** `replace`: after its hello_ack, each connection is closed with 4000, as the hub does when another agent of the device connects. */
function fakeRelay(port = 0, opts: { refuse?: { status: number; code: string }; replace?: boolean } = {}): FakeRelay {
  const received: string[] = [];
  const sockets: Ws[] = [];
  const tokens: string[] = [];
  const relay: FakeRelay = {
    received,
    sockets,
    tokens,
    connects: 0,
    connectedAt: [],
    pings: 0,
    silent: false,
    url: '',
    server: null as unknown as Server<{ id: number }>,
    async waitFor(fn, ms = 5_000) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const v = fn();
        if (v) return v;
        await Bun.sleep(10);
      }
      throw new Error('timed out');
    },
    stop() {
      relay.server.stop(true);
    },
  };
  relay.server = Bun.serve<{ id: number }>({
    port,
    hostname: '127.0.0.1',
    fetch(req, server) {
      const url = new URL(req.url);
      if (url.pathname === '/health') return Response.json({ status: 'ok' });
      if (url.pathname !== '/agent/connect') return new Response('no', { status: 404 });
      tokens.push(req.headers.get('authorization') ?? '');
      if (opts.refuse) return Response.json({ error: 'refused', code: opts.refuse.code, details: {} }, { status: opts.refuse.status });
      if (req.headers.get('upgrade') !== 'websocket') return Response.json({ error: 'upgrade', code: 'UPGRADE_REQUIRED', details: {} }, { status: 426 });
      relay.connects++;
      relay.connectedAt.push(Date.now());
      return server.upgrade(req, { data: { id: relay.connects } }) ? undefined : new Response('upgrade failed', { status: 500 });
    },
    websocket: {
      open(ws) {
        sockets.push(ws);
      },
      message(ws, msg) {
        const text = typeof msg === 'string' ? msg : new TextDecoder().decode(msg);
        if (text === HEARTBEAT_PING) {
          relay.pings++;
          if (!relay.silent) ws.send(HEARTBEAT_PONG);
          return;
        }
        received.push(text);
        const m = JSON.parse(text);
        if (m.t === 'hello') ws.send(JSON.stringify({ t: 'hello_ack', protocol: 1, device_id: 'dev1', heartbeat_ms: 200, relay_version: 'test' }));
        if (m.t === 'hello' && opts.replace) {
          ws.send(JSON.stringify({ t: 'bye', code: '4000', reason: 'replaced by a newer connection' }));
          ws.close(4000, 'replaced by a newer connection');
        }
      },
    },
  });
  relay.url = `http://127.0.0.1:${relay.server.port}`;
  return relay;
}

const quiet = createLogger('error');
let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

async function connect(relay: FakeRelay, extra: Partial<ConstructorParameters<typeof AgentConnection>[0]> = {}) {
  const { privateJwk, publicJwk } = await newKeyPair();
  const states: ConnectionState[] = [];
  const conn = new AgentConnection({
    relay: relay.url,
    deviceId: 'dev1',
    privateJwk,
    // Serving only the universal ping, the module is known to the hub by its name.
    modules: [{ name: 'device_info', rpc: { ping: () => ({ now: 42 }) } }],
    facts: async () => undefined,
    log: quiet,
    maxBackoffMs: 400,
    onState: (s) => states.push(s),
    ...extra,
  });
  conn.start();
  cleanup.push(() => conn.stop());
  return { conn, states, publicJwk };
}

describe('agent connection', () => {
  it('authenticates with a short-lived EdDSA JWT for its own device id and says hello', async () => {
    const relay = fakeRelay();
    cleanup.push(() => relay.stop());
    const { publicJwk, states } = await connect(relay);
    const hello = JSON.parse(await relay.waitFor(() => relay.received.find((m) => m.includes('"hello"'))));
    expect(hello).toMatchObject({ t: 'hello', protocol: 1, capabilities: ['device_info'] });
    const token = relay.tokens[0]!.replace(/^Bearer /, '');
    const { payload } = await jwtVerify(token, await importJWK(publicJwk as JWK, 'EdDSA'), { audience: AGENT_JWT_AUDIENCE });
    expect(payload.sub).toBe('dev1');
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    await relay.waitFor(() => states.includes('online'));
  });

  it('answers RPCs, and survives garbage from the relay', async () => {
    const relay = fakeRelay();
    cleanup.push(() => relay.stop());
    await connect(relay);
    const ws = await relay.waitFor(() => relay.received.length > 0 && relay.sockets[0]);
    for (const junk of ['not json', '{"t":"req"}', '{"t":"req","id":"x","method":1}', '[]', 'null', JSON.stringify({ t: 'mystery' })]) ws.send(junk);
    ws.send(new Uint8Array([1, 2, 3]));
    ws.send(encodeFrame(FrameType.DATA, 7, new Uint8Array([1])));
    ws.send(JSON.stringify({ t: 'req', id: 1, method: 'nope', params: {} }));
    ws.send(JSON.stringify({ t: 'req', id: 2, method: 'ping', params: { unexpected: true } }));
    ws.send(JSON.stringify({ t: 'req', id: 3, method: 'ping', params: {} }));
    const answers = await relay.waitFor(() => {
      const res = relay.received.map((m) => JSON.parse(m)).filter((m) => m.t === 'res');
      return res.length >= 3 && res;
    });
    const byId = new Map<number, unknown>(answers.map((a: { id: number }) => [a.id, a]));
    expect(byId.get(1)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_METHOD' } });
    expect(byId.get(2)).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS' } });
    expect(byId.get(3)).toEqual({ t: 'res', id: 3, ok: true, result: { now: 42 } });
    expect(relay.connects).toBe(1);
  });

  it('reconnects with backoff when the relay drops it, and comes back when the relay returns', async () => {
    let relay = fakeRelay();
    const port = relay.server.port;
    const { states } = await connect(relay);
    await relay.waitFor(() => states.includes('online'));
    relay.stop();
    await relay.waitFor(() => states.includes('offline'));
    await Bun.sleep(300);
    relay = fakeRelay(port);
    cleanup.push(() => relay.stop());
    await relay.waitFor(() => relay.connects === 1, 5_000);
    expect(states.filter((s) => s === 'online').length).toBeGreaterThanOrEqual(1);
  });

  it('sends heartbeats at the interval the hub asks for', async () => {
    const relay = fakeRelay();
    cleanup.push(() => relay.stop());
    const { states } = await connect(relay);
    await relay.waitFor(() => states.includes('online'));
    const from = relay.pings;
    await Bun.sleep(1_000);
    // heartbeat_ms is 200 in the fake hello_ack: about five pings a second.
    expect(relay.pings - from).toBeGreaterThanOrEqual(3);
    expect(relay.pings - from).toBeLessThanOrEqual(7);
    expect(relay.connects).toBe(1);
  });

  it('drops and redials a relay that stops answering heartbeats', async () => {
    const relay = fakeRelay();
    cleanup.push(() => relay.stop());
    const { states } = await connect(relay);
    await relay.waitFor(() => states.includes('online'));
    relay.silent = true;
    await relay.waitFor(() => relay.connects >= 2, 5_000);
    expect(states).toContain('offline');
  });

  it('reports waiting-approval when the relay says the device is pending', async () => {
    const relay = fakeRelay(0, { refuse: { status: 403, code: 'DEVICE_PENDING' } });
    cleanup.push(() => relay.stop());
    const { states } = await connect(relay);
    await relay.waitFor(() => states.includes('waiting-approval'));
  });

  it('reports refused when the relay revoked the device', async () => {
    const relay = fakeRelay(0, { refuse: { status: 403, code: 'DEVICE_REVOKED' } });
    cleanup.push(() => relay.stop());
    const { states } = await connect(relay);
    await relay.waitFor(() => states.includes('refused'));
    expect(states).not.toContain('online');
  });
});

/** A logger that keeps the fields of every warning with this message start. */
function recordingLogger(prefix: string) {
  const seen: Record<string, unknown>[] = [];
  return {
    seen,
    log: { ...quiet, warn: (msg: string, extra?: Record<string, unknown>) => msg.startsWith(prefix) && seen.push(extra ?? {}) },
  };
}

describe('agent connection replaced by another agent of the device (4000)', () => {
  it('backs off, growing each time it is replaced again, instead of taking the connection straight back', async () => {
    const relay = fakeRelay(0, { replace: true });
    cleanup.push(() => relay.stop());
    const { seen, log } = recordingLogger('another agent with this device identity');
    await connect(relay, { log, replacedBackoff: { baseMs: 200, capMs: 800 } });
    await relay.waitFor(() => relay.connects >= 5, 10_000);
    const delays = seen.map((e) => e.in_ms as number);
    // d = min(cap, base·2^n) for the n-th replacement in a row, jittered within [d/2, d].
    for (const [n, d] of [200, 400, 800, 800].entries()) {
      expect(delays[n]).toBeGreaterThanOrEqual(d / 2);
      expect(delays[n]).toBeLessThanOrEqual(d);
    }
    // The agent really waited that long before dialing again (the ordinary backoff here is ≤ 400 ms).
    for (let n = 0; n < 4; n++) expect(relay.connectedAt[n + 1]! - relay.connectedAt[n]!).toBeGreaterThanOrEqual(delays[n]!);
  });

  it('waits seconds by default, whatever the ordinary backoff cap', async () => {
    const relay = fakeRelay(0, { replace: true });
    cleanup.push(() => relay.stop());
    const { seen, log } = recordingLogger('another agent with this device identity');
    await connect(relay, { log, maxBackoffMs: 400 });
    await relay.waitFor(() => seen.length >= 1);
    expect(seen[0]!.in_ms as number).toBeGreaterThanOrEqual(REPLACED_BACKOFF.baseMs / 2);
    expect(relay.connects).toBe(1);
  });
});

describe('backoff', () => {
  it('doubles from the base, caps, and jitters within [d/2, d]', () => {
    expect(backoffDelay(0, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(1, 30_000, () => 1)).toBe(1_000);
    expect(backoffDelay(3, 30_000, () => 1)).toBe(4_000);
    expect(backoffDelay(20, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(20, 30_000, () => 0)).toBe(15_000);
    expect(backoffDelay(1000, 30_000, () => 0.5)).toBe(22_500);
  });
});

describe('rpc dispatch', () => {
  it('turns a throwing handler into an AGENT_ERROR reply', async () => {
    const r = await dispatchRpc({ ping: () => { throw new Error('boom'); } }, 'ping', {});
    expect(r).toEqual({ ok: false, error: { code: 'AGENT_ERROR', message: 'boom' } });
  });
  it('refuses methods the agent does not implement', async () => {
    expect(await dispatchRpc({}, 'device_info', {})).toMatchObject({ ok: false, error: { code: 'UNSUPPORTED_METHOD' } });
  });
});
