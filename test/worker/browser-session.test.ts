// A browser's session: asked for with session_cookie, the token comes only as the __Host- cookie
// (HttpOnly, Secure, SameSite=Strict), never in the body; the cookie then authenticates; a
// request that changes something on the strength of the cookie must carry the relay's own
// Origin (CSRF), while a credential in Authorization needs none; logout ends it and clears it.
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../shared/api/auth.ts';
import { BASE } from './helpers.ts';
import { expectError, freshIp, userWithPassword } from './auth-helpers.ts';

const ORIGIN = new URL(BASE).origin;

async function browserLogin(roles = ['operator']) {
  const u = await userWithPassword(roles);
  const res = await SELF.fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': freshIp(), origin: ORIGIN },
    body: JSON.stringify({ username: u.username, password: u.password, session_cookie: true }),
  });
  expect(res.status).toBe(200);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const token = new RegExp(`^${SESSION_COOKIE}=([^;]+)`).exec(setCookie)?.[1] ?? '';
  return { ...u, res, setCookie, token, body: (await res.json()) as Record<string, unknown>, cookie: `${SESSION_COOKIE}=${token}` };
}

const withCookie = (cookie: string, path: string, init: { method?: string; origin?: string | null; json?: unknown; headers?: Record<string, string> } = {}) =>
  SELF.fetch(`${BASE}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      cookie,
      ...(init.origin === null ? {} : { origin: init.origin ?? ORIGIN }),
      ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
  });

describe('a browser session', () => {
  it('comes as a __Host- cookie, HttpOnly, Secure, SameSite=Strict, and never in the body', async () => {
    const s = await browserLogin();
    expect(s.token.split('.')).toHaveLength(3);
    for (const attr of ['Path=/', 'HttpOnly', 'Secure', 'SameSite=Strict']) expect(s.setCookie).toContain(attr);
    expect(s.setCookie).toMatch(/Max-Age=\d+/);
    expect(s.setCookie).not.toMatch(/Domain=/i);
    expect(s.body.token).toBeUndefined();
    expect(JSON.stringify(s.body)).not.toContain(s.token);
    expect((s.body.user as { username: string }).username).toBe(s.username);
    // Without session_cookie a login answers with the token, as before, and sets no cookie.
    const plain = await SELF.fetch(`${BASE}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'cf-connecting-ip': freshIp() },
      body: JSON.stringify({ username: s.username, password: s.password }),
    });
    expect(plain.headers.get('set-cookie')).toBeNull();
    expect(typeof ((await plain.json()) as { token?: string }).token).toBe('string');
  });

  it('authenticates reads by the cookie alone, and changes only with the relay own Origin', async () => {
    const s = await browserLogin();
    const me = await withCookie(s.cookie, '/api/v1/auth/me', { origin: null });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { username: string }).username).toBe(s.username);

    const change = { name: 'Browser User' };
    await expectError(await withCookie(s.cookie, '/api/v1/auth/me', { method: 'PUT', json: change, origin: null }), 403, 'CSRF_REJECTED');
    await expectError(await withCookie(s.cookie, '/api/v1/auth/me', { method: 'PUT', json: change, origin: 'https://evil.example' }), 403, 'CSRF_REJECTED');
    await expectError(await withCookie(s.cookie, '/api/v1/auth/me', { method: 'PUT', json: change, origin: 'null' }), 403, 'CSRF_REJECTED');
    await expectError(await withCookie(s.cookie, '/api/v1/auth/me', { method: 'PUT', json: change, origin: `${ORIGIN}.evil.example` }), 403, 'CSRF_REJECTED');
    // Nothing changed.
    expect(((await (await withCookie(s.cookie, '/api/v1/auth/me')).json()) as { name: string }).name).not.toBe('Browser User');
    const ok = await withCookie(s.cookie, '/api/v1/auth/me', { method: 'PUT', json: change });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { name: string }).name).toBe('Browser User');
    // The dashboard's live stream works on the cookie (SSE is a read: no Origin needed).
    const stream = await withCookie(s.cookie, '/api/v1/stream', { origin: null });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    await stream.body?.cancel();
    // A WebSocket opened with the cookie is a change of state too: another origin is refused before any upgrade.
    await expectError(await withCookie(s.cookie, '/api/v1/stream', { origin: 'https://evil.example', headers: { upgrade: 'websocket' } }), 403, 'CSRF_REJECTED');
  });

  it('needs no Origin with a credential in Authorization (no browser sends that by itself)', async () => {
    const s = await browserLogin();
    const res = await SELF.fetch(`${BASE}/api/v1/auth/me`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', origin: 'https://elsewhere.example' },
      body: JSON.stringify({ name: 'Script' }),
    });
    expect(res.status).toBe(200);
  });

  it('ends at logout: the cookie is cleared and the old value is refused', async () => {
    const s = await browserLogin();
    await expectError(await withCookie(s.cookie, '/api/v1/auth/logout', { method: 'POST', origin: 'https://evil.example' }), 403, 'CSRF_REJECTED');
    expect((await withCookie(s.cookie, '/api/v1/auth/me')).status).toBe(200);
    const out = await withCookie(s.cookie, '/api/v1/auth/logout', { method: 'POST' });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`));
    await expectError(await withCookie(s.cookie, '/api/v1/auth/me'), 401, 'UNAUTHORIZED');
  });
});
