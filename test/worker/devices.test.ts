// The native devices API: list and filters, read, rename, approve/reject/revoke/delete and who
// may do each, and the live endpoints' answers when the device cannot be reached.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, TEST_TEAM, userWithKey } from './helpers.ts';
import { enrollDevice, insertDevice } from './device-helpers.ts';

let admin: string;
let operator: string;
let viewer: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
});

interface DeviceView {
  id: string;
  name: string;
  status: string;
  online: boolean;
  enrolled: boolean;
  last_seen: string | null;
  registered_at: string;
  approved_at: string | null;
  [k: string]: unknown;
}

const DEVICE_KEYS = [
  'id', 'name', 'team_id', 'tags', 'hostname', 'serial', 'hardware', 'os', 'os_version', 'architecture', 'mac_address', 'agent_version',
  'status', 'online', 'enrolled', 'last_seen', 'registered_at', 'approved_at', 'identity_conflict',
].sort();

async function list(query = '', key = viewer): Promise<DeviceView[]> {
  const res = await api(`/api/v1/devices${query}`, { key });
  expect(res.status).toBe(200);
  return ((await res.json()) as { devices: DeviceView[] }).devices;
}

async function device(id: string): Promise<DeviceView> {
  const res = await api(`/api/v1/devices/${id}`, { key: viewer });
  expect(res.status).toBe(200);
  return (await res.json()) as DeviceView;
}

const post = (path: string, key: string) => api(path, { key, method: 'POST' });

describe('reading devices', () => {
  it('lists devices in the native shape, never with the public key', async () => {
    const dev = await enrollDevice(admin, { name: 'Native Shape' });
    const found = (await list()).find((d) => d.id === dev.deviceId)!;
    expect(Object.keys(found).sort()).toEqual(DEVICE_KEYS);
    expect(found).toMatchObject({
      name: 'Native Shape',
      hostname: 'raspberrypi',
      serial: '10000000389253E6',
      hardware: 'Pi4 Model B',
      os: 'Linux',
      os_version: 'debian 11.2',
      architecture: 'aarch64',
      mac_address: 'b8:27:eb:2a:7f:c1',
      agent_version: '0.1.0',
      status: 'pending',
      online: false,
      enrolled: true,
      last_seen: null,
      approved_at: null,
      team_id: TEST_TEAM,
      tags: [],
    });
    expect(new Date(found.registered_at).toISOString()).toBe(found.registered_at);
    expect(JSON.stringify(found)).not.toContain(dev.publicJwk.x);
    expect(await device(dev.deviceId)).toEqual(found);
  });

  it('filters by status and online', async () => {
    const pending = await insertDevice({ status: 'pending' });
    const online = await insertDevice({ status: 'approved', online: true });
    const offline = await insertDevice({ status: 'approved', online: false });
    const ids = (q: string) => list(q).then((ds) => ds.map((d) => d.id));

    const p = await ids('?status=pending');
    expect(p).toContain(pending);
    expect(p).not.toContain(online);
    const on = await ids('?online=true');
    expect(on).toContain(online);
    expect(on).not.toContain(offline);
    const approvedOff = await ids('?status=approved&online=false');
    expect(approvedOff).toContain(offline);
    expect(approvedOff).not.toContain(online);
    expect(approvedOff).not.toContain(pending);
    expect((await list('?online=true')).every((d) => d.online === true)).toBe(true);

    for (const q of ['?status=bogus', '?online=yes', '?online=1']) {
      const res = await api(`/api/v1/devices${q}`, { key: viewer });
      expect(res.status, q).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
  });

  it('answers 404 for an unknown device, 400 for a malformed id and 401 without a key', async () => {
    const unknown = await api('/api/v1/devices/0000000000000000000000000000000000000000', { key: viewer });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'NOT_FOUND', error: expect.any(String), details: expect.any(Object) });
    expect((await api(`/api/v1/devices/${'a'.repeat(65)}`, { key: viewer })).status).toBe(400);
    expect((await api('/api/v1/devices/bad%20id', { key: viewer })).status).toBe(400);
    expect((await api('/api/v1/devices')).status).toBe(401);
    expect((await api('/api/v1/devices', { key: 'prk_not-a-real-key' })).status).toBe(401);
  });
});

describe('renaming', () => {
  it('lets devices:write rename and refuses viewers and bad names', async () => {
    const id = await insertDevice();
    const res = await api(`/api/v1/devices/${id}`, { key: operator, method: 'PATCH', json: { name: '  Garage Pi  ' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as DeviceView).name).toBe('Garage Pi');
    expect((await device(id)).name).toBe('Garage Pi');

    expect((await api(`/api/v1/devices/${id}`, { key: viewer, method: 'PATCH', json: { name: 'Nope' } })).status).toBe(403);
    for (const body of [{ name: '' }, { name: '   ' }, { name: 'x'.repeat(65) }, { name: 'a\nb' }, { name: 5 }, {}, { name: 'ok', extra: 1 }]) {
      const bad = await api(`/api/v1/devices/${id}`, { key: admin, method: 'PATCH', json: body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
    }
    expect((await api(`/api/v1/devices/${'f'.repeat(40)}`, { key: admin, method: 'PATCH', json: { name: 'Ghost' } })).status).toBe(404);
    expect((await device(id)).name).toBe('Garage Pi');
  });
});

describe('approve, reject, revoke, delete', () => {
  it('only devices:admin in the team admin role approves; operators (team members) and viewers get 403', async () => {
    const id = await insertDevice({ status: 'pending' });
    const byViewer = await post(`/api/v1/devices/${id}/approve`, viewer);
    expect(byViewer.status).toBe(403);
    expect(await byViewer.json()).toMatchObject({ code: 'FORBIDDEN', details: { required: ['devices:admin'] } });
    // Operators hold devices:admin since teams came, but a plain member of the team may not use it there.
    const byOperator = await post(`/api/v1/devices/${id}/approve`, operator);
    expect(byOperator.status).toBe(403);
    expect(await byOperator.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED', details: { team_id: TEST_TEAM, role: 'member', required: 'admin' } });
    expect((await device(id)).status).toBe('pending');
    const res = await post(`/api/v1/devices/${id}/approve`, admin);
    expect(res.status).toBe(200);
    const approved = (await res.json()) as DeviceView;
    expect(approved.status).toBe('approved');
    expect(approved.approved_at).not.toBeNull();
    // Approving again changes nothing, not even the approval time.
    const again = (await (await post(`/api/v1/devices/${id}/approve`, admin)).json()) as DeviceView;
    expect(again).toMatchObject({ status: 'approved', approved_at: approved.approved_at });
  });

  it('rejects a pending device, but an approved one must be revoked instead', async () => {
    const pending = await insertDevice({ status: 'pending' });
    expect((await post(`/api/v1/devices/${pending}/reject`, operator)).status).toBe(403);
    const res = await post(`/api/v1/devices/${pending}/reject`, admin);
    expect(res.status).toBe(200);
    expect(((await res.json()) as DeviceView).status).toBe('rejected');
    // A rejected device may still be approved by an admin who changes their mind.
    expect(((await (await post(`/api/v1/devices/${pending}/approve`, admin)).json()) as DeviceView).status).toBe('approved');

    const approved = await insertDevice({ status: 'approved' });
    const conflict = await post(`/api/v1/devices/${approved}/reject`, admin);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({ code: 'DEVICE_NOT_PENDING', details: { status: 'approved' } });
  });

  it('revokes for good: a revoked device cannot be approved again', async () => {
    const id = await insertDevice({ status: 'approved', online: true });
    expect((await post(`/api/v1/devices/${id}/revoke`, operator)).status).toBe(403);
    const res = await post(`/api/v1/devices/${id}/revoke`, admin);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'revoked', online: false });
    expect((await post(`/api/v1/devices/${id}/revoke`, admin)).status).toBe(200);
    const approve = await post(`/api/v1/devices/${id}/approve`, admin);
    expect(approve.status).toBe(409);
    expect(await approve.json()).toMatchObject({ code: 'DEVICE_REVOKED' });
    expect(await device(id)).toMatchObject({ status: 'revoked', online: false });
  });

  it('deletes a device (admins only) and answers 404 for it afterwards', async () => {
    const id = await insertDevice();
    expect((await api(`/api/v1/devices/${id}`, { key: operator, method: 'DELETE' })).status).toBe(403);
    const res = await api(`/api/v1/devices/${id}`, { key: admin, method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect((await api(`/api/v1/devices/${id}`, { key: viewer })).status).toBe(404);
    expect((await api(`/api/v1/devices/${id}`, { key: admin, method: 'DELETE' })).status).toBe(404);
    const row = await env.DB.prepare('SELECT id FROM devices WHERE id = ?1').bind(id).first();
    expect(row).toBeNull();
  });

  it('answers 404 for status changes of unknown devices', async () => {
    for (const action of ['approve', 'reject', 'revoke']) {
      expect((await post(`/api/v1/devices/${'e'.repeat(40)}/${action}`, admin)).status, action).toBe(404);
    }
  });
});

describe('live endpoints without a connected agent', () => {
  it('answers 503 DEVICE_OFFLINE at once for an approved device that never connected', async () => {
    const id = await insertDevice({ status: 'approved' });
    for (const what of ['info', 'processes']) {
      const started = Date.now();
      const res = await api(`/api/v1/devices/${id}/${what}`, { key: viewer });
      expect(res.status, what).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'DEVICE_OFFLINE', details: { device_id: id } });
      // Far below the RPC deadline: the hub knows it has no socket.
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('answers 409 DEVICE_NOT_APPROVED for a pending device and 404 for an unknown one', async () => {
    const id = await insertDevice({ status: 'pending' });
    const res = await api(`/api/v1/devices/${id}/info`, { key: viewer });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 'DEVICE_NOT_APPROVED', details: { status: 'pending' } });
    expect((await api(`/api/v1/devices/${'d'.repeat(40)}/processes`, { key: viewer })).status).toBe(404);
    expect((await api(`/api/v1/devices/${id}/info`)).status).toBe(401);
  });

  it('documents every devices route in openapi.json', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(doc.paths['/api/v1/devices/{id}']!).sort()).toEqual(['delete', 'get', 'patch']);
    for (const p of ['approve', 'reject', 'revoke']) expect(doc.paths[`/api/v1/devices/{id}/${p}`]).toHaveProperty('post');
    for (const p of ['info', 'processes']) expect(doc.paths[`/api/v1/devices/{id}/${p}`]).toHaveProperty('get');
    expect(doc.components.schemas).toHaveProperty('Device');
  });
});
