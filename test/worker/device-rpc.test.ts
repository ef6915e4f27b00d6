// The online path inside workerd: a fake agent holds a real DeviceHub socket through
// /agent/connect, and the native and PiTunnel endpoints reach it by RPC.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, BASE, userWithKey } from './helpers.ts';
import { agentJwt, connectAgent, connectRequest, enrollDevice, eventually, fakeInfo, fakeProcesses, keyPair, NO_ANSWER } from './device-helpers.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

async function onlineFlag(id: string) {
  const row = await env.DB.prepare('SELECT online FROM devices WHERE id = ?1').bind(id).first<{ online: number }>();
  return row?.online;
}

describe('device RPC over a real DeviceHub socket', () => {
  it('answers /api/v1/devices/:id/info and /processes with what the agent sent', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    expect(await onlineFlag(dev.deviceId)).toBe(1);

    const info = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    expect(info.status).toBe(200);
    expect(await info.json()).toEqual(fakeInfo());

    const procs = await api(`/api/v1/devices/${dev.deviceId}/processes`, { key: admin });
    expect(procs.status).toBe(200);
    expect(await procs.json()).toEqual(fakeProcesses);

    const list = (await (await api('/api/v1/devices?online=true', { key: admin })).json()) as { devices: { id: string; online: boolean }[] };
    expect(list.devices.map((d) => d.id)).toContain(dev.deviceId);
    agent.ws.close(1000, 'done');
  });

  it('maps device_info and process_list into the PiTunnel shapes', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);

    const form = await SELF.fetch(`${BASE}/device_info`, {
      method: 'POST',
      headers: { authorization: basic(admin), 'content-type': 'application/x-www-form-urlencoded' },
      body: `device_id=${dev.deviceId}`,
    });
    expect(form.status).toBe(200);
    expect(await form.json()).toEqual({
      device_info: {
        disk_usage: [15570452480, 9602961408, 5270650880, 64.6],
        cpu_usage: 9.7,
        mem_used_percent: 32.1,
        mem_total: 972361728,
        mem_available: 660647936,
        cpu_temp: 54.768,
        gpu_temp: null,
        mac_address: 'B827EB2A7FC1',
        hostname: 'raspberrypi',
      },
    });

    const query = await SELF.fetch(`${BASE}/process_list?device_id=${dev.deviceId}`, { headers: { authorization: basic(admin) } });
    expect(query.status).toBe(200);
    expect(await query.json()).toEqual({
      process_list: [
        { memory_percent: 2.552307776556175, pid: 867, name: 'lxpanel', cpu_percent: 0.2 },
        { memory_percent: 1.1470430888863614, pid: 121, name: 'systemd-journald', cpu_percent: 0.1 },
      ],
    });

    const listed = (await (await SELF.fetch(`${BASE}/devices`, { headers: { authorization: basic(admin) } })).json()) as {
      devices: { id: string; online: boolean }[];
    };
    expect(listed.devices.find((d) => d.id === dev.deviceId)?.online).toBe(true);
    agent.ws.close(1000, 'done');
  });

  it('gives 504 DEVICE_TIMEOUT when the agent never answers', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey, () => NO_ANSWER);
    const started = Date.now();
    const res = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ code: 'DEVICE_TIMEOUT', details: { device_id: dev.deviceId, method: 'device_info' } });
    // The deadline comes from RPC_TIMEOUT_MS (1500 ms in the test config), not the 10 s default.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(agent.received.some((m) => m.t === 'req' && m.method === 'device_info')).toBe(true);
    agent.ws.close(1000, 'done');
  });

  it('refuses a connect token signed by another key with 401', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const other = await keyPair();
    const res = await connectRequest(await agentJwt(dev.deviceId, other.privateKey));
    expect(res.status).toBe(401);
    expect(res.webSocket).toBeFalsy();
    expect(await res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('an agent cannot pose as a tunnel visitor: internal x-pirelay-* headers are dropped at connect', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const res = await SELF.fetch(`${BASE}/agent/connect`, {
      headers: {
        Upgrade: 'websocket',
        Authorization: `Bearer ${await agentJwt(dev.deviceId, dev.privateKey)}`,
        'x-pirelay-kind': 'tunnel-http',
        'x-pirelay-tunnel-id': 'anything',
      },
    });
    // Treated as the agent's own socket (101), not as a visit to a tunnel (404 unknown tunnel).
    expect(res.status).toBe(101);
    expect(res.webSocket).toBeTruthy();
    res.webSocket!.accept();
    res.webSocket!.close(1000, 'done');
  });

  it('refuses a pending device with 403 DEVICE_PENDING', async () => {
    const dev = await enrollDevice(admin);
    expect(dev.status).toBe('pending');
    const res = await connectRequest(await agentJwt(dev.deviceId, dev.privateKey));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'DEVICE_PENDING' });
  });

  it('revoking a connected device closes its socket and refuses it from then on', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    const res = await api(`/api/v1/devices/${dev.deviceId}/revoke`, { key: admin, method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'revoked', online: false });
    const closed = await agent.closed;
    expect(closed.code).toBe(4003);
    expect(agent.received.some((m) => m.t === 'bye')).toBe(true);
    expect(await onlineFlag(dev.deviceId)).toBe(0);

    const again = await connectRequest(await agentJwt(dev.deviceId, dev.privateKey));
    expect(again.status).toBe(403);
    expect(await again.json()).toMatchObject({ code: 'DEVICE_REVOKED' });
    const info = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    expect(info.status).toBe(409);
  });

  it('a second connection replaces the first, and RPCs go to the new one', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const first = await connectAgent(dev.deviceId, dev.privateKey, () => ({ ...fakeInfo(), hostname: 'first' }));
    const second = await connectAgent(dev.deviceId, dev.privateKey, () => ({ ...fakeInfo(), hostname: 'second' }));
    expect((await first.closed).code).toBe(4000);
    expect(second.isClosed()).toBe(false);
    const res = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { hostname: string }).hostname).toBe('second');
    expect(await onlineFlag(dev.deviceId)).toBe(1);
    second.ws.close(1000, 'done');
  });

  it('a malformed frame does not break the hub', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    agent.ws.send('{not json');
    agent.ws.send(JSON.stringify({ t: 'res', id: 'x' }));
    agent.ws.send(new Uint8Array([1, 2]));
    const res = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(fakeInfo());
    expect(agent.isClosed()).toBe(false);
    agent.ws.close(1000, 'done');
  });

  it('reports DEVICE_OFFLINE once the agent has gone', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    agent.ws.close(1000, 'bye');
    // The hub learns of the close asynchronously; poll briefly rather than sleep.
    let res = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    for (let i = 0; i < 50 && res.status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 20));
      res = await api(`/api/v1/devices/${dev.deviceId}/info`, { key: admin });
    }
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'DEVICE_OFFLINE' });
    await eventually(async () => (await onlineFlag(dev.deviceId)) === 0, 'online flag cleared');
    const got = (await (await api(`/api/v1/devices/${dev.deviceId}`, { key: admin })).json()) as { online: boolean; last_seen: string | null };
    expect(got.online).toBe(false);
    expect(got.last_seen).not.toBeNull();
  });
});
