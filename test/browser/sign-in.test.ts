// Signing in as a browser does: the form, the API's own error for a wrong password, the session
// as an HttpOnly __Host- cookie (nothing in script-readable storage), sign-out, and the "session
// expired" page when the session ends elsewhere — after which signing in returns to the same page.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBrowser, openPage, signInAdmin, startDashboard, type Dashboard } from './harness.ts';
import { http } from '../e2e/harness.ts';

describeBrowser('signing in to the dashboard', () => {
  let d: Dashboard;
  beforeAll(async () => {
    d = await startDashboard({ prefix: 'sign-in' });
  });
  afterAll(async () => {
    await d?.close();
  });

  it('shows the API message for a wrong password, next to the form', async () => {
    const { page, context, foreign } = await openPage(d);
    await page.goto(d.origin + '/');
    await page.getByLabel('User name').fill(d.env.state.adminUser);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/invalid|incorrect|wrong/i);
    expect(foreign).toEqual([]);
    await context.close();
  });

  it('keeps the session in an HttpOnly __Host- cookie, never in storage, and signs out', async () => {
    const { page, context, errors } = await openPage(d);
    await signInAdmin(page, d);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === '__Host-pirelay_session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    expect(stored).not.toContain(session!.value);
    expect(await page.evaluate(() => document.cookie)).not.toContain('pirelay_session');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to pirelay' }).waitFor();
    expect((await context.cookies()).find((c) => c.name === '__Host-pirelay_session')).toBeUndefined();
    // The old cookie no longer works: the session ended at the relay, not only in the browser.
    const r = await http(`${d.origin}/api/v1/auth/me`, { headers: { cookie: `__Host-pirelay_session=${session!.value}` } });
    expect(r.status).toBe(401);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows the session-expired page by itself when the session ends elsewhere, and returns to the page after signing in', async () => {
    const { page, context } = await openPage(d);
    await signInAdmin(page, d, '/api-keys');
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    const token = (await context.cookies()).find((c) => c.name === '__Host-pirelay_session')!.value;
    // The session ends at the relay (as a logout elsewhere or its expiry would).
    expect((await http(`${d.origin}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
    // The relay closes the session's stream (4003); the page asks who it is, is told 401 and says so by
    // itself, with no click needed (a click racing that close would find its link gone).
    await page.getByRole('heading', { name: 'Your session has ended' }).waitFor();
    await page.getByLabel('User name').fill(d.env.state.adminUser);
    await page.getByLabel('Password').fill(d.env.state.adminPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Your API keys' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/api-keys');
    await context.close();
  });

  it('refuses a state-changing request from another origin carrying the cookie', async () => {
    const { page, context } = await openPage(d);
    await signInAdmin(page, d);
    const token = (await context.cookies()).find((c) => c.name === '__Host-pirelay_session')!.value;
    const r = await http(`${d.origin}/api/v1/api-keys`, {
      method: 'POST',
      headers: { cookie: `__Host-pirelay_session=${token}`, origin: 'http://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'stolen' }),
    });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('CSRF_REJECTED');
    await context.close();
  });
});
