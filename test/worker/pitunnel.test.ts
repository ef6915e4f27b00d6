// PiTunnel compatibility at the relay root: `curl -u KEY:` auth, the documented /devices shape,
// and device_id as a form field, query parameter or JSON body for /device_info and /process_list.
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { BASE, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';

let viewer: string;
let noDevices: string;
beforeAll(async () => {
  viewer = (await userWithKey(['viewer'])).key;
  noDevices = (await userWithKey([])).key;
});

const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

function call(path: string, opts: { key?: string; method?: string; form?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = basic(opts.key);
  let body: string | undefined = opts.body;
  if (opts.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = opts.form;
  }
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  return SELF.fetch(`${BASE}${path}`, { method: opts.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
}

describe('/devices', () => {
  it('lists approved devices exactly in the documented shape, with -u KEY: auth', async () => {
    const on = await insertDevice({ status: 'approved', online: true, name: 'TestPi', hostname: 'ubuntu' });
    const pending = await insertDevice({ status: 'pending' });
    const revoked = await insertDevice({ status: 'revoked' });
    const res = await call('/devices', { key: viewer });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { devices: Record<string, unknown>[] };
    expect(Object.keys(body)).toEqual(['devices']);
    const dev = body.devices.find((d) => d.id === on)!;
    expect(dev).toEqual({
      id: on,
      hostname: 'ubuntu',
      serial: 'SER1',
      display_name: 'TestPi',
      os: 'Linux',
      os_version: 'Ubuntu 18.04 bionic',
      hardware: 'Pi3 Model B',
      online: true,
    });
    const ids = body.devices.map((d) => d.id);
    expect(ids).not.toContain(pending);
    expect(ids).not.toContain(revoked);
    expect(body.devices.every((d) => typeof d.online === 'boolean')).toBe(true);
  });

  it('answers POST and Bearer the same way, and 401/403 without a usable key', async () => {
    const id = await insertDevice({ status: 'approved' });
    const post = await call('/devices', { key: viewer, method: 'POST' });
    expect(post.status).toBe(200);
    const listed = ((await post.json()) as { devices: { id: string; online: boolean }[] }).devices.find((d) => d.id === id)!;
    expect(listed.online).toBe(false);
    const bearer = await SELF.fetch(`${BASE}/devices`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(bearer.status).toBe(200);

    const none = await call('/devices');
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'UNAUTHORIZED', error: expect.any(String), details: {} });
    expect((await call('/devices', { key: 'prk_wrong' })).status).toBe(401);
    expect((await call('/devices', { headers: { authorization: `Basic ${btoa(`:${viewer}`)}` } })).status).toBe(401);
    expect((await call('/devices', { key: noDevices })).status).toBe(403);
  });
});

describe('/device_info and /process_list', () => {
  it('finds device_id in a form body, the query string or JSON; offline is 503 DEVICE_OFFLINE', async () => {
    const id = await insertDevice({ status: 'approved' });
    const ways = [
      (p: string) => call(p, { key: viewer, form: `device_id=${id}` }),
      (p: string) => call(`${p}?device_id=${id}`, { key: viewer }),
      (p: string) => call(`${p}?device_id=${id}`, { key: viewer, method: 'POST' }),
      (p: string) => call(p, { key: viewer, json: { device_id: id } }),
      (p: string) => call(p, { key: viewer, body: `device_id=${id}` }),
    ];
    for (const path of ['/device_info', '/process_list']) {
      for (const [i, way] of ways.entries()) {
        const res = await way(path);
        expect(res.status, `${path} way ${i}`).toBe(503);
        expect(await res.json()).toMatchObject({ code: 'DEVICE_OFFLINE', error: expect.any(String), details: { device_id: id } });
      }
    }
  });

  it('also reads a multipart form (curl -F)', async () => {
    const id = await insertDevice({ status: 'approved' });
    const form = new FormData();
    form.set('device_id', id);
    const res = await SELF.fetch(`${BASE}/device_info`, { method: 'POST', headers: { authorization: basic(viewer) }, body: form });
    expect(res.status).toBe(503);
  });

  it('400 for a missing or malformed device_id, 404 unknown, 409 not approved, 401 without a key', async () => {
    const pending = await insertDevice({ status: 'pending' });
    for (const path of ['/device_info', '/process_list']) {
      const missing = await call(path, { key: viewer, form: 'other=1' });
      expect(missing.status).toBe(400);
      expect(await missing.json()).toMatchObject({ code: 'VALIDATION_ERROR', error: expect.stringContaining('device_id'), details: expect.any(Object) });
      expect((await call(path, { key: viewer })).status).toBe(400);
      expect((await call(path, { key: viewer, form: 'device_id=' })).status).toBe(400);
      expect((await call(path, { key: viewer, form: 'device_id=bad id!' })).status).toBe(400);
      expect((await call(path, { key: viewer, json: { device_id: 42 } })).status).toBe(400);
      expect((await call(path, { key: viewer, body: '{nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);

      const unknown = await call(path, { key: viewer, form: `device_id=${'0'.repeat(40)}` });
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ code: 'NOT_FOUND' });

      const notApproved = await call(path, { key: viewer, form: `device_id=${pending}` });
      expect(notApproved.status).toBe(409);
      expect(await notApproved.json()).toMatchObject({ code: 'DEVICE_NOT_APPROVED' });

      const noKey = await call(path, { form: `device_id=${pending}` });
      expect(noKey.status).toBe(401);
      expect((await call(path, { key: noDevices, form: `device_id=${pending}` })).status).toBe(403);
    }
  });

  it('refuses oversized bodies with 413 instead of reading them', async () => {
    const res = await call('/device_info', { key: viewer, form: `device_id=${'a'.repeat(40)}&pad=${'x'.repeat(20_000)}` });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('keeps the compat routes out of openapi.json', async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(doc.paths).not.toHaveProperty('/devices');
    expect(doc.paths).not.toHaveProperty('/device_info');
  });
});
