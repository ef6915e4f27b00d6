// Test helpers for devices: real Ed25519 key pairs, enrollment through the API, devices written
// straight to D1, and a fake agent that dials /agent/connect and answers RPCs like a real one.
import { env, SELF } from 'cloudflare:test';
import { SignJWT } from 'jose';
import { randomId } from '../../worker/auth/crypto.ts';
import { AGENT_JWT_AUDIENCE } from '../../shared/constants.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';
import type { DeviceFacts, DeviceInfo, ProcessList } from '../../shared/api/device-info.ts';
import { api, BASE, TEST_TEAM } from './helpers.ts';

export async function keyPair() {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey;
  return { privateKey: pair.privateKey, publicJwk: { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! } };
}

export function facts(over: Partial<DeviceFacts> = {}): DeviceFacts {
  return {
    hostname: 'raspberrypi',
    serial: '10000000389253E6',
    hardware: 'Pi4 Model B',
    os: 'Linux',
    os_version: 'debian 11.2',
    architecture: 'aarch64',
    mac_address: 'b8:27:eb:2a:7f:c1',
    ...over,
  };
}

export async function createToken(adminKey: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await api('/api/v1/enrollment-tokens', { key: adminKey, json: body });
  if (res.status !== 201) throw new Error(`token creation failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Enrolls a fresh key pair with a new token; returns the device id and its private key. */
export async function enrollDevice(adminKey: string, opts: { autoApprove?: boolean; name?: string; facts?: Partial<DeviceFacts> } = {}) {
  const token = await createToken(adminKey, { auto_approve: opts.autoApprove ?? false });
  const keys = await keyPair();
  const res = await api('/api/v1/enroll', {
    json: { token, public_key: keys.publicJwk, facts: facts(opts.facts), agent_version: '0.1.0', ...(opts.name ? { name: opts.name } : {}) },
  });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { device_id: string; name: string; status: string };
  return { deviceId: body.device_id, status: body.status, name: body.name, ...keys };
}

/** A device row written directly, e.g. an approved device that never connected. */
export async function insertDevice(over: { id?: string; name?: string; status?: string; online?: boolean; hostname?: string; team?: string } = {}) {
  const id = over.id ?? randomId();
  await env.DB.prepare(
    `INSERT INTO devices (id, name, hostname, serial, hardware, os, os_version, architecture, mac, status, online, registered_at, approved_at, team_id)
     VALUES (?1, ?2, ?3, 'SER1', 'Pi3 Model B', 'Linux', 'Ubuntu 18.04 bionic', 'x86_64', 'aa:bb:cc:dd:ee:ff', ?4, ?5, ?6, ?7, ?8)`,
  )
    .bind(id, over.name ?? `dev-${id.slice(0, 6)}`, over.hostname ?? 'ubuntu', over.status ?? 'approved', over.online ? 1 : 0, Date.now(), over.status === 'pending' ? null : Date.now(), over.team ?? TEST_TEAM)
    .run();
  return id;
}

export async function agentJwt(deviceId: string, privateKey: CryptoKey) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA' })
    .setSubject(deviceId)
    .setAudience(AGENT_JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('60s')
    .setJti(crypto.randomUUID())
    .sign(privateKey);
}

export function connectRequest(jwt: string) {
  return SELF.fetch(`${BASE}/agent/connect`, { headers: { Upgrade: 'websocket', Authorization: `Bearer ${jwt}` } });
}

export const fakeInfo = (f: DeviceFacts = facts()): DeviceInfo => ({
  ...f,
  uptime: 12345,
  cpu: { usage_percent: 9.7, cores: 4, load_average: [0.5, 0.4, 0.3] },
  memory: { total: 972361728, available: 660647936, used: 311713792, used_percent: 32.1, swap_total: 0, swap_used: 0 },
  disk_usage: [15570452480, 9602961408, 5270650880, 64.6],
  disks: [{ mount: '/', device: '/dev/mmcblk0p2', fstype: 'ext4', total: 15570452480, used: 9602961408, available: 5270650880, percent_free: 64.6 }],
  cpu_temp: 54.768,
  gpu_temp: null,
});

export const fakeProcesses: ProcessList = {
  processes: [
    { pid: 867, name: 'lxpanel', cpu_percent: 0.2, memory_percent: 2.552307776556175, rss: 24_000_000, state: 'S', user: 'pi', cmdline: 'lxpanel' },
    { pid: 121, name: 'systemd-journald', cpu_percent: 0.1, memory_percent: 1.1470430888863614, rss: 11_000_000, state: 'S', user: 'root', cmdline: '/lib/systemd/systemd-journald' },
  ],
};

type Handler = (method: string, params: unknown) => unknown | typeof NO_ANSWER;
/** Returned by a handler to leave a request unanswered (to test deadlines). */
export const NO_ANSWER = Symbol('no answer');

/** A fake agent on a real DeviceHub socket: says hello and answers `req` messages with `handler`. */
export async function connectAgent(deviceId: string, privateKey: CryptoKey, handler: Handler = defaultHandler) {
  const res = await connectRequest(await agentJwt(deviceId, privateKey));
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`connect failed: ${res.status} ${await res.text()}`);
  ws.accept();
  const received: Record<string, unknown>[] = [];
  let closed: { code: number; reason: string } | null = null;
  const closedPromise = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener('close', (e) => {
      closed = { code: e.code, reason: e.reason };
      resolve(closed);
    });
  });
  ws.addEventListener('message', (e) => {
    const msg = JSON.parse(String(e.data)) as Record<string, unknown>;
    received.push(msg);
    if (msg.t === 'req') {
      const result = handler(String(msg.method), msg.params);
      if (result !== NO_ANSWER) ws.send(JSON.stringify({ t: 'res', id: msg.id, ok: true, result }));
    }
  });
  ws.send(JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, agent_version: '0.1.0-test', capabilities: ['device_info', 'process_list'] }));
  await waitFor(() => received.some((m) => m.t === 'hello_ack'), 'hello_ack');
  return {
    ws,
    received,
    closed: closedPromise,
    isClosed: () => closed !== null,
  };
}

function defaultHandler(method: string): unknown {
  if (method === 'device_info') return fakeInfo();
  if (method === 'process_list') return fakeProcesses;
  return NO_ANSWER;
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Polls an async check until it holds (the hub updates D1 after the socket event). */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
