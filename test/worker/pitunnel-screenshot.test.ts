// PiTunnel's /screenshot (pitunnel-api.txt): `curl -u KEY: -d device_id=… > out.png` answers the
// device's screen with its Content-Type, GET or POST like PiTunnel's other calls, 204 without a
// video signal, and needs screen:read in the device's team: the refusals, the answer's shaping,
// and the calls that reach a fake agent's screen through the hub.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { BASE, joinTeam, userWithKey } from './helpers.ts';
import { enrollDevice, insertDevice } from './device-helpers.ts';
import { FAKE_JPEG, FAKE_PNG, fakeKvmAgent } from './tinypilot-helpers.ts';
import { pitunnelScreenshot } from '../../worker/compat/pitunnel.ts';

const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

function call(key: string | null, opts: { method?: string; form?: string; query?: string } = {}) {
  const headers: Record<string, string> = key ? { authorization: basic(key) } : {};
  if (opts.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  return SELF.fetch(`${BASE}/screenshot${opts.query ? `?${opts.query}` : ''}`, { method: opts.method ?? (opts.form !== undefined ? 'POST' : 'GET'), headers, body: opts.form });
}

let admin: { userId: string; key: string };
let deviceId: string;
let agent: Awaited<ReturnType<typeof fakeKvmAgent>>;

beforeAll(async () => {
  admin = await userWithKey(['admin']);
  const dev = await enrollDevice(admin.key, { autoApprove: true });
  deviceId = dev.deviceId;
  agent = await fakeKvmAgent(deviceId, dev.privateKey);
});

describe('PiTunnel /screenshot: who may ask', () => {
  it('401 without a key, 403 without screen:read (a viewer), 404 for a device of another team or none', async () => {
    expect((await call(null, { form: `device_id=${deviceId}` })).status).toBe(401);
    const viewer = await userWithKey(['viewer']);
    const refused = await call(viewer.key, { form: `device_id=${deviceId}` });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { details: { required: string[] } }).details.required).toEqual(['screen:read']);

    await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES ('shot-other', 'Other', 0, 0, 0)").run();
    const outsider = await userWithKey(['admin-less'], undefined, null);
    await env.DB.prepare("INSERT OR IGNORE INTO roles (id, name, description, permissions, is_system) VALUES ('admin-less', 'screen', '', '[\"screen:read\",\"devices:read\"]', 0)").run();
    await joinTeam(outsider.userId, ['admin-less'], 'shot-other', 'owner');
    for (const id of [deviceId, 'f'.repeat(40)]) {
      const res = await call(outsider.key, { form: `device_id=${id}` });
      expect(res.status, id).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('NOT_FOUND');
    }
    expect(agent.screenOpens).toEqual([]);
  });

  it('400 without a device_id, or with a malformed one', async () => {
    for (const form of ['', 'device_id=', 'device_id=../../x']) {
      const res = await call(admin.key, { form });
      expect(res.status, form).toBe(400);
    }
  });
});

describe("PiTunnel /screenshot: the device's answer as PiTunnel's", () => {
  it('passes the image through with its own Content-Type and a Content-Length', async () => {
    for (const [type, bytes] of [['image/png', FAKE_PNG], ['image/jpeg', FAKE_JPEG]] as const) {
      const res = await pitunnelScreenshot(env, deviceId, new Response(bytes, { headers: { 'content-type': type } }));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('content-length')).toBe(String(bytes.byteLength));
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    }
  });

  it('204 and no body without a video signal', async () => {
    const res = await pitunnelScreenshot(env, deviceId, new Response(null, { status: 204 }));
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
  });

  it("the device's error in our shape; offline says why for a device that is not approved", async () => {
    const err = (status: number, code: string, error: string) => new Response(JSON.stringify({ error, code, details: {} }), { status, headers: { 'content-type': 'application/json' } });
    await expect(pitunnelScreenshot(env, deviceId, err(503, 'NO_SCREEN', 'there is no screen'))).rejects.toMatchObject({ status: 503, code: 'NO_SCREEN', message: 'there is no screen' });
    await expect(pitunnelScreenshot(env, deviceId, err(503, 'DEVICE_OFFLINE', 'Device is offline'))).rejects.toMatchObject({ status: 503, code: 'DEVICE_OFFLINE' });
    const pending = await insertDevice({ status: 'pending' });
    await expect(pitunnelScreenshot(env, pending, err(503, 'DEVICE_OFFLINE', 'Device is offline'))).rejects.toMatchObject({ status: 409, code: 'DEVICE_NOT_APPROVED' });
    await expect(pitunnelScreenshot(env, deviceId, new Response('<html>', { status: 502 }))).rejects.toMatchObject({ status: 502, code: 'BAD_DEVICE_RESPONSE' });
  });
});

describe('PiTunnel /screenshot through the hub', () => {
  it("answers the seed's curl (-d device_id=…) with the device's PNG, asked as a PNG snapshot; GET ?device_id= too", async () => {
    agent.state.screen = { status: 200, type: 'image/png', body: FAKE_PNG };
    for (const opts of [{ form: `device_id=${deviceId}` }, { query: `device_id=${deviceId}` }]) {
      const res = await call(admin.key, opts);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-length')).toBe(String(FAKE_PNG.byteLength));
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(FAKE_PNG);
    }
    expect(agent.screenOpens.at(-1)).toMatchObject({ kind: 'screen', mode: 'snapshot', format: 'png' });
  });

  it("keeps the device's Content-Type when it sends a JPEG", async () => {
    agent.state.screen = { status: 200, type: 'image/jpeg', body: FAKE_JPEG };
    const res = await call(admin.key, { form: `device_id=${deviceId}` });
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(FAKE_JPEG);
  });

  it('204 without a signal; 503 NO_SCREEN without a screen; an operator (screen:read since migration 0005) may ask', async () => {
    agent.state.screen = { status: 204 };
    const none = await call(admin.key, { form: `device_id=${deviceId}` });
    expect(none.status).toBe(204);
    expect(await none.text()).toBe('');
    agent.state.screen = { status: 503 };
    const noScreen = await call(admin.key, { form: `device_id=${deviceId}` });
    expect(noScreen.status).toBe(503);
    expect(((await noScreen.json()) as { code: string }).code).toBe('NO_SCREEN');
    agent.state.screen = { status: 200, type: 'image/png', body: FAKE_PNG };
    const operator = await userWithKey(['operator']);
    expect((await call(operator.key, { form: `device_id=${deviceId}` })).status).toBe(200);
  });
});
