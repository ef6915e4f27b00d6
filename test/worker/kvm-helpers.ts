// Test helpers for KVM: a fake agent on a real DeviceHub socket (tunnels-helpers.ts's, which speaks
// the stream mux, so the hub's `screen` and `hid` streams reach it) that also answers the kvm RPCs
// (with a result or an agent error, as the handler says); users whose role holds the KVM
// permissions; and a few answers the agent gives.
import { env, SELF } from 'cloudflare:test';
import { createToken, facts, keyPair } from './device-helpers.ts';
import { fakeTunnelAgent } from './tunnels-helpers.ts';
import { api, BASE, joinTeam, userWithKey, TEST_TEAM } from './helpers.ts';
import { freshIp, userWithPassword } from './auth-helpers.ts';
import { SESSION_COOKIE } from '../../shared/api/auth.ts';
import type { MuxStream, StreamMux } from '../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../shared/protocol/messages.ts';
import type { HidState, KvmStatus, TypeJob } from '../../shared/protocol/kvm.ts';

/** What a handler answers an RPC with; NO_ANSWER leaves it unanswered (to test deadlines). */
export type RpcAnswer = { result: unknown } | { error: { code: string; message: string; details?: Record<string, unknown> } } | typeof NO_ANSWER;
export const NO_ANSWER = Symbol('no answer');

export const HELD_NOTHING: HidState = { held: [], leds: { num_lock: true, caps_lock: false, scroll_lock: false } };

export const STATUS: KvmStatus = {
  ...HELD_NOTHING,
  keyboard: { path: '/dev/hidg0', state: 'ok' },
  mouse: { path: '/dev/hidg1', state: 'ok' },
  screen: { backend: 'simulated', signal: true, width: 1280, height: 720 },
};

export const job = (over: Partial<TypeJob> = {}): TypeJob => ({ id: 'job-1', layout: 'en-US', state: 'typing', typed: 0, total: 5, substitutions: [], ...over });

/** The answers a well-behaved agent gives, for the methods a test does not handle itself. */
export function defaultAnswer(method: string, params: unknown): RpcAnswer {
  const p = params as Record<string, unknown>;
  switch (method) {
    case 'kvm_status':
      return { result: STATUS };
    case 'hid_keystroke':
    case 'hid_release':
      return { result: HELD_NOTHING };
    case 'hid_key':
      return { result: { ...HELD_NOTHING, held: p.action === 'down' ? [p.code] : [] } };
    case 'hid_mouse':
      return { result: {} };
    case 'hid_type_start':
      return { result: job({ layout: String(p.layout), total: [...String(p.text)].length }) };
    case 'hid_type_status':
    case 'hid_type_cancel':
      if (p.job !== 'job-1') return { error: { code: 'UNKNOWN_TYPE_JOB', message: `no type job ${String(p.job)}` } };
      return { result: job({ state: method === 'hid_type_cancel' ? 'cancelled' : 'typing', typed: 2 }) };
    default:
      return NO_ANSWER;
  }
}

export interface FakeKvmAgent {
  ws: WebSocket;
  mux: StreamMux;
  /** Every RPC the hub sent, in order. */
  calls: { method: string; params: Record<string, unknown> }[];
  /** Every stream the hub opened, with its OPEN. */
  streams: { stream: MuxStream; open: StreamOpen }[];
}

/**
 * A fake agent with the kvm capability. `rpc` answers RPCs (defaultAnswer for what it leaves out);
 * `onOpen` answers the hub's streams (the default refuses them, as an agent without KVM would).
 */
export async function fakeKvmAgent(
  deviceId: string,
  privateKey: CryptoKey,
  opts: { rpc?: (method: string, params: Record<string, unknown>) => RpcAnswer | undefined; onOpen?: (stream: MuxStream, open: StreamOpen) => void; capabilities?: string[] } = {},
): Promise<FakeKvmAgent> {
  const calls: FakeKvmAgent['calls'] = [];
  const streams: FakeKvmAgent['streams'] = [];
  const { ws, mux } = await fakeTunnelAgent(deviceId, privateKey, {
    capabilities: opts.capabilities,
    onOpen: (stream) => {
      const open = stream.open!;
      streams.push({ stream, open });
      if (opts.onOpen) opts.onOpen(stream, open);
      else stream.reset('REFUSED', 'no kvm here');
    },
  });
  ws.addEventListener('message', (e) => {
    if (typeof e.data !== 'string') return;
    const msg = JSON.parse(e.data) as Record<string, unknown>;
    if (msg.t !== 'req') return;
    const method = String(msg.method);
    const params = (msg.params ?? {}) as Record<string, unknown>;
    calls.push({ method, params });
    const answer = opts.rpc?.(method, params) ?? defaultAnswer(method, params);
    if (answer === NO_ANSWER) return;
    ws.send(JSON.stringify('result' in answer ? { t: 'res', id: msg.id, ok: true, result: answer.result } : { t: 'res', id: msg.id, ok: false, error: answer.error }));
  });
  return { ws, mux, calls, streams };
}

/** A role holding `permissions`, and a user of it with an API key, in `team` (TEST_TEAM by default) as a member. */
export async function userWithPermissions(permissions: string[], team: string = TEST_TEAM, teamRole: 'owner' | 'admin' | 'member' = 'member') {
  const role = `kvm-${crypto.randomUUID().slice(0, 8)}`;
  await env.DB.prepare('INSERT INTO roles (id, name, description, permissions, is_system) VALUES (?1, ?1, ?2, ?3, 0)').bind(role, 'test role', JSON.stringify(permissions)).run();
  const u = await userWithKey([role], undefined, null);
  await joinTeam(u.userId, [role], team, teamRole);
  return u;
}

/** A team of its own, made straight in D1. */
export async function makeTeam(id: string) {
  await env.DB.prepare('INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?2, 0, 0, 0)').bind(id, `Team ${id}`).run();
}

/** An approved device in TEST_TEAM with a fake KVM agent connected. */
export async function kvmDevice(adminKey: string, opts: Parameters<typeof fakeKvmAgent>[2] = {}) {
  const token = await createToken(adminKey, { auto_approve: true, team_id: TEST_TEAM });
  const keys = await keyPair();
  const res = await api('/api/v1/enroll', { json: { token, public_key: keys.publicJwk, facts: facts(), agent_version: '0.1.0' } });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${await res.text()}`);
  const deviceId = ((await res.json()) as { device_id: string }).device_id;
  const agent = await fakeKvmAgent(deviceId, keys.privateKey, opts);
  return { deviceId, privateKey: keys.privateKey, agent };
}

export const bytes = (text: string) => new TextEncoder().encode(text);

/** The relay's own origin, which a browser page of the relay sends. */
export const ORIGIN = new URL(BASE).origin;

/** A browser's session: logged in with session_cookie, the Cookie header it then sends. */
export async function browserSession(roles = ['admin']) {
  const u = await userWithPassword(roles);
  const res = await SELF.fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': freshIp(), origin: ORIGIN },
    body: JSON.stringify({ username: u.username, password: u.password, session_cookie: true }),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const token = new RegExp(`^${SESSION_COOKIE}=([^;]+)`).exec(res.headers.get('set-cookie') ?? '')?.[1] ?? '';
  await res.arrayBuffer();
  return { ...u, cookie: `${SESSION_COOKIE}=${token}` };
}
