// The tunnel pieces that need no network, tested as plain functions: target parsing, which Host
// is a tunnel, each access mode's decision, the request forwarded to the hub (what is stripped
// and what is added), and the visitor error pages.
import { describe, expect, it } from 'vitest';
import { formatTarget, parseTarget } from '../../shared/api/tunnels.ts';
import { hashPassword } from '../../worker/auth/password.ts';
import { sha256Hex } from '../../worker/auth/crypto.ts';
import type { Principal } from '../../worker/auth/principal.ts';
import { parseBasic } from '../../worker/auth/basic.ts';
import { BasicMemo, checkTunnelAccess, type TunnelAccessRow } from '../../worker/tunnels/access.ts';
import { buildForwardRequest, buildHttpVisit, hasLoopToken } from '../../worker/tunnels/forward.ts';
import { INTERNAL, type VisitHead } from '../../durable-objects/hub/contract.ts';
import { isRelayAuthorization, withoutSessionCookie } from '../../worker/tunnels/credential.ts';
import { cookieValue } from '../../worker/auth/cookies.ts';
import { SESSION_COOKIE } from '../../shared/api/auth.ts';
import { SESSION_AUDIENCE } from '../../worker/auth/principal.ts';
import { streamFailure } from '../../durable-objects/capabilities/tunnels/proxy.ts';
import { StreamResetError } from '../../shared/protocol/mux.ts';
import { clientIpOf } from '../../worker/client-ip.ts';
import { tunnelDomain, tunnelNameFromHost } from '../../worker/tunnels/ingress.ts';
import { prefersJson, visitorError } from '../../shared/http-pages.ts';
import { publicUrl } from '../../worker/tunnels/present.ts';
import { RateWindow } from '../../worker/tunnels/rate-window.ts';
import { basicAuth } from './tunnels-helpers.ts';

describe('targets', () => {
  it('parses host:port for IPv4, [IPv6] and hostnames, and refuses the rest', () => {
    expect(parseTarget('127.0.0.1:8080')).toEqual({ target_host: '127.0.0.1', target_port: 8080 });
    expect(parseTarget('192.168.1.50:8000')).toEqual({ target_host: '192.168.1.50', target_port: 8000 });
    expect(parseTarget('[fe80::1]:443')).toEqual({ target_host: 'fe80::1', target_port: 443 });
    expect(parseTarget('NAS.Local:65535')).toEqual({ target_host: 'nas.local', target_port: 65535 });
    for (const bad of ['127.0.0.1', '127.0.0.1:', '256.0.0.1:80', '1.2.3:80', 'fe80::1:443', '[nope]:1', 'a_b:80', 'x:0', 'x:65536', 'x:-1', '-x:80']) {
      expect(parseTarget(bad), bad).toBeNull();
    }
    expect(formatTarget('::1', 22)).toBe('[::1]:22');
    expect(formatTarget('10.0.0.1', 22)).toBe('10.0.0.1:22');
  });
});

describe('Host routing', () => {
  const name = (url: string, domain = 'localhost') => tunnelNameFromHost(new URL(url), domain);

  it('takes <label>.<domain> on any port as a tunnel, and nothing else', () => {
    expect(name('http://myapp.localhost/x')).toBe('myapp');
    expect(name('http://myapp.localhost:8787/x')).toBe('myapp');
    expect(name('https://MyApp.Example.com/', 'example.com')).toBe('myapp');
    expect(name('http://localhost:8787/')).toBeNull();
    expect(name('http://relay.test/')).toBeNull();
    expect(name('http://a.b.localhost/')).toBeNull();
    expect(name('http://myapp.localhost.evil.com/')).toBeNull();
    expect(name('http://xlocalhost/')).toBeNull();
    expect(name('https://example.com/', 'example.com')).toBeNull();
  });

  it('leaves reserved labels (api., www., relay., admin.) to the relay itself', () => {
    for (const label of ['api', 'www', 'relay', 'admin']) expect(name(`http://${label}.localhost/`), label).toBeNull();
  });

  it('defaults TUNNEL_DOMAIN to localhost and normalizes it', () => {
    expect(tunnelDomain({ TUNNEL_DOMAIN: '' })).toBe('localhost');
    expect(tunnelDomain({ TUNNEL_DOMAIN: '.Tunnels.Example.com.' })).toBe('tunnels.example.com');
  });

  it('builds public URLs: https without a port under a real domain, the caller\'s scheme and port under localhost', () => {
    const t = { name: 'myapp', kind: 'http' as const };
    expect(publicUrl(t, { requestUrl: new URL('http://relay.localhost:8787/api'), domain: 'localhost' })).toBe('http://myapp.localhost:8787');
    expect(publicUrl(t, { requestUrl: new URL('http://relay.example.com:8080/api'), domain: 'example.com' })).toBe('https://myapp.example.com');
    expect(publicUrl({ name: 'ssh', kind: 'tcp' }, { requestUrl: new URL('https://relay.example.com/api'), domain: 'example.com' })).toBe(
      'wss://relay.example.com/api/v1/tunnels/ssh/connect',
    );
  });
});

function tunnelRow(over: Partial<TunnelAccessRow> = {}): TunnelAccessRow {
  return { id: 'tid', name: 'myapp', access: 'public', basicUser: null, basicPasswordHash: null, bearerTokenHash: null, updatedAt: 1, deviceTeamId: 'team-a', ...over };
}

/** A principal of team-a (the tunnels' team) unless `teams` says otherwise. */
const principal = (permissions: string[], teams: Principal['teams'] = { 'team-a': { role: 'member', require2fa: false } }, twoFactor = false): Principal => ({
  kind: 'api_key',
  userId: 'u',
  username: 'u',
  roles: [],
  permissions,
  apiKeyId: 'k',
  expiresAt: null,
  teams,
  twoFactor,
});

const noPrincipal = async () => null;
const headers = (h: Record<string, string>) => new Headers(h);

describe('access decisions', () => {
  it('public lets everyone in and keeps their Authorization', async () => {
    expect(await checkTunnelAccess(tunnelRow(), headers({}), { principal: noPrincipal })).toEqual({ allow: true, stripAuthorization: false });
    expect(await checkTunnelAccess(tunnelRow(), headers({ authorization: 'Basic eDp5' }), { principal: noPrincipal })).toEqual({ allow: true, stripAuthorization: false });
  });

  it('basic checks user and password against the PBKDF2 hash and challenges otherwise', async () => {
    const t = tunnelRow({ access: 'basic', basicUser: 'alice', basicPasswordHash: await hashPassword('s3cret pass') });
    const ok = await checkTunnelAccess(t, headers({ authorization: basicAuth('alice', 's3cret pass') }), { principal: noPrincipal });
    expect(ok).toEqual({ allow: true, stripAuthorization: true });
    for (const h of [{} as Record<string, string>, { authorization: basicAuth('alice', 'wrong') }, { authorization: basicAuth('bob', 's3cret pass') }, { authorization: 'Bearer x' }, { authorization: 'Basic !!!' }]) {
      const no = await checkTunnelAccess(t, headers(h), { principal: noPrincipal });
      expect(no, JSON.stringify(h)).toMatchObject({ allow: false, status: 401, challenge: 'Basic realm="myapp", charset="UTF-8"' });
    }
    expect(parseBasic(basicAuth('a', 'p:q'))).toEqual({ user: 'a', password: 'p:q' });
    expect(parseBasic(`Basic ${btoa('nocolon')}`)).toBeNull();
  });

  it('remembers a good Basic check until the tunnel changes, and never a bad one', async () => {
    const memo = new BasicMemo(60_000);
    const t = tunnelRow({ access: 'basic', basicUser: 'alice', basicPasswordHash: await hashPassword('s3cret pass') });
    const good = headers({ authorization: basicAuth('alice', 's3cret pass') });
    expect((await checkTunnelAccess(t, good, { principal: noPrincipal, basicMemo: memo, now: 1000 })).allow).toBe(true);
    // With the hash gone, only the memo can let this in: proof that it is used, and scoped.
    const hashless = { ...t, basicPasswordHash: null };
    expect((await checkTunnelAccess(hashless, good, { principal: noPrincipal, basicMemo: memo, now: 2000 })).allow).toBe(true);
    expect((await checkTunnelAccess({ ...hashless, updatedAt: 2 }, good, { principal: noPrincipal, basicMemo: memo, now: 2000 })).allow).toBe(false);
    expect((await checkTunnelAccess({ ...hashless, id: 'other' }, good, { principal: noPrincipal, basicMemo: memo, now: 2000 })).allow).toBe(false);
    expect((await checkTunnelAccess(hashless, good, { principal: noPrincipal, basicMemo: memo, now: 62_000 })).allow).toBe(false);
    const bad = headers({ authorization: basicAuth('alice', 'nope') });
    await checkTunnelAccess(t, bad, { principal: noPrincipal, basicMemo: memo, now: 1000 });
    expect((await checkTunnelAccess(t, bad, { principal: noPrincipal, basicMemo: memo, now: 1001 })).allow).toBe(false);
  });

  it('bearer compares the token\'s SHA-256', async () => {
    const t = tunnelRow({ access: 'bearer', bearerTokenHash: await sha256Hex('ptt_good') });
    expect(await checkTunnelAccess(t, headers({ authorization: 'Bearer ptt_good' }), { principal: noPrincipal })).toEqual({ allow: true, stripAuthorization: true });
    const wrong = await checkTunnelAccess(t, headers({ authorization: 'Bearer ptt_bad' }), { principal: noPrincipal });
    expect(wrong).toMatchObject({ allow: false, status: 401, challenge: 'Bearer realm="myapp", error="invalid_token"' });
    expect(await checkTunnelAccess(t, headers({}), { principal: noPrincipal })).toMatchObject({ allow: false, status: 401, challenge: 'Bearer realm="myapp"' });
    expect(await checkTunnelAccess(tunnelRow({ access: 'bearer' }), headers({ authorization: 'Bearer ptt_good' }), { principal: noPrincipal })).toMatchObject({ allow: false });
  });

  it('pirelay wants a credential with tunnels:use, from Authorization or the __Host-pirelay_session cookie', async () => {
    const t = tunnelRow({ access: 'pirelay' });
    const known: Record<string, Principal> = { prk_op: principal(['tunnels:*']), prk_view: principal(['tunnels:read']), 'a.b.c': principal(['*']) };
    const deps = { principal: async (c: string) => known[c] ?? null };
    expect(await checkTunnelAccess(t, headers({}), deps)).toMatchObject({ allow: false, status: 401, challenge: 'Bearer realm="pirelay"' });
    expect(await checkTunnelAccess(t, headers({ authorization: 'Bearer prk_nope' }), deps)).toMatchObject({ allow: false, status: 401 });
    expect(await checkTunnelAccess(t, headers({ authorization: 'Bearer prk_view' }), deps)).toMatchObject({ allow: false, status: 403 });
    expect(await checkTunnelAccess(t, headers({ authorization: 'Bearer prk_op' }), deps)).toMatchObject({ allow: true, stripAuthorization: true });
    expect(await checkTunnelAccess(t, headers({ authorization: `Basic ${btoa('prk_op:')}` }), deps)).toMatchObject({ allow: true, stripAuthorization: true });
    // A session cookie lets the visitor in and leaves an Authorization meant for the target alone.
    const viaCookie = await checkTunnelAccess(t, headers({ cookie: 'theme=dark; __Host-pirelay_session=a.b.c', authorization: 'Basic dTpw' }), deps);
    expect(viaCookie).toMatchObject({ allow: true, stripAuthorization: false });
  });

  it("pirelay refuses someone outside the device's team exactly as it refuses no credential", async () => {
    const t = tunnelRow({ access: 'pirelay' });
    const twoFactorTeam = { 'team-a': { role: 'admin' as const, require2fa: true } };
    const known: Record<string, Principal> = {
      prk_other: principal(['tunnels:*'], { 'team-b': { role: 'owner', require2fa: false } }),
      prk_no2fa: principal(['tunnels:*'], twoFactorTeam),
      prk_2fa: principal(['tunnels:*'], twoFactorTeam, true),
      prk_instance: principal(['*'], {}),
    };
    const deps = { principal: async (c: string) => known[c] ?? null };
    const nothing = await checkTunnelAccess(t, headers({}), deps);
    for (const key of ['prk_other', 'prk_no2fa']) {
      expect(await checkTunnelAccess(t, headers({ authorization: `Bearer ${key}` }), deps), key).toEqual(nothing);
    }
    expect(await checkTunnelAccess(t, headers({ authorization: 'Bearer prk_2fa' }), deps)).toMatchObject({ allow: true });
    expect(await checkTunnelAccess(t, headers({ authorization: 'Bearer prk_instance' }), deps)).toMatchObject({ allow: true });
  });
});

describe('the request forwarded to the hub', () => {
  const tunnel = { id: 'tun123' };

  it('strips relay credentials and internal headers, drops hop-by-hop headers and adds X-Forwarded-*', async () => {
    const req = new Request('https://myapp.example.com/path?q=1', {
      method: 'POST',
      headers: {
        host: 'myapp.example.com',
        authorization: 'Bearer ptt_secret',
        cookie: 'a=1; pirelay_session=jwt.jwt.jwt; b=2',
        'x-pirelay-kind': 'agent',
        'x-pirelay-device-id': 'someone-else',
        'X-Pirelay-Tunnel-Id': 'forged',
        connection: 'keep-alive, X-Custom-Hop',
        'x-custom-hop': 'bye',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic cDpw',
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-proto': 'gopher',
        'x-forwarded-host': 'evil.example',
        'content-type': 'text/plain',
        'x-app': 'kept',
      },
      body: 'hello body',
    });
    const out = buildForwardRequest(req, tunnel, '203.0.113.7', { stripAuthorization: true });
    const h = Object.fromEntries([...(out.headers as unknown as Iterable<[string, string]>)]);
    expect(h).toEqual({
      host: 'myapp.example.com',
      cookie: 'a=1; b=2',
      'x-forwarded-for': '10.0.0.1, 203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'myapp.example.com',
      'content-type': 'text/plain',
      'x-app': 'kept',
      'cdn-loop': 'pirelay',
      'x-pirelay-kind': 'tunnel-http',
      'x-pirelay-tunnel-id': 'tun123',
    });
    expect(out.url).toBe('https://myapp.example.com/path?q=1');
    expect(out.method).toBe('POST');
    expect(out.redirect).toBe('manual');
    expect(await out.text()).toBe('hello body');
  });

  it('keeps a WebSocket upgrade, an Authorization the tunnel did not use, and drops a lone session cookie', () => {
    const req = new Request('http://myapp.localhost:8787/ws', {
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'abc', authorization: 'Basic dTpw', cookie: 'pirelay_session=x.y.z' },
    });
    const out = buildForwardRequest(req, tunnel, 'unknown', { kind: 'tunnel-http' });
    expect(out.headers.get('upgrade')).toBe('websocket');
    expect(out.headers.get('connection')).toBeNull();
    expect(out.headers.get('sec-websocket-key')).toBe('abc');
    expect(out.headers.get('authorization')).toBe('Basic dTpw');
    expect(out.headers.get('cookie')).toBeNull();
    expect(out.headers.get('x-forwarded-for')).toBe('unknown');
    expect(out.headers.get('x-forwarded-proto')).toBe('http');
    expect(out.headers.get('x-forwarded-host')).toBe('myapp.localhost:8787');
    expect(out.body).toBeNull();
  });

  it('never passes on a relay API key, even to a public tunnel', () => {
    for (const authorization of ['Bearer prk_abc', `Basic ${btoa('prk_abc:')}`]) {
      const out = buildForwardRequest(new Request('http://x.localhost/', { headers: { authorization } }), tunnel, '1.2.3.4');
      expect(out.headers.get('authorization'), authorization).toBeNull();
    }
  });

  it('marks TCP connects as tunnel-tcp and can point the hub at another URL', () => {
    const out = buildForwardRequest(new Request('http://relay.test/api/v1/tunnels/ssh/connect?api_key=prk_x', { headers: { upgrade: 'websocket' } }), tunnel, '1.2.3.4', {
      kind: 'tunnel-tcp',
      url: 'http://relay.test/api/v1/tunnels/ssh/connect',
    });
    expect(out.headers.get('x-pirelay-kind')).toBe('tunnel-tcp');
    expect(out.url).not.toContain('api_key');
  });

  it('streams the body instead of reading it', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new TextEncoder().encode('chunk'));
        if (pulled === 3) controller.close();
      },
    });
    const req = new Request('http://x.localhost/upload', { method: 'PUT', body, duplex: 'half' } as RequestInit);
    const out = buildForwardRequest(req, tunnel, '1.2.3.4');
    expect(pulled).toBeLessThanOrEqual(1);
    expect(await out.text()).toBe('chunkchunkchunk');
  });

  it('reads the client IP from CF-Connecting-IP only behind the edge, else the local relay\'s LOCAL_CLIENT_IP, else says unknown; cookie filtering keeps look-alikes', () => {
    const spoofed = () => new Request('http://x/', { headers: { 'cf-connecting-ip': '198.51.100.2' } });
    const edge = { TRUST_CF_CONNECTING_IP: 'true', LOCAL_CLIENT_IP: '127.0.0.1' };
    const local = { TRUST_CF_CONNECTING_IP: 'false', LOCAL_CLIENT_IP: '127.0.0.1' };
    expect(clientIpOf(spoofed(), edge)).toBe('198.51.100.2');
    expect(clientIpOf(new Request('http://x/'), edge)).toBe('127.0.0.1');
    expect(clientIpOf(spoofed(), local)).toBe('127.0.0.1');
    expect(clientIpOf(spoofed(), { LOCAL_CLIENT_IP: '127.0.0.1' })).toBe('127.0.0.1');
    expect(clientIpOf(spoofed(), {})).toBe('unknown');
    expect(clientIpOf(new Request('http://x/'), {})).toBe('unknown');
    expect(withoutSessionCookie('pirelay_session_x=1; pirelay_session=2; xpirelay_session=3')).toBe('pirelay_session_x=1; xpirelay_session=3');
  });
});

describe('visitor pages and counters', () => {
  it('answers HTML unless JSON is preferred', async () => {
    expect(prefersJson('application/json')).toBe(true);
    expect(prefersJson('text/html,application/json;q=0.9')).toBe(false);
    expect(prefersJson('application/json, text/html;q=0.5')).toBe(true);
    expect(prefersJson('*/*')).toBe(false);
    expect(prefersJson(null)).toBe(false);
    const html = visitorError(new Request('http://x/'), 404, 'TUNNEL_NOT_FOUND', 'No <tunnel>');
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await html.text()).toContain('No &#60;tunnel&#62;');
    const json = visitorError(new Request('http://x/', { headers: { accept: 'application/json' } }), 401, 'UNAUTHORIZED', 'no', { 'www-authenticate': 'Basic' });
    expect(await json.json()).toEqual({ error: 'no', code: 'UNAUTHORIZED', details: {} });
    expect(json.headers.get('www-authenticate')).toBe('Basic');
  });

  it('counts calls per key in fixed windows', () => {
    const w = new RateWindow(2, 60_000);
    expect(w.hit('a', 0)).toBe(0);
    expect(w.hit('a', 1)).toBe(0);
    expect(w.hit('a', 2)).toBe(60);
    expect(w.hit('b', 2)).toBe(0);
    expect(w.hit('a', 59_500)).toBe(1);
    expect(w.hit('a', 60_000)).toBe(0);
  });
});

describe('tunnel hardening', () => {
  const tunnel = { id: 'tun123' };
  const jwt = (payload: object) => `${btoa('{"alg":"HS256"}').replace(/=/g, '')}.${btoa(JSON.stringify(payload)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '')}.c2ln`;

  it('passes on a Content-Length only alone and valid; beside Transfer-Encoding it frames nothing we hand on', () => {
    const head = (headers: Record<string, string>) => {
      const visit = buildHttpVisit(new Request('http://a.localhost/', { method: 'POST', headers, body: 'hello' }), new URL('http://a.localhost/'), tunnel, '1.2.3.4');
      return (JSON.parse(visit.headers.get(INTERNAL.head)!) as VisitHead).headers.filter(([n]) => n === 'content-length' || n === 'transfer-encoding');
    };
    expect(head({ 'content-length': '5' })).toEqual([['content-length', '5']]);
    expect(head({ 'content-length': '5', 'transfer-encoding': 'chunked' })).toEqual([]);
    expect(head({ 'content-length': '0000000000000005' })).toEqual([]);
  });

  it('strips an Authorization holding a relay session (Bearer or Basic user) or API key, and keeps an app\'s own JWT', () => {
    const session = jwt({ sub: 'u', aud: SESSION_AUDIENCE, iss: 'pirelay' });
    for (const authorization of [`Bearer ${session}`, `Basic ${btoa(`${session}:`)}`, `Basic ${btoa('prk_abc:x')}`, 'Bearer prk_abc']) {
      expect(isRelayAuthorization(authorization), authorization).toBe(true);
      expect(buildForwardRequest(new Request('http://x.localhost/', { headers: { authorization } }), tunnel, '1.2.3.4').headers.get('authorization'), authorization).toBeNull();
    }
    for (const authorization of [`Bearer ${jwt({ sub: 'u', aud: 'my-app' })}`, 'Bearer a.b.c', 'Basic dTpw', 'Bearer opaque']) {
      expect(isRelayAuthorization(authorization), authorization).toBe(false);
    }
  });

  it('parses cookies on ";" and on the ", " two Cookie headers are joined with, and drops either name of the relay\'s cookie', () => {
    expect(withoutSessionCookie('a=1, __Host-pirelay_session=x.y.z; b=2, pirelay_session=q')).toBe('a=1; b=2');
    expect(withoutSessionCookie('app=a,b')).toBe('app=a,b');
    expect(cookieValue('a=1, __Host-pirelay_session=x.y.z', SESSION_COOKIE)).toBe('x.y.z');
    expect(cookieValue('pirelay_session=x.y.z', SESSION_COOKIE)).toBeNull();
  });

  it('appends its CDN-Loop token to the list and recognises it among others', () => {
    const out = buildForwardRequest(new Request('http://x.localhost/', { headers: { 'cdn-loop': 'cloudflare; loops=1' } }), tunnel, '1.2.3.4');
    expect(out.headers.get('cdn-loop')).toBe('cloudflare; loops=1, pirelay');
    expect(hasLoopToken('cloudflare, PIRELAY; v=1')).toBe(true);
    expect(hasLoopToken('pirelay-other, cloudflare')).toBe(false);
    expect(hasLoopToken(null)).toBe(false);
  });

  it('answers an agent\'s BAD_REQUEST with 400, and shows a reset reason bounded and escaped', async () => {
    const json = streamFailure(new Request('http://x/', { headers: { accept: 'application/json' } }), new StreamResetError('BAD_REQUEST', 'method TRACE is not allowed'));
    expect(json.status).toBe(400);
    expect(((await json.json()) as { code: string }).code).toBe('BAD_REQUEST');
    const page = streamFailure(new Request('http://x/'), new StreamResetError('TARGET_ERROR', `<script>${'x'.repeat(2000)}</script>`));
    expect(page.status).toBe(502);
    const html = await page.text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&#60;script&#62;');
    expect(html).not.toContain('x'.repeat(501));
    expect(html).toContain(`${'x'.repeat(492)}…`);
  });
});
