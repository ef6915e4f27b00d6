// PiTunnel's /tunnels: a device's active tunnels in the documented shape, device_id as a form
// field or query parameter, `curl -u KEY:` auth, and which tunnels count as active.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { BASE, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { makeTunnel, tunnelName } from './tunnels-helpers.ts';

let operator: string;
let viewer: string;
let nobody: string;
beforeAll(async () => {
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  nobody = (await userWithKey([])).key;
});

const basic = (key: string) => ({ authorization: `Basic ${btoa(`${key}:`)}` });

function tunnels(opts: { key?: string; form?: string; query?: string; host?: string } = {}) {
  const headers: Record<string, string> = opts.key ? basic(opts.key) : {};
  if (opts.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  const base = opts.host ? `http://${opts.host}` : BASE;
  return SELF.fetch(`${base}/tunnels${opts.query ? `?${opts.query}` : ''}`, { method: opts.form !== undefined ? 'POST' : 'GET', headers, body: opts.form });
}

interface Listed {
  destination: string;
  available_at: string;
  name: string;
}

describe('/tunnels', () => {
  it('lists the active tunnels of a device exactly in the documented shape', async () => {
    const device = await insertDevice({ status: 'approved', online: true });
    const web = await makeTunnel(operator, device, { name: tunnelName('myapp'), target: '192.168.1.50:8000' });
    const ssh = await makeTunnel(operator, device, { name: tunnelName('ssh'), kind: 'tcp', target: '192.168.1.51:22' });
    const res = await tunnels({ key: viewer, form: `device_id=${device}`, host: 'relay.localhost:8787' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { tunnels: Listed[] };
    expect(Object.keys(body)).toEqual(['tunnels']);
    expect(body.tunnels).toEqual([
      { destination: '192.168.1.50:8000', available_at: `${web.name}.localhost:8787`, name: web.name },
      { destination: '192.168.1.51:22', available_at: `ws://relay.localhost:8787/api/v1/tunnels/${ssh.name}/connect`, name: ssh.name },
    ].sort((a, b) => a.name.localeCompare(b.name)));
  });

  it('leaves out disabled and closed tunnels, and those of an offline device that does not allow clientless use', async () => {
    const device = await insertDevice({ status: 'approved', online: false });
    const active = await makeTunnel(operator, device, { name: tunnelName('on'), allow_clientless: true });
    await makeTunnel(operator, device, { name: tunnelName('off'), enabled: false, allow_clientless: true });
    const closed = await makeTunnel(operator, device, { name: tunnelName('closed'), allow_clientless: true });
    await env.DB.prepare('UPDATE tunnels SET connected = 0 WHERE id = ?1').bind(closed.id).run();
    const strict = await makeTunnel(operator, device, { name: tunnelName('strict'), allow_clientless: false });
    const names = async () => ((await (await tunnels({ key: viewer, query: `device_id=${device}` })).json()) as { tunnels: Listed[] }).tunnels.map((t) => t.name);
    expect(await names()).toEqual([active.name]);
    await env.DB.prepare('UPDATE devices SET online = 1 WHERE id = ?1').bind(device).run();
    expect((await names()).sort()).toEqual([active.name, strict.name].sort());
    await env.DB.prepare("UPDATE devices SET status = 'revoked', online = 0 WHERE id = ?1").bind(device).run();
    expect(await names()).toEqual([]);
  });

  it('answers an empty list for a device without tunnels, 404 for an unknown one, 400 without device_id', async () => {
    const device = await insertDevice({ status: 'approved' });
    const empty = await tunnels({ key: viewer, query: `device_id=${device}` });
    expect(await empty.json()).toEqual({ tunnels: [] });
    const unknown = await tunnels({ key: viewer, form: `device_id=${'0'.repeat(40)}` });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'NOT_FOUND' });
    const missing = await tunnels({ key: viewer, form: 'other=1' });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  it('needs tunnels:read: 401 without a key, 403 without the permission', async () => {
    const device = await insertDevice({ status: 'approved' });
    expect((await tunnels({ form: `device_id=${device}` })).status).toBe(401);
    expect((await tunnels({ key: nobody, form: `device_id=${device}` })).status).toBe(403);
    expect((await tunnels({ key: viewer, form: `device_id=${device}` })).status).toBe(200);
  });

  it('uses https and no port under a real tunnel domain', async () => {
    const { pitunnelTunnel } = await import('../../worker/compat/pitunnel.ts');
    const row = { name: 'myapp', kind: 'http', targetHost: '192.168.1.50', targetPort: 8000 } as Parameters<typeof pitunnelTunnel>[0];
    expect(pitunnelTunnel(row, { requestUrl: new URL('https://relay.example.com/tunnels'), domain: 'example.com' })).toEqual({
      destination: '192.168.1.50:8000',
      available_at: 'myapp.example.com',
      name: 'myapp',
    });
  });
});
