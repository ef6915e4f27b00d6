// The native tunnels API: create, read (by id or name), change and delete a device's tunnels,
// the relay-wide list, what is refused and why, that secrets never come back out, who may do what,
// and the TCP connect endpoints up to the point where the hub takes over.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../worker/auth/password.ts';
import { sha256Hex } from '../../worker/auth/crypto.ts';
import { api, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { makeTunnel, TUNNEL_KEYS, tunnelName, type TunnelView } from './tunnels-helpers.ts';

let admin: string;
let operator: string;
let viewer: string;
let nobody: string;
let device: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  nobody = (await userWithKey([])).key;
  device = await insertDevice({ status: 'approved', name: 'tunnel-host' });
});

const tunnelsOf = (id: string) => `/api/v1/devices/${id}/tunnels`;
const row = (id: string) => env.DB.prepare('SELECT * FROM tunnels WHERE id = ?1').bind(id).first<Record<string, unknown>>();

async function issuesOf(res: Response): Promise<string[]> {
  const body = (await res.json()) as { code: string; details: { issues?: { path: string; message: string }[] } };
  expect(body.code).toBe('VALIDATION_ERROR');
  return (body.details.issues ?? []).map((i) => `${i.path}: ${i.message}`);
}

describe('creating tunnels', () => {
  it('creates an http tunnel with defaults and answers the documented shape', async () => {
    const name = tunnelName('web');
    const res = await api(tunnelsOf(device), { key: operator, json: { name, target: '192.168.1.50:8000' } });
    expect(res.status).toBe(201);
    const t = (await res.json()) as TunnelView;
    expect(Object.keys(t).sort()).toEqual(TUNNEL_KEYS);
    expect(t).toMatchObject({
      device_id: device,
      name,
      kind: 'http',
      target: '192.168.1.50:8000',
      target_host: '192.168.1.50',
      target_port: 8000,
      access: { mode: 'public' },
      rate_limit_per_minute: null,
      enabled: true,
      connected: true,
      allow_clientless: true,
      public_url: `http://${name}.localhost`,
    });
    expect(t.id).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.parse(t.created_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(t.updated_at).toBe(t.created_at);
    expect(await row(t.id)).toMatchObject({ name, device_id: device, target_host: '192.168.1.50', target_port: 8000, access: 'public' });
  });

  it('takes the target as {target_host, target_port} or split fields, and IPv6 in brackets', async () => {
    const a = await makeTunnel(operator, device, { name: tunnelName(), target: { target_host: 'nas.local', target_port: 445 } });
    expect(a).toMatchObject({ target: 'nas.local:445', target_host: 'nas.local', target_port: 445 });
    const b = await makeTunnel(operator, device, { name: tunnelName(), target: undefined, target_host: 'LocalHost', target_port: 3000 });
    expect(b).toMatchObject({ target: 'localhost:3000', target_host: 'localhost' });
    const c = await makeTunnel(operator, device, { name: tunnelName(), target: '[::1]:22' });
    expect(c).toMatchObject({ target: '[::1]:22', target_host: '::1', target_port: 22 });
  });

  it('keeps the port of a local relay in public_url, and gives tcp tunnels a WebSocket URL on the relay', async () => {
    const name = tunnelName('dev');
    const res = await fetchJson(`http://relay.localhost:8787${tunnelsOf(device)}`, operator, { name, target: '127.0.0.1:8080' });
    expect(res.public_url).toBe(`http://${name}.localhost:8787`);
    const tcp = await makeTunnel(operator, device, { name: tunnelName('ssh'), kind: 'tcp', target: '127.0.0.1:22' });
    expect(tcp.public_url).toBe(`ws://relay.test/api/v1/tunnels/${tcp.name}/connect`);
    expect(tcp.access).toEqual({ mode: 'pirelay' });
  });

  it('refuses names that are not DNS labels, and reserved names', async () => {
    for (const bad of ['-bad', 'bad-', 'Upper', 'a_b', 'a.b', '', 'x'.repeat(64), 'sp ace']) {
      const res = await api(tunnelsOf(device), { key: operator, json: { name: bad, target: '127.0.0.1:80' } });
      expect(res.status, bad).toBe(400);
      expect((await issuesOf(res)).join('\n'), bad).toMatch(/^name: /m);
    }
    expect((await api(tunnelsOf(device), { key: operator, json: { name: 'x'.repeat(63), target: '127.0.0.1:80' } })).status).toBe(201);
    for (const reserved of ['api', 'www', 'relay', 'admin']) {
      const res = await api(tunnelsOf(device), { key: operator, json: { name: reserved, target: '127.0.0.1:80' } });
      expect(res.status, reserved).toBe(400);
      expect((await issuesOf(res)).join('\n')).toContain('reserved');
    }
  });

  it('refuses bad targets', async () => {
    const bad: unknown[] = [
      '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '999.1.1.1:80', '::1:22', '[::zz]:22', 'host name:80', ':80', 'a..b:80', 'http://x:80',
      { target_host: '127.0.0.1' }, { target_host: '127.0.0.1', target_port: '80' }, { target_host: '', target_port: 80 }, 42,
    ];
    for (const target of bad) {
      const res = await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target } });
      expect(res.status, JSON.stringify(target)).toBe(400);
      expect((await issuesOf(res)).join('\n'), JSON.stringify(target)).toMatch(/^target/m);
    }
    const none = await api(tunnelsOf(device), { key: operator, json: { name: tunnelName() } });
    expect((await issuesOf(none)).join('\n')).toContain('target is required');
    const both = await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target: '127.0.0.1:80', target_host: 'x', target_port: 80 } });
    expect(both.status).toBe(400);
    const half = await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target_host: 'x' } });
    expect((await issuesOf(half)).join('\n')).toContain('target_port');
  });

  it('refuses bad access settings, bad rate limits and unknown fields', async () => {
    const cases: [unknown, RegExp][] = [
      [{ mode: 'nope' }, /^access/m],
      [{ mode: 'basic', username: 'u' }, /^access\.password/m],
      [{ mode: 'basic', username: 'a:b', password: 'long enough' }, /^access\.username/m],
      [{ mode: 'basic', username: 'u', password: 'short' }, /^access\.password/m],
      [{ mode: 'bearer', token: 'mine' }, /^access/m],
      [{ mode: 'bearer', rotate: true }, /^access/m],
      ['public', /^access/m],
    ];
    for (const [access, path] of cases) {
      const res = await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target: '127.0.0.1:80', access } });
      expect(res.status, JSON.stringify(access)).toBe(400);
      expect((await issuesOf(res)).join('\n'), JSON.stringify(access)).toMatch(path);
    }
    const tcpBasic = await api(tunnelsOf(device), {
      key: operator,
      json: { name: tunnelName(), kind: 'tcp', target: '127.0.0.1:22', access: { mode: 'bearer' } },
    });
    expect((await issuesOf(tcpBasic)).join('\n')).toContain('access.mode');
    for (const rate of [0, -1, 1.5, 1_000_001, '10']) {
      const res = await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target: '127.0.0.1:80', rate_limit_per_minute: rate } });
      expect(res.status, String(rate)).toBe(400);
    }
    const ok = await makeTunnel(operator, device, { name: tunnelName(), rate_limit_per_minute: 1_000_000 });
    expect(ok.rate_limit_per_minute).toBe(1_000_000);
    expect((await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target: '127.0.0.1:80', kind: 'udp' } })).status).toBe(400);
    expect((await api(tunnelsOf(device), { key: operator, json: { name: tunnelName(), target: '127.0.0.1:80', extra: 1 } })).status).toBe(400);
  });

  it('409 TUNNEL_NAME_TAKEN for a name in use anywhere on the relay', async () => {
    const other = await insertDevice({ status: 'approved' });
    const name = tunnelName('dup');
    await makeTunnel(operator, device, { name });
    for (const dev of [device, other]) {
      const res = await api(tunnelsOf(dev), { key: operator, json: { name, target: '127.0.0.1:81' } });
      expect(res.status).toBe(409);
      expect(await res.json()).toMatchObject({ code: 'TUNNEL_NAME_TAKEN', details: { name } });
    }
    const count = await env.DB.prepare('SELECT COUNT(*) AS n FROM tunnels WHERE name = ?1').bind(name).first<{ n: number }>();
    expect(count!.n).toBe(1);
  });

  it('404 for an unknown device, 400 for a malformed device id', async () => {
    const res = await api(tunnelsOf('0'.repeat(40)), { key: operator, json: { name: tunnelName(), target: '127.0.0.1:80' } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect((await api(tunnelsOf('0'.repeat(40)), { key: viewer })).status).toBe(404);
    expect((await api(tunnelsOf('bad id!'), { key: viewer })).status).toBe(400);
  });
});

async function fetchJson(url: string, key: string, json: unknown): Promise<TunnelView> {
  const res = await SELF.fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(json) });
  expect(res.status).toBe(201);
  return (await res.json()) as TunnelView;
}

describe('secrets', () => {
  it('stores a PBKDF2 hash for basic access and never returns the password or hash', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('basic'), access: { mode: 'basic', username: 'alice', password: 'correct horse' } });
    expect(t.access).toEqual({ mode: 'basic', username: 'alice' });
    expect(JSON.stringify(t)).not.toContain('correct horse');
    expect(t.bearer_token).toBeUndefined();
    const stored = (await row(t.id))!;
    expect(stored.basic_user).toBe('alice');
    expect(String(stored.basic_password_hash)).toMatch(/^pbkdf2-sha256\$/);
    expect(await verifyPassword('correct horse', String(stored.basic_password_hash))).toBe(true);
    for (const path of [`${tunnelsOf(device)}/${t.id}`, tunnelsOf(device), '/api/v1/tunnels']) {
      const text = await (await api(path, { key: viewer })).text();
      expect(text).toContain(t.id);
      expect(text).not.toContain('pbkdf2');
      expect(text).not.toContain('correct horse');
    }
  });

  it('shows a bearer token once (create and rotate), keeps only its SHA-256, and keeps it on unrelated changes', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('bearer'), access: { mode: 'bearer' } });
    expect(t.bearer_token).toMatch(/^ptt_[A-Za-z0-9_-]{40,}$/);
    expect(t.access).toEqual({ mode: 'bearer', token_prefix: t.bearer_token!.slice(0, 10) });
    const stored = (await row(t.id))!;
    expect(stored.bearer_token_hash).toBe(await sha256Hex(t.bearer_token!));
    const read = await (await api(`${tunnelsOf(device)}/${t.id}`, { key: viewer })).text();
    expect(read).not.toContain(t.bearer_token!);
    expect(read).not.toContain('bearer_token');

    const renamed = (await (await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { access: { mode: 'bearer' } } })).json()) as TunnelView;
    expect(renamed.bearer_token).toBeUndefined();
    expect((await row(t.id))!.bearer_token_hash).toBe(stored.bearer_token_hash);

    const rotated = (await (await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { access: { mode: 'bearer', rotate: true } } })).json()) as TunnelView;
    expect(rotated.bearer_token).toMatch(/^ptt_/);
    expect(rotated.bearer_token).not.toBe(t.bearer_token);
    expect((await row(t.id))!.bearer_token_hash).toBe(await sha256Hex(rotated.bearer_token!));
  });

  it('switching away from basic or bearer forgets the secret; switching to basic needs a password', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName(), access: { mode: 'bearer' } });
    const path = `${tunnelsOf(device)}/${t.id}`;
    const pub = await api(path, { key: operator, method: 'PATCH', json: { access: { mode: 'public' } } });
    expect(pub.status).toBe(200);
    expect((await row(t.id))!).toMatchObject({ access: 'public', bearer_token_hash: null, bearer_prefix: null, basic_password_hash: null });
    const noPassword = await api(path, { key: operator, method: 'PATCH', json: { access: { mode: 'basic', username: 'bob' } } });
    expect(noPassword.status).toBe(400);
    expect((await issuesOf(noPassword)).join()).toContain('access.password');
    expect((await api(path, { key: operator, method: 'PATCH', json: { access: { mode: 'basic', username: 'bob', password: 'first password' } } })).status).toBe(200);
    const hash = (await row(t.id))!.basic_password_hash;
    // A new user name alone keeps the password.
    const renamed = (await (await api(path, { key: operator, method: 'PATCH', json: { access: { mode: 'basic', username: 'carol' } } })).json()) as TunnelView;
    expect(renamed.access).toEqual({ mode: 'basic', username: 'carol' });
    expect((await row(t.id))!.basic_password_hash).toBe(hash);
  });
});

describe('reading, changing and deleting', () => {
  it('finds a tunnel by id or by name, only under its own device', async () => {
    const other = await insertDevice({ status: 'approved' });
    const t = await makeTunnel(operator, device, { name: tunnelName('find') });
    for (const ref of [t.id, t.name]) {
      const res = await api(`${tunnelsOf(device)}/${ref}`, { key: viewer });
      expect(res.status).toBe(200);
      expect(((await res.json()) as TunnelView).id).toBe(t.id);
    }
    const elsewhere = await api(`${tunnelsOf(other)}/${t.name}`, { key: viewer });
    expect(elsewhere.status).toBe(404);
    expect((await api(`${tunnelsOf(device)}/nope-${t.id}`, { key: viewer })).status).toBe(404);
  });

  it("lists a device's tunnels by name and every tunnel relay-wide", async () => {
    const dev = await insertDevice({ status: 'approved' });
    const b = await makeTunnel(operator, dev, { name: `zb-${tunnelName()}` });
    const a = await makeTunnel(operator, dev, { name: `za-${tunnelName()}` });
    const mine = (await (await api(tunnelsOf(dev), { key: viewer })).json()) as { tunnels: TunnelView[] };
    expect(mine.tunnels.map((t) => t.id)).toEqual([a.id, b.id]);
    const all = (await (await api('/api/v1/tunnels', { key: viewer })).json()) as { tunnels: TunnelView[] };
    expect(all.tunnels.map((t) => t.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(all.tunnels.some((t) => t.device_id !== dev)).toBe(true);
    expect(all.tunnels.map((t) => t.name)).toEqual([...all.tunnels.map((t) => t.name)].sort());
  });

  it('PATCH changes only what it names and bumps updated_at; renaming to a taken name is 409', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('patch'), rate_limit_per_minute: 10 });
    const path = `${tunnelsOf(device)}/${t.name}`;
    const newName = tunnelName('renamed');
    const res = await api(path, { key: operator, method: 'PATCH', json: { name: newName, target: '10.0.0.2:9000', enabled: false, allow_clientless: true } });
    expect(res.status).toBe(200);
    const after = (await res.json()) as TunnelView;
    expect(after).toMatchObject({ id: t.id, name: newName, target: '10.0.0.2:9000', enabled: false, allow_clientless: true, rate_limit_per_minute: 10, access: { mode: 'public' } });
    expect(Date.parse(after.updated_at)).toBeGreaterThan(Date.parse(t.updated_at));
    const cleared = (await (await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { rate_limit_per_minute: null } })).json()) as TunnelView;
    expect(cleared.rate_limit_per_minute).toBeNull();

    const other = await makeTunnel(operator, device, { name: tunnelName() });
    const taken = await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { name: other.name } });
    expect(taken.status).toBe(409);
    expect(await taken.json()).toMatchObject({ code: 'TUNNEL_NAME_TAKEN' });
    expect((await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: {} })).status).toBe(400);
    expect((await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { name: 'api' } })).status).toBe(400);
    expect((await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { kind: 'tcp' } })).status).toBe(400);
    const toTcp = await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'PATCH', json: { kind: 'tcp', access: { mode: 'pirelay' } } });
    expect(toTcp.status).toBe(200);
    expect(((await toTcp.json()) as TunnelView).public_url).toContain('/connect');
  });

  it('DELETE removes the tunnel (204), then 404', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('del') });
    const res = await api(`${tunnelsOf(device)}/${t.name}`, { key: operator, method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await row(t.id)).toBeNull();
    expect((await api(`${tunnelsOf(device)}/${t.id}`, { key: operator, method: 'DELETE' })).status).toBe(404);
    expect((await api(`${tunnelsOf(device)}/${t.id}`, { key: viewer })).status).toBe(404);
  });
});

describe('permissions', () => {
  it('viewers read but cannot write; keys without tunnel permissions get 403; no key is 401', async () => {
    const t = await makeTunnel(admin, device, { name: tunnelName('perm') });
    const path = `${tunnelsOf(device)}/${t.id}`;
    for (const p of [tunnelsOf(device), path, '/api/v1/tunnels']) {
      expect((await api(p, { key: viewer })).status, p).toBe(200);
      expect((await api(p, { key: nobody })).status, p).toBe(403);
      expect((await api(p)).status, p).toBe(401);
    }
    const writes = [
      () => api(tunnelsOf(device), { json: { name: tunnelName(), target: '127.0.0.1:80' } }),
      () => api(path, { method: 'PATCH', json: { enabled: false } }),
      () => api(path, { method: 'DELETE' }),
    ];
    const asViewer = [
      await api(tunnelsOf(device), { key: viewer, json: { name: tunnelName(), target: '127.0.0.1:80' } }),
      await api(path, { key: viewer, method: 'PATCH', json: { enabled: false } }),
      await api(path, { key: viewer, method: 'DELETE' }),
    ];
    for (const res of asViewer) {
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'FORBIDDEN', details: { required: ['tunnels:write'] } });
    }
    expect((await row(t.id))!.enabled).toBe(1);
    for (const w of writes) expect((await w()).status).toBe(401);
  });
});

describe('OpenAPI', () => {
  it('documents the tunnels routes and schemas', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(doc.paths['/api/v1/devices/{id}/tunnels']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/devices/{id}/tunnels/{tunnelId}']!).sort()).toEqual(['delete', 'get', 'patch']);
    expect(doc.paths['/api/v1/tunnels']).toHaveProperty('get');
    expect(doc.paths['/api/v1/tunnels/{name}/connect']!.get).toMatchObject({ responses: { 101: expect.any(Object) } });
    expect(doc.paths['/api/v1/devices/{id}/tcp/{port}/connect']).toHaveProperty('get');
    expect(doc.components.schemas).toHaveProperty('Tunnel');
    expect(doc.components.schemas).toHaveProperty('CreateTunnel');
    expect(doc.paths).not.toHaveProperty('/tunnel-api/{call}');
  });
});

describe('TCP connect endpoints', () => {
  const upgrade = { upgrade: 'websocket' };
  let tcp: TunnelView;
  let http: TunnelView;
  let tcpDevice: string;
  beforeAll(async () => {
    tcpDevice = await insertDevice({ status: 'approved', name: `pi-${tunnelName()}` });
    tcp = await makeTunnel(operator, tcpDevice, { name: tunnelName('ssh'), kind: 'tcp', target: '127.0.0.1:22' });
    http = await makeTunnel(operator, tcpDevice, { name: tunnelName('web') });
  });

  it('needs a credential with tunnels:use, from the header or ?api_key=', async () => {
    const path = `/api/v1/tunnels/${tcp.name}/connect`;
    expect((await api(path, { headers: upgrade })).status).toBe(401);
    expect((await api(`${path}?api_key=prk_wrong`, { headers: upgrade })).status).toBe(401);
    const v = await api(path, { key: viewer, headers: upgrade });
    expect(v.status).toBe(403);
    expect(await v.json()).toMatchObject({ code: 'FORBIDDEN', details: { required: ['tunnels:use'] } });
    expect((await api(`${path}?api_key=${viewer}`, { headers: upgrade })).status).toBe(403);
    // Allowed callers get past the relay's checks: 426 without an upgrade, the hub's answer with one.
    const plain = await api(`${path}?api_key=${operator}`);
    expect(plain.status).toBe(426);
    expect(await plain.json()).toMatchObject({ code: 'UPGRADE_REQUIRED' });
    for (const res of [await api(path, { key: operator, headers: upgrade }), await api(`${path}?api_key=${operator}`, { headers: upgrade })]) {
      expect([401, 403, 404, 426]).not.toContain(res.status);
      await res.body?.cancel();
    }
  });

  it('404 for an unknown tunnel, 400 for an http tunnel, 503 when disabled or closed', async () => {
    const unknown = await api(`/api/v1/tunnels/${tunnelName('none')}/connect`, { key: operator, headers: upgrade });
    expect(unknown.status).toBe(404);
    const notTcp = await api(`/api/v1/tunnels/${http.name}/connect`, { key: operator, headers: upgrade });
    expect(notTcp.status).toBe(400);
    expect(await notTcp.json()).toMatchObject({ code: 'NOT_A_TCP_TUNNEL' });
    const off = await makeTunnel(operator, tcpDevice, { name: tunnelName('off'), kind: 'tcp', target: '127.0.0.1:23', enabled: false });
    const disabled = await api(`/api/v1/tunnels/${off.name}/connect`, { key: operator, headers: upgrade });
    expect(disabled.status).toBe(503);
    expect(await disabled.json()).toMatchObject({ code: 'TUNNEL_DISABLED' });
    const pendingDevice = await insertDevice({ status: 'pending' });
    const pending = await makeTunnel(operator, pendingDevice, { name: tunnelName('pend'), kind: 'tcp', target: '127.0.0.1:22' });
    for (const path of [`/api/v1/tunnels/${pending.name}/connect`, `/api/v1/devices/${pendingDevice}/tcp/22/connect`]) {
      const res = await api(path, { key: operator, headers: upgrade });
      expect(res.status, path).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'DEVICE_NOT_APPROVED', details: { status: 'pending' } });
    }
  });

  it('resolves <device>:<port> by device id or display name to the tcp tunnel on that port', async () => {
    const name = (await env.DB.prepare('SELECT name FROM devices WHERE id = ?1').bind(tcpDevice).first<{ name: string }>())!.name;
    for (const ref of [tcpDevice, encodeURIComponent(name)]) {
      const plain = await api(`/api/v1/devices/${ref}/tcp/22/connect`, { key: operator });
      expect(plain.status, ref).toBe(426);
      expect(await plain.json()).toMatchObject({ details: { tunnel: tcp.name } });
    }
    const noPort = await api(`/api/v1/devices/${tcpDevice}/tcp/2222/connect`, { key: operator });
    expect(noPort.status).toBe(404);
    // 8080 is the http tunnel's port: only tcp tunnels count.
    expect((await api(`/api/v1/devices/${tcpDevice}/tcp/8080/connect`, { key: operator })).status).toBe(404);
    expect((await api(`/api/v1/devices/no-such-device/tcp/22/connect`, { key: operator })).status).toBe(404);
    expect((await api(`/api/v1/devices/${tcpDevice}/tcp/70000/connect`, { key: operator })).status).toBe(400);
    expect((await api(`/api/v1/devices/${tcpDevice}/tcp/22/connect`, { key: viewer })).status).toBe(403);
    expect((await api(`/api/v1/devices/${tcpDevice}/tcp/22/connect`)).status).toBe(401);
  });

  it('409 when a display name or a port is ambiguous', async () => {
    const shared = `twin-${tunnelName()}`;
    const d1 = await insertDevice({ status: 'approved', name: shared });
    await insertDevice({ status: 'approved', name: shared });
    const res = await api(`/api/v1/devices/${shared}/tcp/22/connect`, { key: operator });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 'AMBIGUOUS_DEVICE' });
    await makeTunnel(operator, d1, { name: tunnelName(), kind: 'tcp', target: '127.0.0.1:5432' });
    await makeTunnel(operator, d1, { name: tunnelName(), kind: 'tcp', target: '10.0.0.9:5432' });
    const port = await api(`/api/v1/devices/${d1}/tcp/5432/connect`, { key: operator });
    expect(port.status).toBe(409);
    expect(await port.json()).toMatchObject({ code: 'AMBIGUOUS_TUNNEL' });
  });
});
