import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { LOGIN_WINDOW_MS, MAX_FAILURES_PER_IP, MAX_FAILURES_PER_USER_IP } from '../../worker/auth/rate-limit.ts';
import { api } from './helpers.ts';
import { expectError, freshIp, login, sessionUser, userWithPassword } from './auth-helpers.ts';

describe('login rate limiting', () => {
  it('answers 429 RATE_LIMITED with Retry-After after 5 failures for one username from one IP, even with the right password', async () => {
    expect(MAX_FAILURES_PER_USER_IP).toBe(5);
    const u = await userWithPassword();
    const ip = freshIp();
    for (let i = 0; i < 5; i++) await expectError(await login(u.username, `wrong-${i}`, ip), 401, 'INVALID_CREDENTIALS');
    const limited = await login(u.username, u.password, ip);
    const body = await expectError(limited, 429, 'RATE_LIMITED');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(LOGIN_WINDOW_MS / 1000);
    expect(body.details.retry_after).toBe(retryAfter);
    // Another address is not affected by this one's failures.
    expect((await login(u.username, u.password, freshIp())).status).toBe(200);
  });

  it('a success clears the username|ip counter', async () => {
    const u = await userWithPassword();
    const ip = freshIp();
    for (let i = 0; i < 4; i++) await expectError(await login(u.username, 'wrong-password', ip), 401, 'INVALID_CREDENTIALS');
    expect((await login(u.username, u.password, ip)).status).toBe(200);
    for (let i = 0; i < 4; i++) await expectError(await login(u.username, 'wrong-password', ip), 401, 'INVALID_CREDENTIALS');
    expect((await login(u.username, u.password, ip)).status).toBe(200);
  });

  it('limits one IP across usernames to 20 failures', async () => {
    expect(MAX_FAILURES_PER_IP).toBe(20);
    const ip = freshIp();
    for (let i = 0; i < 20; i++) await expectError(await login(`ghost-${i}`, 'wrong-password', ip), 401, 'INVALID_CREDENTIALS');
    const u = await userWithPassword();
    const res = await login(u.username, u.password, ip);
    await expectError(res, 429, 'RATE_LIMITED');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('lets the user in again once the window has passed', async () => {
    const u = await userWithPassword();
    const ip = freshIp();
    for (let i = 0; i < 5; i++) await login(u.username, 'wrong-password', ip);
    await expectError(await login(u.username, u.password, ip), 429, 'RATE_LIMITED');
    await env.DB.prepare('UPDATE login_attempts SET window_start = window_start - ?1 WHERE key LIKE ?2')
      .bind(LOGIN_WINDOW_MS, `%|${ip}`)
      .run();
    await env.DB.prepare('UPDATE login_attempts SET window_start = window_start - ?1 WHERE key = ?2').bind(LOGIN_WINDOW_MS, `ip:${ip}`).run();
    expect((await login(u.username, u.password, ip)).status).toBe(200);
  });

  it('throttles guessing the current password through PUT /auth/me/password too', async () => {
    const s = await sessionUser();
    const guess = (current: string) =>
      api('/api/v1/auth/me/password', {
        key: s.token,
        method: 'PUT',
        json: { current_password: current, new_password: 'a-new-password' },
        headers: { 'cf-connecting-ip': '192.0.2.77' },
      });
    for (let i = 0; i < 5; i++) await expectError(await guess(`guess-${i}`), 403, 'INVALID_CURRENT_PASSWORD');
    const res = await guess(s.password);
    await expectError(res, 429, 'RATE_LIMITED');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
