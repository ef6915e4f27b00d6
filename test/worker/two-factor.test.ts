// Two-factor login through HTTP: enrol → confirm → the login's second step → recovery codes →
// disable, and the attacks on it: a reused code, a reused or expired challenge, guessing codes
// (the login throttle and the challenge's own limit), a narrowed key, a secret leaking into an
// answer, a row or the audit log. Codes are computed from the secret enrolment returns.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../worker/auth/crypto.ts';
import { timeStep, totpCode } from '../../worker/auth/totp.ts';
import { LOGIN_CHALLENGE_MAX_ATTEMPTS, LOGIN_CHALLENGE_TTL_MS, spendSecondFactor } from '../../worker/routes/two-factor.ts';
import { getDb, schema } from '../../shared/db/index.ts';
import { eq } from 'drizzle-orm';
import { api } from './helpers.ts';
import { expectError, freshIp, login, sessionUser } from './auth-helpers.ts';

const post = (path: string, key: string | undefined, json: unknown = {}, ip = freshIp()) => api(path, { key, json, headers: { 'cf-connecting-ip': ip } });
const me = async (token: string) => (await (await api('/api/v1/auth/me', { key: token })).json()) as Record<string, unknown>;

/** An authenticator app that hands out each step's code once, in order, within the ±1 window of now. */
function authenticator(secret: string) {
  let last = -Infinity;
  return {
    async next(): Promise<string> {
      const now = timeStep(Date.now());
      const step = Math.max(now - 1, last + 1);
      if (step > now + 1) throw new Error('the test used up the steps of the window');
      last = step;
      return totpCode(secret, step);
    },
    /** A well-formed code no step near now has. */
    async wrong(): Promise<string> {
      const now = timeStep(Date.now());
      const near = new Set(await Promise.all([-2, -1, 0, 1, 2, 3].map((d) => totpCode(secret, now + d))));
      let n = 0;
      while (near.has(String(n).padStart(6, '0'))) n++;
      return String(n).padStart(6, '0');
    },
  };
}

async function enrol(token: string) {
  const res = await post('/api/v1/auth/2fa/enrol', token);
  expect(res.status).toBe(200);
  return (await res.json()) as { secret: string; otpauth_uri: string };
}

/** A logged-in user with two-factor login on. */
async function withTwoFactor(roles = ['viewer']) {
  const s = await sessionUser(roles);
  const { secret } = await enrol(s.token);
  const app = authenticator(secret);
  const res = await post('/api/v1/auth/2fa/confirm', s.token, { code: await app.next() });
  expect(res.status).toBe(200);
  const { recovery_codes } = (await res.json()) as { recovery_codes: string[] };
  return { ...s, secret, app, recoveryCodes: recovery_codes };
}

async function challengeOf(u: { username: string; password: string }, ip = freshIp()): Promise<string> {
  const res = await login(u.username, u.password, ip);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { two_factor_required?: boolean; challenge: string };
  expect(body.two_factor_required).toBe(true);
  return body.challenge;
}

const secondStep = (body: Record<string, unknown>, ip = freshIp()) => post('/api/v1/auth/login/2fa', undefined, body, ip);

const auditOf = async (userId: string) =>
  (
    await env.DB.prepare('SELECT * FROM audit_log WHERE actor_id = ?1 OR target_id = ?1 ORDER BY id').bind(userId).all<{
      action: string;
      actor_id: string | null;
      actor_name: string;
      details: string | null;
    }>()
  ).results;

describe('two-factor login, the whole way', () => {
  it('enrol → confirm → login needs the code → a code once → a recovery code once → disable with a code', async () => {
    const s = await sessionUser(['operator']);
    const answers: string[] = [];
    const call = async (path: string, key: string | undefined, json: unknown, ip = freshIp()) => {
      const res = await post(path, key, json, ip);
      const text = await res.text();
      answers.push(text);
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    };
    const meNow = async (token: string) => {
      const res = await api('/api/v1/auth/me', { key: token });
      const text = await res.text();
      answers.push(text);
      return JSON.parse(text) as Record<string, unknown>;
    };
    expect(await meNow(s.token)).toMatchObject({ two_factor_enabled: false });

    // Enrol: a base32 secret of 20 bytes and the URI an authenticator app scans.
    const { secret, otpauth_uri } = await enrol(s.token);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauth_uri).toBe(`otpauth://totp/pirelay:${s.username}?secret=${secret}&issuer=pirelay&algorithm=SHA1&digits=6&period=30`);
    const row = await env.DB.prepare('SELECT totp_secret, totp_enabled_at FROM users WHERE id = ?1').bind(s.userId).first<{ totp_secret: string; totp_enabled_at: number | null }>();
    // Sealed ("<key id>.<iv>.<ciphertext>"), not the secret in any spelling.
    expect(row!.totp_secret).toMatch(/^[0-9a-f]{8}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(row!.totp_secret.toUpperCase()).not.toContain(secret);
    expect(row!.totp_enabled_at).toBeNull();
    // Not on until confirmed: the password alone still logs in.
    expect(await meNow(s.token)).toMatchObject({ two_factor_enabled: false });
    expect(Object.keys((await call('/api/v1/auth/login', undefined, { username: s.username, password: s.password })).body).sort()).toEqual(['expires_at', 'token', 'user']);

    const app = authenticator(secret);
    const confirmed = await call('/api/v1/auth/2fa/confirm', s.token, { code: await app.next() });
    expect(confirmed.status).toBe(200);
    const codes = confirmed.body.recovery_codes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);
    const hashes = (await env.DB.prepare('SELECT code_hash FROM recovery_codes WHERE user_id = ?1').bind(s.userId).all<{ code_hash: string }>()).results;
    expect(hashes.map((h) => h.code_hash).sort()).toEqual((await Promise.all(codes.map(sha256Hex))).sort());
    expect(await meNow(s.token)).toMatchObject({ two_factor_enabled: true });

    // The password step: a challenge, no session, no login recorded.
    const lastLogin = await env.DB.prepare('SELECT last_login FROM users WHERE id = ?1').bind(s.userId).first<number>('last_login');
    const sessionsBefore = await env.DB.prepare('SELECT count(*) AS n FROM sessions WHERE user_id = ?1').bind(s.userId).first<number>('n');
    const before = Date.now();
    const first = await call('/api/v1/auth/login', undefined, { username: s.username, password: s.password });
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual(['challenge', 'expires_at', 'two_factor_required']);
    expect(first.body.two_factor_required).toBe(true);
    const challenge = first.body.challenge as string;
    expect(challenge).toMatch(/^prc_[A-Za-z0-9_-]{40,}$/);
    const expiresIn = Date.parse(first.body.expires_at as string) - before;
    expect(expiresIn).toBeGreaterThan(LOGIN_CHALLENGE_TTL_MS - 60_000);
    expect(expiresIn).toBeLessThanOrEqual(LOGIN_CHALLENGE_TTL_MS + 1000);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM sessions WHERE user_id = ?1').bind(s.userId).first<number>('n')).toBe(sessionsBefore);
    expect(await env.DB.prepare('SELECT last_login FROM users WHERE id = ?1').bind(s.userId).first<number>('last_login')).toBe(lastLogin);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM login_challenges WHERE token_hash = ?1').bind(await sha256Hex(challenge)).first<number>('n')).toBe(1);

    // The code completes it, answering exactly what a plain login answers.
    const code = await app.next();
    const done = await call('/api/v1/auth/login/2fa', undefined, { challenge, code });
    expect(done.status).toBe(200);
    expect(Object.keys(done.body).sort()).toEqual(['expires_at', 'token', 'user']);
    expect(Object.keys(done.body.user as object).sort()).toEqual(['email', 'id', 'permissions', 'roles', 'username']);
    expect(done.body.user).toMatchObject({ id: s.userId, username: s.username, roles: ['operator'] });
    const token = done.body.token as string;
    expect(await meNow(token)).toMatchObject({ id: s.userId, two_factor_enabled: true });

    // The same code again, on a new challenge: refused (each step works once).
    const again = await post('/api/v1/auth/login/2fa', undefined, { challenge: await challengeOf(s), code });
    await expectError(again, 401, 'INVALID_TWO_FACTOR_CODE');

    // A recovery code works once, however it is typed.
    const typed = ` ${codes[3]!.toUpperCase().replace(/-/g, ' ')} `;
    const recovered = await call('/api/v1/auth/login/2fa', undefined, { challenge: await challengeOf(s), recovery_code: typed });
    expect(recovered.status).toBe(200);
    expect(Object.keys(recovered.body).sort()).toEqual(['expires_at', 'token', 'user']);
    await expectError(await secondStep({ challenge: await challengeOf(s), recovery_code: codes[3] }), 401, 'INVALID_TWO_FACTOR_CODE');

    // Disable with a current code: the secret, the last step and the recovery codes are gone.
    const off = await call('/api/v1/auth/2fa/disable', token, { code: await app.next() });
    expect(off.status).toBe(204);
    const after = await env.DB.prepare('SELECT totp_secret, totp_enabled_at, totp_last_step FROM users WHERE id = ?1').bind(s.userId).first();
    expect(after).toEqual({ totp_secret: null, totp_enabled_at: null, totp_last_step: null });
    expect(await env.DB.prepare('SELECT count(*) AS n FROM recovery_codes WHERE user_id = ?1').bind(s.userId).first<number>('n')).toBe(0);
    expect(await meNow(token)).toMatchObject({ two_factor_enabled: false });
    const plain = await call('/api/v1/auth/login', undefined, { username: s.username, password: s.password });
    expect(Object.keys(plain.body).sort()).toEqual(['expires_at', 'token', 'user']);

    // The secret never came back after enrolment, nor went into the audit log; recovery codes
    // and the password are in no entry either.
    for (const text of answers) expect(text).not.toContain(secret);
    const entries = await auditOf(s.userId);
    const log = JSON.stringify(entries);
    for (const hidden of [secret, ...codes, s.password, challenge]) expect(log).not.toContain(hidden);
    expect(log.toUpperCase()).not.toContain(secret);
    const actions = entries.map((e) => e.action);
    for (const a of ['2fa.enrol', '2fa.enable', 'login', '2fa.failed', '2fa.recovery_used', '2fa.disable']) expect(actions).toContain(a);
    const secondFactorLogins = entries.filter((e) => e.action === 'login' && e.details).map((e) => JSON.parse(e.details!).second_factor);
    expect(secondFactorLogins).toEqual(['totp', 'recovery_code']);
    // Only full logins are recorded as logins: three plain ones (sessionUser's among them) and the two completed second steps.
    expect(actions.filter((a) => a === 'login')).toHaveLength(5);
  });

  it('/auth/me and the user views show two_factor_enabled; the secret is in neither', async () => {
    const u = await withTwoFactor();
    const mine = await me(u.token);
    expect(mine.two_factor_enabled).toBe(true);
    const admin = await sessionUser(['admin']);
    const viewed = (await (await api(`/api/v1/users/${u.userId}`, { key: admin.token })).json()) as Record<string, unknown>;
    expect(viewed.two_factor_enabled).toBe(true);
    const list = await (await api('/api/v1/users', { key: admin.token })).text();
    for (const text of [JSON.stringify(mine), JSON.stringify(viewed), list]) {
      expect(text).not.toContain(u.secret);
      expect(text).not.toMatch(/totp/i);
    }
  });
});

describe('the second step refuses', () => {
  it('a challenge that expired, was used, or never was', async () => {
    const u = await withTwoFactor();
    const expired = await challengeOf(u);
    await env.DB.prepare('UPDATE login_challenges SET expires_at = ?1 WHERE token_hash = ?2').bind(Date.now() - 1, await sha256Hex(expired)).run();
    await expectError(await secondStep({ challenge: expired, code: await u.app.next() }), 401, 'INVALID_CHALLENGE');

    const used = await challengeOf(u);
    expect((await secondStep({ challenge: used, code: await u.app.next() })).status).toBe(200);
    await expectError(await secondStep({ challenge: used, recovery_code: u.recoveryCodes[0] }), 401, 'INVALID_CHALLENGE');
    // The refusal spent nothing: the recovery code still works on a fresh challenge.
    expect((await secondStep({ challenge: await challengeOf(u), recovery_code: u.recoveryCodes[0] })).status).toBe(200);

    await expectError(await secondStep({ challenge: 'prc_not-a-challenge', recovery_code: u.recoveryCodes[1] }), 401, 'INVALID_CHALLENGE');
  });

  it('a challenge after five tries, even with the right code', async () => {
    expect(LOGIN_CHALLENGE_MAX_ATTEMPTS).toBe(5);
    const u = await withTwoFactor();
    const challenge = await challengeOf(u);
    // Each guess from another address, so the throttle (per name and address) stays out of it.
    for (let i = 0; i < 5; i++) {
      const body = await expectError(await secondStep({ challenge, code: await u.app.wrong() }), 401, 'INVALID_TWO_FACTOR_CODE');
      expect(body.details.attempts_left).toBe(4 - i);
    }
    await expectError(await secondStep({ challenge, code: await u.app.next() }), 401, 'INVALID_CHALLENGE');
    // The password earns a new challenge, and that one works.
    expect((await secondStep({ challenge: await challengeOf(u), code: await u.app.next() })).status).toBe(200);
  });

  it('wrong codes like wrong passwords: 429 with Retry-After, and the right password does not reset the count', async () => {
    const u = await withTwoFactor();
    const ip = freshIp();
    const first = await challengeOf(u, ip);
    for (let i = 0; i < 4; i++) await expectError(await secondStep({ challenge: first, code: await u.app.wrong() }, ip), 401, 'INVALID_TWO_FACTOR_CODE');
    // Knowing the password gets a new challenge, but the four failures still count.
    const second = await challengeOf(u, ip);
    await expectError(await secondStep({ challenge: second, recovery_code: 'aaaa-bbbb-cccc' }, ip), 401, 'INVALID_TWO_FACTOR_CODE');
    const limited = await secondStep({ challenge: second, code: await u.app.next() }, ip);
    const body = await expectError(limited, 429, 'RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(body.details.retry_after).toBe(Number(limited.headers.get('retry-after')));
    // The password step from there is throttled too; another address is not.
    await expectError(await login(u.username, u.password, ip), 429, 'RATE_LIMITED');
    expect((await secondStep({ challenge: await challengeOf(u), recovery_code: u.recoveryCodes[0] })).status).toBe(200);
  });

  it('one code raced on two challenges, and one challenge raced with two codes: one session each time', async () => {
    const u = await withTwoFactor();
    const code = await u.app.next();
    const [a, b] = await Promise.all([challengeOf(u), challengeOf(u)]);
    const byCode = await Promise.all([secondStep({ challenge: a, code }), secondStep({ challenge: b, code })]);
    expect(byCode.map((r) => r.status).sort()).toEqual([200, 401]);
    const recovery = u.recoveryCodes[2]!;
    const [c, d] = await Promise.all([challengeOf(u), challengeOf(u)]);
    const byRecovery = await Promise.all([secondStep({ challenge: c, recovery_code: recovery }), secondStep({ challenge: d, recovery_code: recovery })]);
    expect(byRecovery.map((r) => r.status).sort()).toEqual([200, 401]);
    const e = await challengeOf(u);
    const byChallenge = await Promise.all([secondStep({ challenge: e, code: await u.app.next() }), secondStep({ challenge: e, recovery_code: u.recoveryCodes[4] })]);
    expect(byChallenge.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('a step is claimed atomically: two checks that read the account before either wrote cannot both spend it', async () => {
    const u = await withTwoFactor();
    // What two racing requests would both have read: the row before either spent the code.
    const stale = (await getDb(env.DB).query.users.findFirst({ where: eq(schema.users.id, u.userId) }))!;
    const code = await u.app.next();
    expect(await spendSecondFactor(env, stale, { code })).toBe('totp');
    expect(await spendSecondFactor(env, stale, { code })).toBeNull();
    expect(await spendSecondFactor(env, stale, { recoveryCode: u.recoveryCodes[7] })).toBe('recovery_code');
    expect(await spendSecondFactor(env, stale, { recoveryCode: u.recoveryCodes[7] })).toBeNull();
  });

  it('a body with both, or neither, of code and recovery_code', async () => {
    const u = await withTwoFactor();
    const challenge = await challengeOf(u);
    await expectError(await secondStep({ challenge }), 400, 'VALIDATION_ERROR');
    await expectError(await secondStep({ challenge, code: '123456', recovery_code: u.recoveryCodes[0] }), 400, 'VALIDATION_ERROR');
    await expectError(await secondStep({ challenge, code: '12345' }), 400, 'VALIDATION_ERROR');
    await expectError(await secondStep({}), 400, 'VALIDATION_ERROR');
  });

  it('a disabled account, with 403 ACCOUNT_DISABLED', async () => {
    const u = await withTwoFactor();
    const challenge = await challengeOf(u);
    await env.DB.prepare('UPDATE users SET disabled = 1 WHERE id = ?1').bind(u.userId).run();
    await expectError(await secondStep({ challenge, code: await u.app.next() }), 403, 'ACCOUNT_DISABLED');
  });
});

describe('enrolment, confirmation and disabling', () => {
  it('enrol again before confirming replaces the secret; once on, enrol is 409 TWO_FACTOR_ALREADY_ENABLED', async () => {
    const s = await sessionUser();
    await expectError(await post('/api/v1/auth/2fa/confirm', s.token, { code: '123456' }), 409, 'TWO_FACTOR_NOT_ENROLLED');
    const old = await enrol(s.token);
    const fresh = await enrol(s.token);
    expect(fresh.secret).not.toBe(old.secret);
    const app = authenticator(fresh.secret);
    await expectError(await post('/api/v1/auth/2fa/confirm', s.token, { code: await authenticator(old.secret).next() }), 403, 'INVALID_TWO_FACTOR_CODE');
    expect((await post('/api/v1/auth/2fa/confirm', s.token, { code: await app.next() })).status).toBe(200);
    await expectError(await post('/api/v1/auth/2fa/enrol', s.token), 409, 'TWO_FACTOR_ALREADY_ENABLED');
    await expectError(await post('/api/v1/auth/2fa/confirm', s.token, { code: '123456' }), 409, 'TWO_FACTOR_ALREADY_ENABLED');
    // The secret in force is still the confirmed one.
    expect((await secondStep({ challenge: await challengeOf(s), code: await app.next() })).status).toBe(200);
  });

  it('disable needs a current code: a wrong or used one is 403 and changes nothing; a recovery code works', async () => {
    const u = await withTwoFactor();
    await expectError(await post('/api/v1/auth/2fa/disable', u.token, { code: await u.app.wrong() }), 403, 'INVALID_TWO_FACTOR_CODE');
    await expectError(await post('/api/v1/auth/2fa/disable', u.token, { code: 'zzzz-zzzz-zzzz' }), 403, 'INVALID_TWO_FACTOR_CODE');
    await expectError(await post('/api/v1/auth/2fa/disable', u.token, {}), 400, 'VALIDATION_ERROR');
    expect((await me(u.token)).two_factor_enabled).toBe(true);
    expect((await post('/api/v1/auth/2fa/disable', u.token, { code: u.recoveryCodes[5] })).status).toBe(204);
    expect((await me(u.token)).two_factor_enabled).toBe(false);
    await expectError(await post('/api/v1/auth/2fa/disable', u.token, { code: u.recoveryCodes[6] }), 409, 'TWO_FACTOR_NOT_ENABLED');
    const actions = (await auditOf(u.userId)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['2fa.failed', '2fa.recovery_used', '2fa.disable']));
  });

  it('guessing codes through a stolen session is throttled like a password (429)', async () => {
    const u = await withTwoFactor();
    const ip = freshIp();
    for (let i = 0; i < 5; i++) await expectError(await post('/api/v1/auth/2fa/disable', u.token, { code: await u.app.wrong() }, ip), 403, 'INVALID_TWO_FACTOR_CODE');
    const res = await post('/api/v1/auth/2fa/disable', u.token, { code: await u.app.next() }, ip);
    await expectError(res, 429, 'RATE_LIMITED');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await me(u.token)).two_factor_enabled).toBe(true);
  });

  it('new recovery codes void the old ones', async () => {
    const u = await withTwoFactor();
    await expectError(await post('/api/v1/auth/2fa/recovery-codes', u.token, { code: await u.app.wrong() }), 403, 'INVALID_TWO_FACTOR_CODE');
    const res = await post('/api/v1/auth/2fa/recovery-codes', u.token, { code: await u.app.next() });
    expect(res.status).toBe(200);
    const { recovery_codes } = (await res.json()) as { recovery_codes: string[] };
    expect(recovery_codes).toHaveLength(10);
    expect(recovery_codes.filter((c) => u.recoveryCodes.includes(c))).toEqual([]);
    await expectError(await secondStep({ challenge: await challengeOf(u), recovery_code: u.recoveryCodes[0] }), 401, 'INVALID_TWO_FACTOR_CODE');
    expect((await secondStep({ challenge: await challengeOf(u), recovery_code: recovery_codes[0] })).status).toBe(200);
    expect((await auditOf(u.userId)).map((e) => e.action)).toContain('2fa.recovery_regenerate');
    await expectError(await post('/api/v1/auth/2fa/recovery-codes', (await sessionUser()).token, { code: '123456' }), 409, 'TWO_FACTOR_NOT_ENABLED');
  });

  it('a narrowed API key can neither enrol nor disable; an unrestricted key and the password change leave 2FA on', async () => {
    const u = await withTwoFactor(['operator']);
    const mint = async (body: Record<string, unknown>) => ((await (await api('/api/v1/api-keys', { key: u.token, json: body })).json()) as { key: string }).key;
    const narrow = await mint({ name: 'narrow', permissions: ['devices:read'] });
    for (const path of ['/api/v1/auth/2fa/enrol', '/api/v1/auth/2fa/disable', '/api/v1/auth/2fa/recovery-codes']) {
      await expectError(await post(path, narrow, { code: u.recoveryCodes[0] }), 403, 'NARROWED_API_KEY');
    }
    // API keys need no second factor: they are already shown once and revocable.
    const full = await mint({ name: 'full' });
    expect((await me(full)).two_factor_enabled).toBe(true);
    expect((await api('/api/v1/devices', { key: full })).status).toBe(200);
    // A new password keeps two-factor login on.
    expect((await api('/api/v1/auth/me/password', { key: u.token, method: 'PUT', json: { current_password: u.password, new_password: 'brand-new-password' } })).status).toBe(204);
    expect((await me(u.token)).two_factor_enabled).toBe(true);
    await challengeOf({ username: u.username, password: 'brand-new-password' });
  });

  it('needs credentials', async () => {
    for (const path of ['/api/v1/auth/2fa/enrol', '/api/v1/auth/2fa/confirm', '/api/v1/auth/2fa/disable', '/api/v1/auth/2fa/recovery-codes']) {
      await expectError(await post(path, undefined, { code: '123456' }), 401, 'UNAUTHORIZED');
    }
  });
});

describe("an admin's reset of a locked-out user's two-factor login", () => {
  it('turns it off so the password alone logs in again, records 2fa.reset, and needs every permission the user holds', async () => {
    const u = await withTwoFactor(['operator']);
    const admin = await sessionUser(['admin']);
    // A users:write holder without "*" may not reset an admin's; nor may the user's peers without users:write.
    await env.DB.prepare("INSERT OR IGNORE INTO roles (id, name, permissions) VALUES ('user-manager', 'user-manager', '[\"users:read\",\"users:write\"]')").run();
    const manager = await sessionUser(['user-manager']);
    await expectError(await api(`/api/v1/users/${admin.userId}/2fa`, { key: manager.token, method: 'DELETE' }), 403, 'FORBIDDEN');
    await expectError(await api(`/api/v1/users/${u.userId}/2fa`, { key: (await sessionUser(['operator'])).token, method: 'DELETE' }), 403, 'FORBIDDEN');
    expect((await me(u.token)).two_factor_enabled).toBe(true);

    expect((await api(`/api/v1/users/${u.userId}/2fa`, { key: admin.token, method: 'DELETE' })).status).toBe(204);
    expect((await me(u.token)).two_factor_enabled).toBe(false);
    const row = await getDb(env.DB).query.users.findFirst({ where: eq(schema.users.id, u.userId) });
    expect([row?.totpSecret, row?.totpEnabledAt, row?.totpLastStep]).toEqual([null, null, null]);
    expect((await env.DB.prepare('SELECT count(*) AS n FROM recovery_codes WHERE user_id = ?1').bind(u.userId).first('n'))).toBe(0);
    const res = await login(u.username, u.password);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token?: string }).token).toBeTruthy();
    const reset = (await auditOf(u.userId)).filter((e) => e.action === '2fa.reset');
    expect(reset.map((e) => e.actor_id)).toEqual([admin.userId]);
    await expectError(await api('/api/v1/users/no-such-user/2fa', { key: admin.token, method: 'DELETE' }), 404, 'NOT_FOUND');
  });
});
