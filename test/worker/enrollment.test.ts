// Enrollment tokens (create once-shown, list without secrets, revoke) and POST /api/v1/enroll
// with real Ed25519 keys: pending vs auto-approved, and every way a token can be refused.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../worker/auth/crypto.ts';
import { api, userWithKey } from './helpers.ts';
import { createToken, facts, keyPair } from './device-helpers.ts';

let admin: string;
let operator: string;
let viewer: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
});

async function enrollWith(token: string, over: Record<string, unknown> = {}) {
  const { publicJwk } = await keyPair();
  return api('/api/v1/enroll', { json: { token, public_key: publicJwk, facts: facts(), agent_version: '0.1.0', ...over } });
}

interface TokenView {
  id: string;
  name: string;
  prefix: string;
  auto_approve: boolean;
  device_id: string | null;
  max_uses: number | null;
  uses: number;
  state: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  token?: string;
}

async function tokens(): Promise<TokenView[]> {
  const res = await api('/api/v1/enrollment-tokens', { key: admin });
  expect(res.status).toBe(200);
  return ((await res.json()) as { enrollment_tokens: TokenView[] }).enrollment_tokens;
}

describe('enrollment tokens', () => {
  it('shows the secret once, stores only its SHA-256 and lists without it', async () => {
    const res = await api('/api/v1/enrollment-tokens', { key: admin, json: { name: 'lab', max_uses: 3, expires_in_hours: 2 } });
    expect(res.status).toBe(201);
    const created = (await res.json()) as TokenView;
    expect(created.token).toMatch(/^pre_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ name: 'lab', max_uses: 3, uses: 0, auto_approve: false, state: 'active', revoked_at: null, device_id: null });
    expect(created.token!.startsWith(created.prefix)).toBe(true);
    expect(created.prefix.length).toBeLessThan(16);
    const hours = (Date.parse(created.expires_at!) - Date.parse(created.created_at)) / 3_600_000;
    expect(hours).toBeCloseTo(2, 3);

    const row = await env.DB.prepare('SELECT * FROM enrollment_tokens WHERE id = ?1').bind(created.id).first<Record<string, unknown>>();
    expect(row!.token_hash).toBe(await sha256Hex(created.token!));
    expect(Object.values(row!)).not.toContain(created.token);

    const listed = (await tokens()).find((t) => t.id === created.id)!;
    expect(listed).toBeDefined();
    expect(listed.token).toBeUndefined();
    expect(JSON.stringify(listed)).not.toContain(created.token!.slice(16));
    expect(Object.keys(listed).sort()).toEqual(
      ['id', 'name', 'prefix', 'auto_approve', 'device_id', 'team_id', 'max_uses', 'uses', 'state', 'created_at', 'expires_at', 'revoked_at'].sort(),
    );
  });

  it('accepts expires_at and refuses bad bodies with 400', async () => {
    const at = new Date(Date.now() + 86_400_000).toISOString();
    const ok = await api('/api/v1/enrollment-tokens', { key: admin, json: { expires_at: at } });
    expect(ok.status).toBe(201);
    expect(((await ok.json()) as TokenView).expires_at).toBe(at);

    const bad: unknown[] = [
      { expires_in_hours: -1 },
      { expires_in_hours: 'soon' },
      { expires_in_hours: 1, expires_at: at },
      { expires_at: 'tomorrow' },
      { expires_at: new Date(Date.now() - 60_000).toISOString() },
      { max_uses: 0 },
      { max_uses: 1.5 },
      { auto_approve: 'yes' },
      { name: 'x'.repeat(65) },
      { surprise: true },
      [],
    ];
    for (const body of bad) {
      const res = await api('/api/v1/enrollment-tokens', { key: admin, json: body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'VALIDATION_ERROR', error: expect.any(String), details: expect.any(Object) });
    }
    const malformed = await api('/api/v1/enrollment-tokens', { key: admin, method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
  });

  it('is for admins only (devices:admin, and the admin role in the team)', async () => {
    for (const key of [operator, viewer]) expect((await api('/api/v1/enrollment-tokens', { key, json: {} })).status).toBe(403);
    expect((await api('/api/v1/enrollment-tokens', { json: {} })).status).toBe(401);
    const forbidden = await api('/api/v1/enrollment-tokens', { key: viewer });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ code: 'FORBIDDEN', details: { required: ['devices:admin'] } });
    // An operator holds devices:admin but is a plain member of the team: no token is made, and the
    // list shows only the tokens of teams they administer (none).
    const member = await api('/api/v1/enrollment-tokens', { key: operator, json: {} });
    expect(await member.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED', details: { role: 'member', required: 'admin' } });
    await createToken(admin);
    const listed = await api('/api/v1/enrollment-tokens', { key: operator });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ enrollment_tokens: [] });
  });

  it('revokes with DELETE, after which the token no longer enrolls', async () => {
    const token = await createToken(admin);
    const id = (await tokens()).find((t) => token.startsWith(t.prefix) && t.state === 'active')!.id;
    const member = await api(`/api/v1/enrollment-tokens/${id}`, { key: operator, method: 'DELETE' });
    expect(member.status).toBe(403);
    expect(await member.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED' });
    const res = await api(`/api/v1/enrollment-tokens/${id}`, { key: admin, method: 'DELETE' });
    expect(res.status).toBe(200);
    const revoked = (await res.json()) as TokenView;
    expect(revoked.state).toBe('revoked');
    expect(revoked.revoked_at).not.toBeNull();
    // Revoking again keeps the first revocation time.
    const again = (await (await api(`/api/v1/enrollment-tokens/${id}`, { key: admin, method: 'DELETE' })).json()) as TokenView;
    expect(again.revoked_at).toBe(revoked.revoked_at);

    const enroll = await enrollWith(token);
    expect(enroll.status).toBe(401);
    expect(await enroll.json()).toMatchObject({ code: 'INVALID_ENROLLMENT_TOKEN' });

    expect((await api('/api/v1/enrollment-tokens/0123456789abcdef', { key: admin, method: 'DELETE' })).status).toBe(404);
    expect((await api('/api/v1/enrollment-tokens/not-hex!', { key: admin, method: 'DELETE' })).status).toBe(400);
  });
});

describe('POST /api/v1/enroll', () => {
  it('registers a pending device with its real Ed25519 key and facts', async () => {
    const token = await createToken(admin);
    const { publicJwk } = await keyPair();
    const res = await api('/api/v1/enroll', { json: { token, public_key: publicJwk, facts: facts(), agent_version: '0.3.1' } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { device_id: string; name: string; status: string };
    expect(body).toEqual({ device_id: expect.stringMatching(/^[0-9a-f]{40}$/), name: 'raspberrypi', status: 'pending' });

    const row = await env.DB.prepare('SELECT * FROM devices WHERE id = ?1').bind(body.device_id).first<Record<string, unknown>>();
    expect(JSON.parse(row!.public_key as string)).toEqual(publicJwk);
    expect(row).toMatchObject({
      status: 'pending',
      hostname: 'raspberrypi',
      serial: '10000000389253E6',
      hardware: 'Pi4 Model B',
      os: 'Linux',
      os_version: 'debian 11.2',
      architecture: 'aarch64',
      mac: 'b8:27:eb:2a:7f:c1',
      agent_version: '0.3.1',
      approved_at: null,
      online: 0,
    });
    const t = (await tokens()).find((x) => token.startsWith(x.prefix))!;
    expect(t.uses).toBe(1);
    expect(row!.enrollment_token_id).toBe(t.id);
  });

  it('approves at once with an auto-approve token, and uses the name asked for', async () => {
    const token = await createToken(admin, { auto_approve: true });
    const res = await enrollWith(token, { name: 'Kitchen Pi' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { device_id: string; name: string; status: string };
    expect(body).toMatchObject({ name: 'Kitchen Pi', status: 'approved' });
    const row = await env.DB.prepare('SELECT approved_at FROM devices WHERE id = ?1').bind(body.device_id).first<{ approved_at: number | null }>();
    expect(row!.approved_at).toEqual(expect.any(Number));
  });

  it('refuses unknown, expired and used-up tokens with clear 401s', async () => {
    const unknown = await enrollWith('pre_thisTokenWasNeverIssued000000000000000');
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ code: 'INVALID_ENROLLMENT_TOKEN', error: expect.any(String), details: {} });

    const expiring = await createToken(admin, { expires_in_hours: 1 });
    await env.DB.prepare('UPDATE enrollment_tokens SET expires_at = ?1 WHERE token_hash = ?2').bind(Date.now() - 1000, await sha256Hex(expiring)).run();
    const expired = await enrollWith(expiring);
    expect(expired.status).toBe(401);
    expect(await expired.json()).toMatchObject({ code: 'ENROLLMENT_TOKEN_EXPIRED' });
    expect((await tokens()).find((t) => expiring.startsWith(t.prefix))!.state).toBe('expired');

    const once = await createToken(admin, { max_uses: 1 });
    expect((await enrollWith(once)).status).toBe(201);
    const second = await enrollWith(once);
    expect(second.status).toBe(401);
    expect(await second.json()).toMatchObject({ code: 'ENROLLMENT_TOKEN_EXHAUSTED', details: { max_uses: 1 } });
    const t = (await tokens()).find((x) => once.startsWith(x.prefix))!;
    expect(t).toMatchObject({ uses: 1, state: 'used_up' });
  });

  it('never lets concurrent enrollments exceed max_uses', async () => {
    const token = await createToken(admin, { max_uses: 2 });
    const results = await Promise.all(Array.from({ length: 6 }, () => enrollWith(token)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 401, 401, 401, 401]);
    const count = await env.DB.prepare('SELECT COUNT(*) AS n FROM devices WHERE enrollment_token_id = (SELECT id FROM enrollment_tokens WHERE token_hash = ?1)')
      .bind(await sha256Hex(token))
      .first<{ n: number }>();
    expect(count!.n).toBe(2);
  });

  it('refuses a bad public key or bad facts with 400, without spending a use', async () => {
    const token = await createToken(admin, { max_uses: 1 });
    const { publicJwk } = await keyPair();
    const good = { token, public_key: publicJwk, facts: facts(), agent_version: '0.1.0' };
    const bad: Record<string, unknown>[] = [
      { ...good, public_key: { ...publicJwk, kty: 'EC' } },
      { ...good, public_key: { ...publicJwk, crv: 'X25519' } },
      { ...good, public_key: { ...publicJwk, x: publicJwk.x.slice(1) } },
      { ...good, public_key: { ...publicJwk, x: `${publicJwk.x.slice(0, 42)}+` } },
      { ...good, public_key: 'not a key' },
      { ...good, facts: { ...facts(), hostname: undefined } },
      { ...good, facts: { ...facts(), serial: 'x'.repeat(65) } },
      { ...good, facts: { ...facts(), os: 42 } },
      { ...good, agent_version: 'v'.repeat(65) },
      { ...good, name: '' },
      { ...good, token: 'short' },
      { public_key: publicJwk, facts: facts(), agent_version: '0.1.0' },
    ];
    for (const body of bad) {
      const res = await api('/api/v1/enroll', { json: body });
      expect(res.status, JSON.stringify(body).slice(0, 120)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    const notJson = await api('/api/v1/enroll', { method: 'POST', headers: { 'content-type': 'application/json' }, json: undefined });
    expect(notJson.status).toBe(400);
    // None of that spent the single use.
    expect((await api('/api/v1/enroll', { json: good })).status).toBe(201);
  });

  it('falls back to a generated name when the hostname is empty and truncates long ones', async () => {
    const token = await createToken(admin);
    const { publicJwk } = await keyPair();
    const res = await api('/api/v1/enroll', { json: { token, public_key: publicJwk, facts: facts({ hostname: '' }), agent_version: '0.1.0' } });
    const body = (await res.json()) as { device_id: string; name: string };
    expect(body.name).toBe(`device-${body.device_id.slice(0, 8)}`);
    const long = await enrollWith(token, { facts: facts({ hostname: 'h'.repeat(100) }) });
    expect(((await long.json()) as { name: string }).name).toBe('h'.repeat(64));
  });

  it('is documented in openapi.json with the token routes', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/enroll']!)).toContain('post');
    expect(Object.keys(doc.paths['/api/v1/enrollment-tokens']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/enrollment-tokens/{id}']!)).toContain('delete');
  });
});
