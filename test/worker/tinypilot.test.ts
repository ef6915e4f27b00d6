// TinyPilot's API on the relay: the keys that make its base URL (created, listed, revoked,
// audited, stored hashed, only in the device's team), and under that base URL the seed's own
// example requests as written, against a fake agent on a real DeviceHub: auth and the Origin rule,
// keystrokes and mouse events down to the RPCs the agent receives, TinyPilot's 400s, the 500 text
// of a gadget that cannot be written, and every way a credential that is not this key's token is
// refused. Screenshots through the hub are in the block that waits for the hub's screen code.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomId, sha256Hex } from '../../worker/auth/crypto.ts';
import { BASE, api, joinTeam, userWithKey } from './helpers.ts';
import { login, userWithPassword } from './auth-helpers.ts';
import { enrollDevice, eventually, insertDevice, waitFor } from './device-helpers.ts';
import { FAKE_JPEG, fakeKvmAgent } from './tinypilot-helpers.ts';
import { forwardFailure, GUESSES_PER_MINUTE, MAX_TOKENS_PER_KEY, parseKeystroke, parseMouseEvent, screenshotAnswer, TOKEN_TTL_MS } from '../../worker/compat/tinypilot.ts';
import { MAX_KEYS_PER_DEVICE } from '../../worker/routes/tinypilot-keys.ts';
import { ApiError } from '../../worker/errors.ts';

interface CreatedKey {
  id: string;
  device_id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  key: string;
  base_url: string;
}

let admin: { userId: string; key: string };
let deviceA: string;
let deviceB: string;
let agentA: Awaited<ReturnType<typeof fakeKvmAgent>>;
let agentB: Awaited<ReturnType<typeof fakeKvmAgent>>;

let ipCounter = 0;
/** Each call from its own address, so the guess limit is met only where a test means to meet it. */
const freshIp = () => `192.0.2.${++ipCounter % 250}`;

/** A request to a TinyPilot base URL, as a TinyPilot client would send it (JSON bodies with their Content-Type). */
function tp(baseUrl: string, path: string, opts: { method?: string; token?: string; json?: unknown; body?: string; headers?: Record<string, string>; ip?: string } = {}) {
  const headers: Record<string, string> = { 'cf-connecting-ip': opts.ip ?? freshIp(), ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(opts.json);
  }
  return SELF.fetch(`${baseUrl}${path}`, { method: opts.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
}

/** Makes a key through the API; `json` null sends no body at all. */
async function createKey(deviceId: string, key = admin.key, json: unknown = { name: 'script' }): Promise<CreatedKey> {
  const res = await api(`/api/v1/devices/${deviceId}/tinypilot-keys`, { key, method: 'POST', ...(json === null ? {} : { json }) });
  const text = await res.text();
  expect(res.status, text).toBe(201);
  return JSON.parse(text) as CreatedKey;
}

async function tokenOf(baseUrl: string): Promise<string> {
  const res = await tp(baseUrl, '/auth', { method: 'POST' });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** The seed's requests, exactly: POST /keystroke with a JSON body. */
const keystroke = (base: string, token: string, body: unknown) => tp(base, '/keystroke', { token, json: body });
const mouseEvent = (base: string, token: string, body: unknown) => tp(base, '/mouseEvent', { token, json: body });

async function expectText(res: Response, status: number, text: string) {
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(await res.text()).toBe(text);
}

/** The hid_* RPCs the agent got after `before` of them. */
const callsSince = (agent: typeof agentA, before: number) => agent.calls.slice(before);

beforeAll(async () => {
  admin = await userWithKey(['admin']);
  const a = await enrollDevice(admin.key, { autoApprove: true });
  const b = await enrollDevice(admin.key, { autoApprove: true });
  deviceA = a.deviceId;
  deviceB = b.deviceId;
  agentA = await fakeKvmAgent(deviceA, a.privateKey);
  agentB = await fakeKvmAgent(deviceB, b.privateKey);
});

describe('TinyPilot keys', () => {
  it('creates a key shown once, with its base URL, stored only as its SHA-256, and audited without it', async () => {
    const created = await createKey(deviceA);
    expect(Object.keys(created).sort()).toEqual(['base_url', 'created_at', 'device_id', 'id', 'key', 'last_used_at', 'name']);
    expect(created).toMatchObject({ device_id: deviceA, name: 'script', last_used_at: null });
    expect(created.key).toMatch(/^ptp_[A-Za-z0-9_-]{43}$/);
    expect(created.base_url).toBe(`${BASE}/tinypilot/${created.key}/api/v1`);

    const row = await env.DB.prepare('SELECT * FROM tinypilot_keys WHERE id = ?1').bind(created.id).first<Record<string, unknown>>();
    expect(row?.key_hash).toBe(await sha256Hex(created.key));
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(created.key);
    expect(stored).not.toContain(created.key.slice(4));

    const list = await api(`/api/v1/devices/${deviceA}/tinypilot-keys`, { key: admin.key });
    expect(list.status).toBe(200);
    const listed = (await list.json()) as { keys: Record<string, unknown>[] };
    const mine = listed.keys.find((k) => k.id === created.id);
    expect(mine).toEqual({ id: created.id, device_id: deviceA, name: 'script', created_at: created.created_at, last_used_at: null });
    expect(JSON.stringify(listed)).not.toContain(created.key.slice(4));

    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE action = 'tinypilot_key.create' AND target_id = ?1").bind(created.id).first<Record<string, unknown>>();
    expect(audit).toMatchObject({ actor_id: admin.userId, team_id: 'test-team', target_type: 'tinypilot_key' });
    expect(JSON.parse(String(audit!.details))).toMatchObject({ device_id: deviceA, name: 'script' });
    expect(JSON.stringify(audit)).not.toContain(created.key.slice(4));
  });

  it('takes no body (the default name) and refuses a malformed one', async () => {
    const created = await createKey(deviceA, admin.key, null);
    expect(created.name).toBe('TinyPilot API');
    const bad = await api(`/api/v1/devices/${deviceA}/tinypilot-keys`, { key: admin.key, json: { name: '', extra: 1 } });
    expect(bad.status).toBe(400);
  });

  it('revokes a key: it and its tokens stop at once, answering like a key that never was; audited once', async () => {
    const created = await createKey(deviceA);
    const token = await tokenOf(created.base_url);
    expect((await keystroke(created.base_url, token, { code: 'KeyA' })).status).toBe(200);

    const del = await api(`/api/v1/devices/${deviceA}/tinypilot-keys/${created.id}`, { key: admin.key, method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await env.DB.prepare('SELECT COUNT(*) AS n FROM tinypilot_tokens WHERE key_id = ?1').bind(created.id).first<{ n: number }>())?.n).toBe(0);
    await expectText(await keystroke(created.base_url, token, { code: 'KeyA' }), 404, 'Not Found');
    await expectText(await tp(created.base_url, '/auth', { method: 'POST' }), 404, 'Not Found');
    const list = (await (await api(`/api/v1/devices/${deviceA}/tinypilot-keys`, { key: admin.key })).json()) as { keys: { id: string }[] };
    expect(list.keys.map((k) => k.id)).not.toContain(created.id);

    // Again: nothing changes, nothing more is recorded.
    expect((await api(`/api/v1/devices/${deviceA}/tinypilot-keys/${created.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    const revokes = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'tinypilot_key.revoke' AND target_id = ?1").bind(created.id).first<{ n: number }>();
    expect(revokes?.n).toBe(1);
    // A key id that is not there, or is another device's, is not found.
    expect((await api(`/api/v1/devices/${deviceA}/tinypilot-keys/${'f'.repeat(32)}`, { key: admin.key, method: 'DELETE' })).status).toBe(404);
    const onA = await createKey(deviceA);
    expect((await api(`/api/v1/devices/${deviceB}/tinypilot-keys/${onA.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(404);
    expect((await tp(onA.base_url, '/auth', { method: 'POST' })).status).toBe(200);
  });

  it("stops a device's keys when it moves to another team, and the new team does not see them", async () => {
    const dev = await enrollDevice(admin.key, { autoApprove: true });
    const moving = await fakeKvmAgent(dev.deviceId, dev.privateKey);
    const k = await createKey(dev.deviceId);
    const t = await tokenOf(k.base_url);
    expect((await keystroke(k.base_url, t, { code: 'KeyA' })).status).toBe(200);
    // Another instance admin makes the team (its maker joins it; the file's admin stays in one team).
    const mover = await userWithKey(['admin']);
    const team = await api('/api/v1/teams', { key: mover.key, json: { name: `Movers ${randomId(3)}` } });
    expect(team.status).toBe(201);
    const teamId = ((await team.json()) as { id: string }).id;
    expect((await api(`/api/v1/devices/${dev.deviceId}/move`, { key: mover.key, json: { team_id: teamId } })).status).toBe(200);
    await expectText(await keystroke(k.base_url, t, { code: 'KeyA' }), 404, 'Not Found');
    await expectText(await tp(k.base_url, '/auth', { method: 'POST' }), 404, 'Not Found');
    expect(moving.calls).toHaveLength(1);
    const list = (await (await api(`/api/v1/devices/${dev.deviceId}/tinypilot-keys`, { key: admin.key })).json()) as { keys: unknown[] };
    expect(list.keys).toEqual([]);
    // A key made in the new team works.
    const fresh = await createKey(dev.deviceId);
    expect((await keystroke(fresh.base_url, await tokenOf(fresh.base_url), { code: 'KeyB' })).status).toBe(200);
    moving.ws.close();
  });

  it(`holds a device to ${MAX_KEYS_PER_DEVICE} live keys (409); revoking one makes room`, async () => {
    const device = await insertDevice({ status: 'approved' });
    const made = [await createKey(device)];
    // The rest straight into D1, rather than 49 more calls.
    await env.DB.batch(
      Array.from({ length: MAX_KEYS_PER_DEVICE - 1 }, (_, i) =>
        env.DB.prepare("INSERT INTO tinypilot_keys (id, device_id, team_id, name, prefix, key_hash, created_at) VALUES (?1, ?2, 'test-team', 'filler', 'ptp_x', ?3, 1)").bind(randomId(16), device, `filler-${device}-${i}`),
      ),
    );
    const full = await api(`/api/v1/devices/${device}/tinypilot-keys`, { key: admin.key, json: {} });
    expect(full.status).toBe(409);
    expect(((await full.json()) as { code: string }).code).toBe('TINYPILOT_KEY_LIMIT_REACHED');
    expect((await api(`/api/v1/devices/${device}/tinypilot-keys/${made[0]!.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    await createKey(device);
  });

  it('needs hid:write: a viewer is refused, an operator (the system role, migration 0005) may', async () => {
    const viewer = await userWithKey(['viewer']);
    const refused = await api(`/api/v1/devices/${deviceA}/tinypilot-keys`, { key: viewer.key, method: 'POST', json: {} });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { details: { required: string[] } }).details.required).toEqual(['hid:write']);
    expect((await api(`/api/v1/devices/${deviceA}/tinypilot-keys`, { key: viewer.key })).status).toBe(403);
    const operator = await userWithKey(['operator']);
    await createKey(deviceA, operator.key);
  });

  it("is a 404 to a user of another team, for creating, listing and revoking a device's keys", async () => {
    await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES ('tp-other', 'Other', 0, 0, 0)").run();
    const other = await userWithKey(['admin-less'], undefined, null);
    await env.DB.prepare("INSERT OR IGNORE INTO roles (id, name, description, permissions, is_system) VALUES ('admin-less', 'hid', '', '[\"hid:write\",\"devices:read\"]', 0)").run();
    await joinTeam(other.userId, ['admin-less'], 'tp-other', 'owner');
    const existing = await createKey(deviceA);
    for (const [method, path] of [
      ['POST', `/api/v1/devices/${deviceA}/tinypilot-keys`],
      ['GET', `/api/v1/devices/${deviceA}/tinypilot-keys`],
      ['DELETE', `/api/v1/devices/${deviceA}/tinypilot-keys/${existing.id}`],
    ] as const) {
      const res = await api(path, { key: other.key, method, ...(method === 'POST' ? { json: {} } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(((await res.json()) as { error: string }).error).toBe('Device not found');
    }
    expect((await tp(existing.base_url, '/auth', { method: 'POST' })).status).toBe(200);
  });
});

describe("TinyPilot's API, the seed's examples as written", () => {
  let base: string;
  let token: string;
  beforeAll(async () => {
    base = (await createKey(deviceA)).base_url;
  });

  it('POST /auth without an Origin: 200 {"token"}, stored hashed, expiring in 24 h; the key counts as used', async () => {
    const before = Date.now();
    const res = await tp(base, '/auth', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { token: string };
    expect(Object.keys(body)).toEqual(['token']);
    expect(body.token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    token = body.token;
    const row = await env.DB.prepare('SELECT * FROM tinypilot_tokens WHERE token_hash = ?1').bind(await sha256Hex(token)).first<{ created_at: number; expires_at: number }>();
    expect(row).not.toBeNull();
    expect(row!.expires_at - row!.created_at).toBe(TOKEN_TTL_MS);
    expect(row!.created_at).toBeGreaterThanOrEqual(before);
    const all = JSON.stringify((await env.DB.prepare('SELECT * FROM tinypilot_tokens').all()).results);
    expect(all).not.toContain(token);
    // A second token does not end the first.
    const second = await tokenOf(base);
    expect(second).not.toBe(token);
    expect((await keystroke(base, token, { code: 'KeyA' })).status).toBe(200);
    const key = await env.DB.prepare('SELECT last_used_at FROM tinypilot_keys WHERE key_hash = ?1').bind(await sha256Hex(base.split('/')[4]!)).first<{ last_used_at: number | null }>();
    expect(key?.last_used_at).toBeGreaterThanOrEqual(before);
  });

  it(`keeps a key's newest ${MAX_TOKENS_PER_KEY} tokens: one more retires the oldest, and expired ones are swept`, async () => {
    const k = await createKey(deviceA);
    const first = await tokenOf(k.base_url);
    const expired = await tokenOf(k.base_url);
    await env.DB.prepare('UPDATE tinypilot_tokens SET expires_at = 1 WHERE token_hash = ?1').bind(await sha256Hex(expired)).run();
    // The rest of the hundred straight into D1 (newer than the first), rather than 98 more calls.
    const now = Date.now();
    const rows = Array.from({ length: MAX_TOKENS_PER_KEY - 2 }, (_, i) =>
      env.DB.prepare('INSERT INTO tinypilot_tokens (token_hash, key_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)').bind(`filler-${k.id}-${i}`, k.id, now + 1 + i, now + TOKEN_TTL_MS),
    );
    await env.DB.batch(rows);
    await tokenOf(k.base_url);
    const count = async () => (await env.DB.prepare('SELECT COUNT(*) AS n FROM tinypilot_tokens WHERE key_id = ?1').bind(k.id).first<{ n: number }>())!.n;
    // The expired one went at the first issue after it expired; the first is still the 100th newest.
    expect(await count()).toBe(MAX_TOKENS_PER_KEY);
    expect((await keystroke(k.base_url, first, { code: 'KeyA' })).status).toBe(200);
    const last = await tokenOf(k.base_url);
    expect(await count()).toBe(MAX_TOKENS_PER_KEY);
    await expectText(await keystroke(k.base_url, first, { code: 'KeyA' }), 401, 'Not authorized');
    expect((await keystroke(k.base_url, last, { code: 'KeyA' })).status).toBe(200);
  });

  it('POST /auth with an Origin header is refused, and issues nothing', async () => {
    const count = async () => (await env.DB.prepare('SELECT COUNT(*) AS n FROM tinypilot_tokens').first<{ n: number }>())!.n;
    const n = await count();
    for (const origin of ['https://evil.example', 'null', BASE]) {
      await expectText(await tp(base, '/auth', { method: 'POST', headers: { origin } }), 403, 'Requests with an Origin header may not request an API token');
    }
    expect(await count()).toBe(n);
  });

  it('types Hi!<Enter> with the four keystrokes of the seed: the agent gets each key with its modifier byte', async () => {
    const before = agentA.calls.length;
    for (const body of [{ code: 'KeyH', shiftLeft: true }, { code: 'KeyI' }, { code: 'Digit1', shiftRight: true }, { code: 'Enter' }]) {
      const res = await keystroke(base, token, body);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
    }
    expect(callsSince(agentA, before)).toEqual([
      { method: 'hid_keystroke', params: { code: 'KeyH', modifiers: 0x02 } },
      { method: 'hid_keystroke', params: { code: 'KeyI', modifiers: 0x00 } },
      { method: 'hid_keystroke', params: { code: 'Digit1', modifiers: 0x20 } },
      { method: 'hid_keystroke', params: { code: 'Enter', modifiers: 0x00 } },
    ]);
  });

  it("sends Ctrl+Alt+Del as the seed's example does (left Ctrl, right Alt); every flag has its bit", async () => {
    const before = agentA.calls.length;
    expect((await keystroke(base, token, { code: 'Delete', ctrlLeft: true, altRight: true })).status).toBe(200);
    const all = { ctrlLeft: true, ctrlRight: true, shiftLeft: true, shiftRight: true, altLeft: true, altRight: true, metaLeft: true, metaRight: true };
    expect((await keystroke(base, token, { code: 'KeyQ', ...all })).status).toBe(200);
    expect((await keystroke(base, token, { code: 'KeyW', metaLeft: true, ctrlRight: true, shiftLeft: false })).status).toBe(200);
    // TinyPilot ignores fields it does not know (its own page sends `key` too).
    expect((await keystroke(base, token, { code: 'KeyE', key: 'e', altLeft: false })).status).toBe(200);
    expect(callsSince(agentA, before).map((c) => c.params)).toEqual([
      { code: 'Delete', modifiers: 0x41 },
      { code: 'KeyQ', modifiers: 0xff },
      { code: 'KeyW', modifiers: 0x18 },
      { code: 'KeyE', modifiers: 0 },
    ]);
  });

  it("moves the mouse to the seed's four corners and clicks left and right in the middle", async () => {
    const before = agentA.calls.length;
    const event = (buttons: number, relativeX: number, relativeY: number) => ({ buttons, relativeX, relativeY, verticalWheelDelta: 0, horizontalWheelDelta: 0 });
    for (const body of [event(0, 0.0, 0.0), event(0, 1.0, 0.0), event(0, 1.0, 1.0), event(0, 0.0, 1.0), event(1, 0.5, 0.5), event(2, 0.5, 0.5)]) {
      const res = await mouseEvent(base, token, body);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
    }
    const at = (buttons: number, x: number, y: number) => ({ method: 'hid_mouse', params: { buttons, x, y, wheel: 0, hwheel: 0 } });
    expect(callsSince(agentA, before)).toEqual([at(0, 0, 0), at(0, 1, 0), at(0, 1, 1), at(0, 0, 1), at(1, 0.5, 0.5), at(2, 0.5, 0.5)]);
  });

  it("turns TinyPilot's wheel deltas into HID's (JavaScript's -1 scrolls up: HID's +1), the horizontal one as it is", async () => {
    const before = agentA.calls.length;
    const wheel = (v: number, h: number) => mouseEvent(base, token, { buttons: 0, relativeX: 0.25, relativeY: 0.75, verticalWheelDelta: v, horizontalWheelDelta: h });
    for (const [v, h] of [[-1, 0], [1, 0], [0, -1], [0, 1]] as const) expect((await wheel(v, h)).status).toBe(200);
    expect(callsSince(agentA, before).map((c) => [c.params.wheel, c.params.hwheel])).toEqual([[1, 0], [-1, 0], [0, -1], [0, 1]]);
  });

  it("answers TinyPilot's 400s, with its parsers' messages, and sends the agent nothing", async () => {
    const before = agentA.calls.length;
    const bad: [string, Parameters<typeof tp>[2], string][] = [
      ['/keystroke', { body: JSON.stringify({ code: 'KeyA' }), headers: { 'content-type': 'text/plain' } }, 'Content-Type must be application/json'],
      ['/keystroke', { body: JSON.stringify({ code: 'KeyA' }) }, 'Content-Type must be application/json'],
      ['/keystroke', { body: '{"code": "KeyA"', headers: { 'content-type': 'application/json' } }, 'Failed to decode JSON object'],
      ['/keystroke', { json: ['KeyA'] }, 'Keystroke parameter is invalid, expecting a dictionary data type'],
      ['/keystroke', { json: { shiftLeft: true } }, 'Keystroke request is missing required field: code'],
      ['/keystroke', { json: { code: 65 } }, 'Key code must be a string: 65'],
      ['/keystroke', { json: { code: 'K'.repeat(31) } }, `Key code is too long: ${'K'.repeat(31)}`],
      ['/keystroke', { json: { code: 'KeyÄ' } }, 'Unrecognized key code: KeyÄ'],
      ['/keystroke', { json: { code: 'KeyA', shiftLeft: 'true' } }, 'Modifier keys must be boolean values: true'],
      ['/keystroke', { json: { code: 'KeyA', ctrlRight: 1 } }, 'Modifier keys must be boolean values: 1'],
      ['/keystroke', { json: { code: 'KeyA', metaLeft: null } }, 'Modifier keys must be boolean values: null'],
      ['/mouseEvent', { json: 5 }, 'Message is invalid, expecting a JSON dictionary'],
      ['/mouseEvent', { json: { buttons: 0, relativeX: 0, relativeY: 0, verticalWheelDelta: 0 } }, 'Missing required field: horizontalWheelDelta'],
      ['/mouseEvent', { json: { buttons: 32, relativeX: 0, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 } }, 'Button state must be <= 0x1f: 32'],
      ['/mouseEvent', { json: { buttons: 1.5, relativeX: 0, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 } }, 'Button state must be an integer value: 1.5'],
      ['/mouseEvent', { json: { buttons: true, relativeX: 0, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 } }, 'Button state must be an integer value: true'],
      ['/mouseEvent', { json: { buttons: 0, relativeX: 1.5, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 } }, 'Relative position must be a float between 0.0 and 1.0: 1.5'],
      ['/mouseEvent', { json: { buttons: 0, relativeX: 0, relativeY: '0.5', verticalWheelDelta: 0, horizontalWheelDelta: 0 } }, 'Relative position must be a float between 0.0 and 1.0: 0.5'],
      ['/mouseEvent', { json: { buttons: 0, relativeX: 0, relativeY: -0.1, verticalWheelDelta: 0, horizontalWheelDelta: 0 } }, 'Relative position must be a float between 0.0 and 1.0: -0.1'],
      ['/mouseEvent', { json: { buttons: 0, relativeX: 0, relativeY: 0, verticalWheelDelta: 2, horizontalWheelDelta: 0 } }, 'Wheel value must be -1, 0, or 1: 2'],
      ['/mouseEvent', { json: { buttons: 0, relativeX: 0, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0.5 } }, 'Wheel value must be a int: 0.5'],
      ['/mouseEvent', { body: 'buttons=0', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'Content-Type must be application/json'],
      ['/keystroke', { json: { code: 'KeyA', pad: 'x'.repeat(17 * 1024) } }, 'Request body is larger than 16384 bytes'],
    ];
    for (const [path, opts, message] of bad) {
      const res = await tp(base, path, { token, ...opts });
      await expectText(res, 400, message);
    }
    expect(callsSince(agentA, before)).toEqual([]);
  });

  it('answers 500 with the seed\'s text when the agent cannot write a gadget, for the keyboard and the mouse', async () => {
    const move = { buttons: 0, relativeX: 0.5, relativeY: 0.5, verticalWheelDelta: 0, horizontalWheelDelta: 0 };
    try {
      for (const code of ['HID_MISSING', 'HID_UNPLUGGED', 'HID_TIMEOUT']) {
        agentA.state.failWith = { code, message: `${code}: /dev/hidg0` };
        await expectText(await keystroke(base, token, { code: 'KeyA' }), 500, 'Failed to forward keystroke: could not access /dev/hidg0 (is cable connected?)');
        await expectText(await mouseEvent(base, token, move), 500, 'Failed to forward mouse event: could not access /dev/hidg1 (is cable connected?)');
      }
    } finally {
      agentA.state.failWith = null;
    }
    expect((await keystroke(base, token, { code: 'KeyA' })).status).toBe(200);
  });

  it('says the device is offline, in the same 500, when its agent is not connected', async () => {
    const c = await enrollDevice(admin.key, { autoApprove: true });
    const offline = (await createKey(c.deviceId)).base_url;
    const t = await tokenOf(offline);
    await expectText(await keystroke(offline, t, { code: 'KeyA' }), 500, 'Failed to forward keystroke: the device is offline');
    await expectText(
      await mouseEvent(offline, t, { buttons: 0, relativeX: 0, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 }),
      500,
      'Failed to forward mouse event: the device is offline',
    );
  });
});

describe('what is not this key\'s token is refused', () => {
  let keyA: CreatedKey;
  let tokenA: string;
  beforeAll(async () => {
    keyA = await createKey(deviceA);
    tokenA = await tokenOf(keyA.base_url);
  });

  it('401 Not authorized without a token, with a made-up one, or with one of another form', async () => {
    const before = agentA.calls.length;
    for (const authorization of [undefined, 'Bearer 4e77f593-a8e0-4262-8a32-911110087060', `Basic ${btoa(`${tokenA}:`)}`, tokenA, `Bearer ${tokenA} extra`]) {
      const headers: Record<string, string> = authorization ? { authorization } : {};
      const res = await tp(keyA.base_url, '/keystroke', { json: { code: 'KeyA' }, headers });
      await expectText(res, 401, 'Not authorized');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      await expectText(await tp(keyA.base_url, '/screenshot', { headers }), 401, 'Not authorized');
    }
    expect(callsSince(agentA, before)).toEqual([]);
  });

  it('401 for an expired token', async () => {
    const t = await tokenOf(keyA.base_url);
    await env.DB.prepare('UPDATE tinypilot_tokens SET expires_at = ?2 WHERE token_hash = ?1').bind(await sha256Hex(t), Date.now() - 1).run();
    await expectText(await keystroke(keyA.base_url, t, { code: 'KeyA' }), 401, 'Not authorized');
    expect((await keystroke(keyA.base_url, tokenA, { code: 'KeyA' })).status).toBe(200);
  });

  it("a token works only under its own key's base URL, and a key only on its own device", async () => {
    const otherKeySameDevice = await createKey(deviceA);
    await expectText(await keystroke(otherKeySameDevice.base_url, tokenA, { code: 'KeyA' }), 401, 'Not authorized');
    const keyB = await createKey(deviceB);
    const tokenB = await tokenOf(keyB.base_url);
    await expectText(await keystroke(keyB.base_url, tokenA, { code: 'KeyA' }), 401, 'Not authorized');
    const [a, b] = [agentA.calls.length, agentB.calls.length];
    expect((await keystroke(keyB.base_url, tokenB, { code: 'KeyB' })).status).toBe(200);
    expect((await keystroke(keyA.base_url, tokenA, { code: 'KeyA' })).status).toBe(200);
    expect(callsSince(agentB, b)).toEqual([{ method: 'hid_keystroke', params: { code: 'KeyB', modifiers: 0 } }]);
    expect(callsSince(agentA, a)).toEqual([{ method: 'hid_keystroke', params: { code: 'KeyA', modifiers: 0 } }]);
  });

  it("an API key or a session is no TinyPilot token, and a TinyPilot key or token is no credential of the relay's API", async () => {
    const person = await userWithPassword(['admin']);
    const session = ((await (await login(person.username, person.password)).json()) as { token: string }).token;
    for (const credential of [admin.key, session]) {
      await expectText(await keystroke(keyA.base_url, credential, { code: 'KeyA' }), 401, 'Not authorized');
      // …nor does one in the path make a base URL.
      await expectText(await tp(`${BASE}/tinypilot/${credential}/api/v1`, '/auth', { method: 'POST' }), 404, 'Not Found');
    }
    for (const credential of [keyA.key, tokenA]) {
      expect((await api('/api/v1/devices', { key: credential })).status).toBe(401);
      expect((await api(`/api/v1/devices/${deviceA}/tinypilot-keys`, { key: credential })).status).toBe(401);
      expect((await SELF.fetch(`${BASE}/devices`, { headers: { authorization: `Basic ${btoa(`${credential}:`)}` } })).status).toBe(401);
    }
  });

  it('an unknown key, a malformed one, and any other path or method under a real one: the same 404, for any caller', async () => {
    const unknown = `${BASE}/tinypilot/ptp_${'A'.repeat(43)}/api/v1`;
    for (const [url, path, method] of [
      [unknown, '/auth', 'POST'],
      [unknown, '/keystroke', 'POST'],
      [unknown, '/screenshot', 'GET'],
      [`${BASE}/tinypilot/not-a-key/api/v1`, '/auth', 'POST'],
      [keyA.base_url, '/auth', 'GET'],
      [keyA.base_url, '/keystroke', 'GET'],
      [keyA.base_url, '/screenshot', 'POST'],
      [keyA.base_url, '/paste', 'POST'],
      [keyA.base_url.replace('/api/v1', '/api/v2'), '/auth', 'POST'],
      [`${BASE}/tinypilot`, '/', 'GET'],
    ] as const) {
      await expectText(await tp(url, path, { method, token: tokenA }), 404, 'Not Found');
    }
    // With the real key, and an OPTIONS preflight: no CORS, so no page elsewhere may call it.
    const preflight = await tp(keyA.base_url, '/keystroke', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(404);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it(`stops an address after ${GUESSES_PER_MINUTE} wrong keys or tokens a minute (429), even for a real key; others go on`, async () => {
    const ip = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    for (let i = 0; i < GUESSES_PER_MINUTE; i++) {
      const res = await tp(`${BASE}/tinypilot/ptp_${randomId(16).padEnd(43, 'x')}/api/v1`, '/auth', { method: 'POST', ip });
      expect(res.status).toBe(404);
    }
    const blocked = await tp(keyA.base_url, '/auth', { method: 'POST', ip });
    await expectText(blocked, 429, 'Too many requests');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await tp(keyA.base_url, '/auth', { method: 'POST' })).status).toBe(200);
  });
});

describe('the parsers and answers, alone', () => {
  it('parseKeystroke and parseMouseEvent agree with the routes on the edges', () => {
    expect(parseKeystroke({ code: 'ShiftLeft', shiftLeft: true })).toEqual({ code: 'ShiftLeft', modifiers: 0x02 });
    expect(parseMouseEvent({ buttons: 31, relativeX: 1, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: -1 })).toEqual({ buttons: 31, x: 1, y: 0, wheel: 0, hwheel: -1 });
    expect(() => parseMouseEvent({ buttons: -1, relativeX: 0, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 })).toThrow('Button state must be <= 0x1f: -1');
    expect(() => parseMouseEvent({ buttons: 0, relativeX: Number.NaN, relativeY: 0, verticalWheelDelta: 0, horizontalWheelDelta: 0 })).toThrow(/Relative position/);
  });

  it('forwardFailure words each cause', async () => {
    const say = async (e: unknown) => (await forwardFailure('keystroke', e).text());
    expect(await say(new ApiError(502, 'HID_ERROR', 'EIO'))).toBe('Failed to forward keystroke: could not access /dev/hidg0 (is cable connected?)');
    expect(await say(new ApiError(504, 'DEVICE_TIMEOUT', 'late'))).toBe('Failed to forward keystroke: the device did not answer in time');
    expect(await say(new ApiError(409, 'DEVICE_NOT_APPROVED', 'Device is revoked, not approved'))).toBe('Failed to forward keystroke: Device is revoked, not approved');
  });

  it('screenshotAnswer: the JPEG with its length, 204 empty, and a 500 saying why for an error', async () => {
    const ok = await screenshotAnswer(new Response(FAKE_JPEG, { headers: { 'content-type': 'image/jpeg' } }));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/jpeg');
    expect(ok.headers.get('content-length')).toBe(String(FAKE_JPEG.byteLength));
    expect(new Uint8Array(await ok.arrayBuffer())).toEqual(FAKE_JPEG);
    const none = await screenshotAnswer(new Response(null, { status: 204 }));
    expect(none.status).toBe(204);
    expect(await none.text()).toBe('');
    const offline = await screenshotAnswer(Response.json({ error: 'Device is offline', code: 'DEVICE_OFFLINE', details: {} }, { status: 503 }));
    await expectText(offline, 500, 'Failed to capture screenshot: Device is offline');
    await expectText(await screenshotAnswer(new Response('<html>', { status: 502 })), 500, 'Failed to capture screenshot: the device answered 502');
  });

  it('GET /screenshot checks the key and the token before the device is asked', async () => {
    const k = await createKey(deviceA);
    await expectText(await tp(k.base_url, '/screenshot'), 401, 'Not authorized');
    await expectText(await tp(`${BASE}/tinypilot/ptp_${'B'.repeat(43)}/api/v1`, '/screenshot'), 404, 'Not Found');
    expect(agentA.screenOpens).toEqual([]);
  });
});

describe('GET /screenshot through the hub', () => {
  let base: string;
  let token: string;
  beforeAll(async () => {
    base = (await createKey(deviceA)).base_url;
    token = await tokenOf(base);
  });

  it("answers the seed's example: 200 image/jpeg with Content-Length, the agent's bytes, asked as a JPEG snapshot", async () => {
    agentA.state.screen = { status: 200, type: 'image/jpeg', body: FAKE_JPEG };
    const res = await tp(base, '/screenshot', { token });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-length')).toBe(String(FAKE_JPEG.byteLength));
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(FAKE_JPEG);
    await waitFor(() => agentA.screenOpens.length > 0, 'the screen OPEN');
    expect(agentA.screenOpens.at(-1)).toMatchObject({ kind: 'screen', mode: 'snapshot', format: 'jpeg', quality: 80 });
  });

  it('answers 204 with an empty body when there is no video signal', async () => {
    agentA.state.screen = { status: 204 };
    try {
      const res = await tp(base, '/screenshot', { token });
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
    } finally {
      agentA.state.screen = { status: 200, type: 'image/jpeg', body: FAKE_JPEG };
    }
  });

  it('answers 500 in plain text when the device has no screen', async () => {
    agentA.state.screen = { status: 503 };
    try {
      await expectText(await tp(base, '/screenshot', { token }), 500, 'Failed to capture screenshot: there is no screen');
    } finally {
      agentA.state.screen = { status: 200, type: 'image/jpeg', body: FAKE_JPEG };
    }
  });

  it('marks the key used (at most once a minute, after the answer)', async () => {
    const keyHash = await sha256Hex(base.split('/')[4]!);
    await env.DB.prepare('UPDATE tinypilot_keys SET last_used_at = NULL WHERE key_hash = ?1').bind(keyHash).run();
    expect((await tp(base, '/screenshot', { token })).status).toBe(200);
    const lastUsed = async () => (await env.DB.prepare('SELECT last_used_at FROM tinypilot_keys WHERE key_hash = ?1').bind(keyHash).first<{ last_used_at: number | null }>())?.last_used_at ?? null;
    await eventually(async () => (await lastUsed()) !== null, 'last_used_at');
  });
});
