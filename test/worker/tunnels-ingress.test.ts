// The public ingress: requests for `<name>.localhost` are tunnel visits, everything else reaches
// the API. Through SELF against the real DeviceHub (its device offline, so an allowed visit gets
// whatever the hub answers, never the relay's 401/403/404), and through visitTunnel with a
// stand-in hub that records what it was sent: the forwarded headers, and the retry after the
// hub reports a stale tunnel.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { visitTunnel } from '../../worker/tunnels/ingress.ts';
import { forgetTunnels } from '../../worker/tunnels/name-cache.ts';
import { api, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { sessionUser } from './auth-helpers.ts';
import { basicAuth, makeTunnel, tunnelName, visit } from './tunnels-helpers.ts';

let operator: string;
let viewer: string;
let device: string;
beforeAll(async () => {
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  device = await insertDevice({ status: 'approved' });
});

/** Codes of the pages the relay itself answers a visit with, before the hub is asked. */
const RELAY_REFUSALS = ['UNAUTHORIZED', 'FORBIDDEN', 'TUNNEL_NOT_FOUND', 'NOT_AN_HTTP_TUNNEL', 'TUNNEL_DISABLED', 'TUNNEL_CLOSED', 'DEVICE_NOT_APPROVED'];

/** The visit got past the relay's own checks and was answered by the DeviceHub. */
async function expectForwarded(res: Response, what: string) {
  expect([401, 403, 404], what).not.toContain(res.status);
  expect(RELAY_REFUSALS, what).not.toContain(res.headers.get('x-pirelay-error'));
  await res.body?.cancel();
}

async function expectRefused(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('x-pirelay-error')).toBe(code);
  return res.text();
}

describe('Host routing', () => {
  it('sends <name>.localhost to the tunnel and other hosts to the API', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('app') });
    await expectForwarded(await SELF.fetch(`http://${t.name}.localhost/x`), 'no port');
    await expectForwarded(await SELF.fetch(`http://${t.name}.localhost:8787/x`), 'any port');
    // The same path on the relay's own host is the API.
    const health = await SELF.fetch('http://localhost:8787/health');
    expect(health.status).toBe(200);
    for (const host of ['relay.localhost', 'api.localhost', 'relay.test']) {
      expect((await SELF.fetch(`http://${host}/health`)).status, host).toBe(200);
    }
    // A tunnel host never reaches the API, even for an API path.
    const apiPath = await SELF.fetch(`http://${tunnelName('none')}.localhost/health`);
    await expectRefused(apiPath, 404, 'TUNNEL_NOT_FOUND');
  });

  it('answers an unknown subdomain with a 404 page, or JSON when asked', async () => {
    const name = tunnelName('ghost');
    const res = await visit(name, '/');
    const html = await expectRefused(res, 404, 'TUNNEL_NOT_FOUND');
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html).toContain(`no tunnel named &#34;${name}&#34;`);
    const json = await visit(name, '/', { headers: { accept: 'application/json' } });
    expect(json.status).toBe(404);
    expect(await json.json()).toMatchObject({ code: 'TUNNEL_NOT_FOUND' });
  });

  it('refuses a tcp tunnel over HTTP (400), a disabled one and a closed one (503)', async () => {
    const tcp = await makeTunnel(operator, device, { name: tunnelName('tcp'), kind: 'tcp', target: '127.0.0.1:22' });
    expect(await expectRefused(await visit(tcp.name), 400, 'NOT_AN_HTTP_TUNNEL')).toContain('pirelay tcp');
    const off = await makeTunnel(operator, device, { name: tunnelName('off'), enabled: false });
    await expectRefused(await visit(off.name), 503, 'TUNNEL_DISABLED');
    const closed = await makeTunnel(operator, device, { name: tunnelName('closed') });
    await env.DB.prepare('UPDATE tunnels SET connected = 0 WHERE id = ?1').bind(closed.id).run();
    await expectRefused(await visit(closed.name), 503, 'TUNNEL_CLOSED');
  });

  it('refuses tunnels of a device that is no longer approved (503), instead of waiting for it', async () => {
    const dev = await insertDevice({ status: 'approved' });
    const t = await makeTunnel(operator, dev, { name: tunnelName('rev'), allow_clientless: true });
    await env.DB.prepare("UPDATE devices SET status = 'revoked' WHERE id = ?1").bind(dev).run();
    forgetTunnels();
    expect(await expectRefused(await visit(t.name), 503, 'DEVICE_NOT_APPROVED')).toContain('revoked');
  });

  it('sees API writes at once, and caches lookups for a few seconds otherwise', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('cache') });
    await expectForwarded(await visit(t.name), 'before');
    // A write straight to D1 (as another isolate's would look from here) is not seen yet…
    await env.DB.prepare('UPDATE tunnels SET enabled = 0 WHERE id = ?1').bind(t.id).run();
    await expectForwarded(await visit(t.name), 'cached');
    // …but a write through the API clears this isolate's cache.
    const res = await api(`/api/v1/devices/${device}/tunnels/${t.id}`, { key: operator, method: 'PATCH', json: { rate_limit_per_minute: 100 } });
    expect(res.status).toBe(200);
    await expectRefused(await visit(t.name), 503, 'TUNNEL_DISABLED');
    // Deleting makes the name unknown.
    expect((await api(`/api/v1/devices/${device}/tunnels/${t.id}`, { key: operator, method: 'DELETE' })).status).toBe(204);
    await expectRefused(await visit(t.name), 404, 'TUNNEL_NOT_FOUND');
  });
});

describe('access modes', () => {
  it('public: anyone', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('pub') });
    await expectForwarded(await visit(t.name, '/a?b=c', { method: 'POST', body: 'x' }), 'public');
  });

  it('basic: 401 with a challenge unless user and password match', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('basic'), access: { mode: 'basic', username: 'alice', password: 'wonderland' } });
    for (const headers of [{} as Record<string, string>, { authorization: basicAuth('alice', 'nope') }, { authorization: basicAuth('mallory', 'wonderland') }, { authorization: `Bearer ${operator}` }]) {
      const res = await visit(t.name, '/', { headers });
      await expectRefused(res, 401, 'UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toBe(`Basic realm="${t.name}", charset="UTF-8"`);
    }
    await expectForwarded(await visit(t.name, '/', { headers: { authorization: basicAuth('alice', 'wonderland') } }), 'right password');
    // Again, now from the memo of good checks.
    await expectForwarded(await visit(t.name, '/', { headers: { authorization: basicAuth('alice', 'wonderland') } }), 'remembered');
    // A new password takes effect at once.
    await api(`/api/v1/devices/${device}/tunnels/${t.id}`, { key: operator, method: 'PATCH', json: { access: { mode: 'basic', username: 'alice', password: 'looking glass' } } });
    await expectRefused(await visit(t.name, '/', { headers: { authorization: basicAuth('alice', 'wonderland') } }), 401, 'UNAUTHORIZED');
    await expectForwarded(await visit(t.name, '/', { headers: { authorization: basicAuth('alice', 'looking glass') } }), 'new password');
  });

  it('bearer: only the token shown at creation', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('bearer'), access: { mode: 'bearer' } });
    await expectRefused(await visit(t.name), 401, 'UNAUTHORIZED');
    const wrong = await visit(t.name, '/', { headers: { authorization: 'Bearer ptt_wrong' } });
    await expectRefused(wrong, 401, 'UNAUTHORIZED');
    expect(wrong.headers.get('www-authenticate')).toContain('invalid_token');
    await expectForwarded(await visit(t.name, '/', { headers: { authorization: `Bearer ${t.bearer_token}` } }), 'right token');
  });

  it('pirelay: 401 without a key, 403 without tunnels:use, in with an operator key or session', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('team'), access: { mode: 'pirelay' } });
    const none = await visit(t.name);
    await expectRefused(none, 401, 'UNAUTHORIZED');
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="pirelay"');
    await expectRefused(await visit(t.name, '/', { headers: { authorization: 'Bearer prk_nope' } }), 401, 'UNAUTHORIZED');
    await expectRefused(await visit(t.name, '/', { headers: { authorization: `Bearer ${viewer}` } }), 403, 'FORBIDDEN');
    await expectForwarded(await visit(t.name, '/', { headers: { authorization: `Bearer ${operator}` } }), 'operator key');
    await expectForwarded(await visit(t.name, '/', { headers: { authorization: `Basic ${btoa(`${operator}:`)}` } }), 'operator key as Basic');
    const op = await sessionUser(['operator']);
    await expectForwarded(await visit(t.name, '/', { headers: { cookie: `theme=1; __Host-pirelay_session=${op.token}` } }), 'session cookie');
    const v = await sessionUser(['viewer']);
    await expectRefused(await visit(t.name, '/', { headers: { cookie: `__Host-pirelay_session=${v.token}` } }), 403, 'FORBIDDEN');
  });
});

describe('what reaches the hub', () => {
  interface Seen {
    deviceName: string;
    request: Request;
  }

  /** An env whose DEVICE_HUB records each forwarded request and answers with `answer`. */
  function recordingEnv(answer: (req: Request, n: number) => Response) {
    const seen: Seen[] = [];
    const hub = {
      idFromName: (name: string) => ({ name }),
      get: (id: { name: string }) => ({
        fetch: async (req: Request) => {
          seen.push({ deviceName: id.name, request: req });
          return answer(req, seen.length);
        },
      }),
    };
    return { env: { ...env, DEVICE_HUB: hub } as unknown as Env, seen };
  }

  async function visitWith(e: Env, name: string, init: RequestInit & { path?: string } = {}) {
    const ctx = createExecutionContext();
    const res = await visitTunnel(new Request(`https://${name}.localhost${init.path ?? '/'}`, init), e, ctx, name);
    await waitOnExecutionContext(ctx);
    return res;
  }

  it('forwards to the device\'s hub without relay credentials, with X-Forwarded-* and the internal headers', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('fwd'), access: { mode: 'pirelay' } });
    const { env: e, seen } = recordingEnv(() => new Response('from target', { status: 207, headers: { 'x-target': 'yes' } }));
    const res = await visitWith(e, t.name, {
      method: 'PUT',
      path: '/upload?x=1',
      body: 'payload',
      headers: {
        authorization: `Bearer ${operator}`,
        cookie: 'pirelay_session=a.b.c; keep=1',
        'x-pirelay-tunnel-id': 'forged',
        'x-pirelay-head': '{"method":"DELETE","path":"/admin","headers":[["x-forged","1"]]}',
        'x-pirelay-device-id': device,
        'cf-connecting-ip': '203.0.113.9',
        'x-forwarded-for': '10.1.1.1',
        connection: 'close',
      },
    });
    expect(res.status).toBe(207);
    expect(res.headers.get('x-target')).toBe('yes');
    expect(await res.text()).toBe('from target');
    expect(seen).toHaveLength(1);
    const { deviceName, request: r } = seen[0]!;
    expect(deviceName).toBe(device);
    expect(r.method).toBe('PUT');
    expect(r.url).toBe(`https://${t.name}.localhost/upload?x=1`);
    // The hub gets the internal headers, and the target's request head as one JSON header.
    expect(r.headers.get('x-pirelay-kind')).toBe('tunnel-http');
    expect(r.headers.get('x-pirelay-tunnel-id')).toBe(t.id);
    expect(r.headers.get('x-pirelay-device-id')).toBeNull();
    expect(r.headers.get('authorization')).toBeNull();
    expect(r.headers.get('cookie')).toBeNull();
    const head = JSON.parse(r.headers.get('x-pirelay-head')!) as { method: string; path: string; headers: [string, string][] };
    expect(head.method).toBe('PUT');
    expect(head.path).toBe('/upload?x=1');
    const h = new Headers(head.headers);
    expect(h.get('authorization')).toBeNull();
    expect(h.get('x-forged')).toBeNull();
    expect(h.get('cookie')).toBe('keep=1');
    expect(head.headers.map(([k]) => k).filter((k) => k.startsWith('x-pirelay-'))).toEqual([]);
    expect(h.get('x-forwarded-for')).toBe('10.1.1.1, 203.0.113.9');
    expect(h.get('x-forwarded-proto')).toBe('https');
    expect(h.get('x-forwarded-host')).toBe(`${t.name}.localhost`);
    expect(h.get('connection')).toBeNull();
    expect(await r.text()).toBe('payload');
  });

  it('does not forward refused visits', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('nofwd'), access: { mode: 'bearer' } });
    const { env: e, seen } = recordingEnv(() => new Response('never'));
    expect((await visitWith(e, t.name, { headers: { authorization: 'Bearer ptt_no' } })).status).toBe(401);
    expect(seen).toHaveLength(0);
  });

  it('looks the tunnel up again once when the hub says its id is stale', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('stale') });
    forgetTunnels();
    const { env: e, seen } = recordingEnv((req) =>
      req.headers.get('x-pirelay-tunnel-id') === t.id
        ? new Response('gone', { status: 404, headers: { 'x-pirelay-unknown-tunnel': '1' } })
        : new Response('new one', { status: 200 }),
    );
    // Cache the row, then replace the tunnel behind the cache's back (as another isolate would).
    expect((await visitWith(recordingEnv(() => new Response('ok')).env, t.name)).status).toBe(200);
    const fresh = 'f'.repeat(16);
    await env.DB.batch([
      env.DB.prepare('DELETE FROM tunnels WHERE id = ?1').bind(t.id),
      env.DB.prepare(
        `INSERT INTO tunnels (id, device_id, name, kind, target_host, target_port, access, connected, enabled, allow_clientless, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'http', '127.0.0.1', 80, 'public', 1, 1, 0, 1, 1)`,
      ).bind(fresh, device, t.name),
    ]);
    const res = await visitWith(e, t.name);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('new one');
    expect(seen.map((s) => s.request.headers.get('x-pirelay-tunnel-id'))).toEqual([t.id, fresh]);

    // Stale and really gone: one retry, then the relay's 404 page.
    const { env: e2, seen: seen2 } = recordingEnv(() => new Response('gone', { status: 404, headers: { 'x-pirelay-unknown-tunnel': '1' } }));
    await env.DB.prepare('DELETE FROM tunnels WHERE id = ?1').bind(fresh).run();
    const gone = await visitWith(e2, t.name);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-pirelay-error')).toBe('TUNNEL_NOT_FOUND');
    expect(seen2).toHaveLength(1);
  });

  it('passes a 404 from the target through untouched', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('t404') });
    const { env: e, seen } = recordingEnv(() => new Response('target says no', { status: 404 }));
    const res = await visitWith(e, t.name);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('target says no');
    expect(seen).toHaveLength(1);
  });

  it('answers 502 when the hub cannot be reached', async () => {
    const t = await makeTunnel(operator, device, { name: tunnelName('down') });
    const { env: e } = recordingEnv(() => {
      throw new Error('hub overloaded');
    });
    const res = await visitWith(e, t.name, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'TUNNEL_UNREACHABLE' });
  });
});


