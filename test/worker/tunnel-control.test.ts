// The tunnel-control API at /tunnel-api/<call>: every call, every error code the seed lists (0,
// 11, 12, 21, 22, 23, 24, 31), the exact bodies the seed shows, and where the API key may come from.
import { env, SELF } from 'cloudflare:test';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hubTunnels } from '../../worker/tunnels/notify.ts';
import { CALLS_PER_MINUTE } from '../../worker/compat/tunnel-control.ts';
import { BASE, userWithKey } from './helpers.ts';
import { connectAgent, enrollDevice, insertDevice } from './device-helpers.ts';
import { makeTunnel, tunnelName, visit, type TunnelView } from './tunnels-helpers.ts';

let admin: string;
let operator: string;
let viewer: string;
let device: string;
let tunnel: TunnelView;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  device = await insertDevice({ status: 'approved' });
  tunnel = await makeTunnel(operator, device, { name: tunnelName('ctl') });
});
afterEach(() => {
  vi.restoreAllMocks();
});

interface Answer {
  message: string;
  error_code: number;
  success: boolean;
  allow_clientless?: boolean;
}

/** GET /tunnel-api/<call>?params, the key as api_key unless given as a header. */
async function call(name: string, params: Record<string, string> = {}, opts: { key?: string | null; method?: string; headers?: Record<string, string> } = {}) {
  const q = new URLSearchParams(params);
  if (opts.key !== null) q.set('api_key', opts.key ?? operator);
  const res = await SELF.fetch(`${BASE}/tunnel-api/${name}?${q}`, { method: opts.method ?? 'GET', headers: opts.headers });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Answer, headers: res.headers };
}

const connected = async (id: string) => (await env.DB.prepare('SELECT connected FROM tunnels WHERE id = ?1').bind(id).first<{ connected: number }>())!.connected;
const allowClientless = async (id: string) =>
  (await env.DB.prepare('SELECT allow_clientless FROM tunnels WHERE id = ?1').bind(id).first<{ allow_clientless: number }>())!.allow_clientless;

describe('answers and codes', () => {
  it('21 for an unknown call, with or without a key', async () => {
    for (const path of ['/tunnel-api/open_sesame', '/tunnel-api', '/tunnel-api/']) {
      const res = await SELF.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(200);
      const body = (await res.json()) as Answer;
      expect(Object.keys(body)).toEqual(['message', 'error_code', 'success']);
      expect(body).toMatchObject({ error_code: 21, success: false });
    }
  });

  it('401 without or with a bad API key, 403 without the permission; both keep the shape', async () => {
    const none = await call('client_status', { device_id: device }, { key: null });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error_code: 31, success: false });
    expect(Object.keys(none.body)).toEqual(['message', 'error_code', 'success']);
    expect((await call('client_status', { device_id: device }, { key: 'prk_nope' })).status).toBe(401);
    const forbidden = await call('connect', { device_id: device, tunnel: tunnel.name }, { key: viewer });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ error_code: 31, success: false });
    expect(forbidden.body.message).toContain('tunnels:write');
    const nobody = (await userWithKey([])).key;
    expect((await call('client_status', { device_id: device }, { key: nobody })).status).toBe(403);
    // Viewers may ask for the status.
    expect((await call('client_status', { device_id: device }, { key: viewer })).status).toBe(200);
  });

  it('takes the key as api_key (query, form or JSON) or an Authorization header, over GET or POST', async () => {
    const expected = '{"message":"offline","error_code":24,"success":true}';
    const ways: (() => Promise<Response>)[] = [
      () => SELF.fetch(`${BASE}/tunnel-api/client_status?device_id=${device}&api_key=${viewer}`),
      () => SELF.fetch(`${BASE}/tunnel-api/client_status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `device_id=${device}&api_key=${viewer}` }),
      () => SELF.fetch(`${BASE}/tunnel-api/client_status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: device, api_key: viewer }) }),
      () => SELF.fetch(`${BASE}/tunnel-api/client_status?device_id=${device}`, { headers: { authorization: `Bearer ${viewer}` } }),
      () => SELF.fetch(`${BASE}/tunnel-api/client_status`, { method: 'POST', headers: { authorization: `Basic ${btoa(`${viewer}:`)}` }, body: `device_id=${device}` }),
    ];
    for (const [i, way] of ways.entries()) {
      const res = await way();
      expect(res.status, `way ${i}`).toBe(200);
      expect(await res.text(), `way ${i}`).toBe(expected);
    }
  });

  it('31 for missing or malformed parameters and unknown devices or tunnels', async () => {
    const cases: [string, Record<string, string>][] = [
      ['client_status', {}],
      ['client_status', { device_id: 'bad id!' }],
      ['client_status', { device_id: '0'.repeat(40) }],
      ['client_status', { device_id: device, tunnel: 'no-such-tunnel' }],
      ['connect', { device_id: device }],
      ['connect', { device_id: device, tunnel: 'no-such-tunnel' }],
      ['connect', { device_id: device, tunnel: 'Not A Name' }],
      ['disconnect', { device_id: device }],
      ['set_allow_clientless', { device_id: device, tunnel: tunnel.name }],
      ['set_allow_clientless', { device_id: device, tunnel: tunnel.name, allow: 'maybe' }],
      ['set_allow_clientless', { device_id: device, tunnel: tunnel.name, allow: '1' }],
    ];
    for (const [name, params] of cases) {
      const r = await call(name, params);
      expect(r.status, `${name} ${JSON.stringify(params)}`).toBe(200);
      expect(r.body, `${name} ${JSON.stringify(params)}`).toMatchObject({ error_code: 31, success: false });
    }
    // A tunnel of another device is unknown here.
    const other = await insertDevice({ status: 'approved' });
    expect((await call('connect', { device_id: other, tunnel: tunnel.name })).body.error_code).toBe(31);
    const badJson = await SELF.fetch(`${BASE}/tunnel-api/client_status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(((await badJson.json()) as Answer).error_code).toBe(31);
  });

  it('23 for a device that is pending, rejected or revoked', async () => {
    for (const status of ['pending', 'rejected', 'revoked']) {
      const id = await insertDevice({ status });
      for (const name of ['client_status', 'connect', 'disconnect']) {
        const r = await call(name, { device_id: id, tunnel: 'x' });
        expect(r.body, `${status} ${name}`).toMatchObject({ error_code: 23, success: false });
      }
    }
  });

  it(`22 after ${CALLS_PER_MINUTE} calls a minute with one key`, async () => {
    const key = (await userWithKey(['viewer'])).key;
    for (let i = 0; i < CALLS_PER_MINUTE; i++) {
      const r = await call('client_status', { device_id: device }, { key });
      expect(r.body.error_code, `call ${i + 1}`).toBe(24);
    }
    const over = await call('client_status', { device_id: device }, { key });
    expect(over.status).toBe(200);
    expect(over.body).toMatchObject({ error_code: 22, success: false });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    // Other keys are counted apart.
    expect((await call('client_status', { device_id: device }, { key: viewer })).body.error_code).toBe(24);
  });
});

describe('client_status', () => {
  it('answers exactly the seed\'s bodies for offline and online', async () => {
    const off = await call('client_status', { device_id: device });
    expect(off.text).toBe('{"message":"offline","error_code":24,"success":true}');

    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    try {
      const on = await call('client_status', { device_id: dev.deviceId });
      expect(on.status).toBe(200);
      expect(on.text).toBe('{"message":"online","error_code":0,"success":true}');
    } finally {
      agent.ws.close(1000, 'done');
    }
  });
});

describe('connect and disconnect', () => {
  it('disconnect closes the tunnel (visitors get 503), connect opens it again; both are idempotent', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('cycle'), allow_clientless: true });
    const params = { device_id: device, tunnel: t.name };
    const down = await call('disconnect', params);
    expect(down.text).toBe('{"message":"OK","error_code":0,"success":true}');
    expect(await connected(t.id)).toBe(0);
    const visited = await visit(t.name);
    expect(visited.status).toBe(503);
    expect(visited.headers.get('x-pirelay-error')).toBe('TUNNEL_CLOSED');
    expect((await call('disconnect', params)).body).toMatchObject({ error_code: 0, success: true });

    // The device is offline, but this tunnel allows clientless connections.
    const up = await call('connect', { device_id: device, tunnel: t.id });
    expect(up.text).toBe('{"message":"OK","error_code":0,"success":true}');
    expect(await connected(t.id)).toBe(1);
    expect((await call('connect', params)).body).toMatchObject({ error_code: 0, success: true });
    const tunnelJson = (await (await SELF.fetch(`${BASE}/api/v1/devices/${device}/tunnels/${t.id}`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as TunnelView;
    expect(tunnelJson.connected).toBe(true);
  });

  it('11 when the tunnel is disabled or the hub cannot be told; the tunnel stays closed', async () => {
    const off = await makeTunnel(operator, device, { name: tunnelName('dis'), enabled: false });
    const r = await call('connect', { device_id: device, tunnel: off.name });
    expect(r.body).toMatchObject({ error_code: 11, success: false });

    const t = await makeTunnel(operator, device, { name: tunnelName('fail'), allow_clientless: true });
    await call('disconnect', { device_id: device, tunnel: t.name });
    const spy = vi.spyOn(hubTunnels, 'changed').mockRejectedValueOnce(new Error('hub unreachable'));
    const failed = await call('connect', { device_id: device, tunnel: t.name });
    expect(failed.body).toMatchObject({ error_code: 11, success: false });
    expect(spy).toHaveBeenCalled();
    expect(await connected(t.id)).toBe(0);
  });

  it('24 when connecting to an offline device whose tunnel does not allow clientless connections', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('strict'), allow_clientless: false });
    await call('disconnect', { device_id: device, tunnel: t.name });
    const r = await call('connect', { device_id: device, tunnel: t.name });
    expect(r.body).toMatchObject({ error_code: 24, success: false });
    expect(await connected(t.id)).toBe(0);

    // Online, the same tunnel connects.
    const dev = await enrollDevice(admin, { autoApprove: true });
    const online = await makeTunnel(operator, dev.deviceId, { name: tunnelName('live'), allow_clientless: false });
    await call('disconnect', { device_id: dev.deviceId, tunnel: online.name });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    try {
      expect((await call('connect', { device_id: dev.deviceId, tunnel: online.name })).body).toMatchObject({ error_code: 0, success: true });
      expect(await connected(online.id)).toBe(1);
    } finally {
      agent.ws.close(1000, 'done');
    }
  });

  it('12 when the hub cannot be told to cut open connections (the tunnel is closed anyway)', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('stuck') });
    const spy = vi.spyOn(hubTunnels, 'changed').mockRejectedValueOnce(new Error('hub unreachable'));
    const r = await call('disconnect', { device_id: device, tunnel: t.name });
    expect(r.body).toMatchObject({ error_code: 12, success: false });
    expect(spy).toHaveBeenCalledWith(expect.anything(), device);
    expect(await connected(t.id)).toBe(0);
    // A retry succeeds.
    expect((await call('disconnect', { device_id: device, tunnel: t.name })).body).toMatchObject({ error_code: 0, success: true });
  });

  it('tells the hub about every change it makes', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('told') });
    const spy = vi.spyOn(hubTunnels, 'changed');
    await call('disconnect', { device_id: device, tunnel: t.name });
    await call('set_allow_clientless', { device_id: device, tunnel: t.name, allow: 'true' });
    expect(spy.mock.calls.map((c) => c[1])).toEqual([device, device]);
  });
});

describe('set_allow_clientless', () => {
  it('sets one tunnel, or all of the device\'s tunnels without a tunnel parameter', async () => {
    const dev = await insertDevice({ status: 'approved' });
    const a = await makeTunnel(operator, dev, { name: tunnelName('a'), allow_clientless: false });
    const b = await makeTunnel(operator, dev, { name: tunnelName('b'), allow_clientless: false });
    const one = await call('set_allow_clientless', { device_id: dev, tunnel: a.name, allow: 'true' });
    expect(one.status).toBe(200);
    expect(one.text).toBe('{"allow_clientless":true,"message":"success","error_code":0,"success":true}');
    expect([await allowClientless(a.id), await allowClientless(b.id)]).toEqual([1, 0]);

    const all = await call('set_allow_clientless', { device_id: dev, allow: 'true' }, { method: 'POST' });
    expect(all.body).toEqual({ allow_clientless: true, message: 'success', error_code: 0, success: true });
    expect([await allowClientless(a.id), await allowClientless(b.id)]).toEqual([1, 1]);

    const off = await call('set_allow_clientless', { device_id: dev, tunnel: b.id, allow: 'false' });
    expect(off.text).toBe('{"allow_clientless":false,"message":"success","error_code":0,"success":true}');
    expect([await allowClientless(a.id), await allowClientless(b.id)]).toEqual([1, 0]);
    expect((await call('set_allow_clientless', { device_id: dev, allow: 'true' }, { key: viewer })).status).toBe(403);
  });
});
