// The API docs page: the relay's OpenAPI document drawn by the bundled renderer, loaded only on
// this page (never in the first load), calling the API with the session cookie from "Execute" (a
// change too, through the relay's Origin check), following the system's colour scheme live, and
// linking to the raw JSON.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { firstLoad } from '../../scripts/dashboard.ts';
import { describeBrowser, expectAccessible, openPage, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

describeBrowser('the API docs page', () => {
  let d: Dashboard;
  beforeAll(async () => {
    d = await startDashboard({ prefix: 'docs' });
  });
  afterAll(async () => {
    await d?.close();
  });

  it('loads the renderer only on this page, not in the first load', async () => {
    expect(firstLoad().files.filter((f) => /openapi-explorer/.test(f))).toEqual([]);
    const { page, context, foreign, errors } = await openPage(d);
    const scripts: string[] = [];
    page.on('request', (r) => r.resourceType() === 'script' && scripts.push(new URL(r.url()).pathname));
    await signInAdmin(page, d);
    await page.locator('#page-title').waitFor();
    expect(scripts.filter((s) => /openapi-explorer/.test(s))).toEqual([]);
    await page.getByRole('link', { name: 'API docs' }).click();
    await page.locator('openapi-explorer .operations-root').first().waitFor();
    expect(scripts.filter((s) => /openapi-explorer/.test(s))).toHaveLength(1);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('calls the API as the signed-in user from Execute, with the session cookie', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/docs');
    const explorer = page.locator('openapi-explorer');
    await explorer.getByText('Who am I', { exact: true }).click();
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/auth/me' && r.request().method() === 'GET');
    await explorer.getByRole('button', { name: 'EXECUTE' }).click();
    const res = await answered;
    expect(res.status()).toBe(200);
    // No key was set under Authentication: the cookie is what signed the call.
    const sent = await res.request().allHeaders();
    expect(sent.authorization).toBeUndefined();
    expect(sent.cookie).toContain('__Host-pirelay_session=');
    const me = await res.json();
    expect(me.username).toBe(d.env.state.adminUser);
    // The renderer shows the answer: its status, and the body (with the user's id in it).
    await expect.poll(() => explorer.locator('.response-message').textContent()).toContain('200');
    await explorer.getByText(me.id).first().waitFor();
    await expectAccessible(page, 'docs, after Execute');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('makes a state-changing call from Execute that passes the relay\'s Origin check (CSRF)', async () => {
    const { page, context } = await openPage(d);
    await signInAdmin(page, d, '/docs');
    const explorer = page.locator('openapi-explorer');
    await explorer.getByText('End the current session', { exact: true }).click();
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/auth/logout');
    await explorer.getByRole('button', { name: 'EXECUTE' }).click();
    const res = await answered;
    // 403 CSRF_REJECTED if the cookie came without this relay's Origin.
    expect(res.status()).toBe(204);
    expect(res.request().method()).toBe('POST');
    expect((await res.request().allHeaders()).origin).toBe(d.origin);
    // The session really ended: the app notices and says so.
    await page.getByRole('heading', { name: 'Your session has ended' }).waitFor();
    await context.close();
  });

  it('follows the system colour scheme, live', async () => {
    const { page, context } = await openPage(d, { colorScheme: 'dark' });
    await signInAdmin(page, d, '/docs');
    await page.locator('openapi-explorer .operations-root').first().waitFor();
    // The reference's background beside the app's panel colour (a probe styled with var(--panel)).
    const colours = () =>
      page.evaluate(() => {
        const probe = document.body.appendChild(document.createElement('div'));
        probe.style.background = 'var(--panel)';
        const panel = getComputedStyle(probe).backgroundColor;
        probe.remove();
        return { explorer: getComputedStyle(document.querySelector('openapi-explorer')!).backgroundColor, panel };
      });
    expect(await colours()).toEqual({ explorer: 'rgb(28, 31, 37)', panel: 'rgb(28, 31, 37)' });
    await page.emulateMedia({ colorScheme: 'light' });
    await expect.poll(colours).toEqual({ explorer: 'rgb(255, 255, 255)', panel: 'rgb(255, 255, 255)' });
    await context.close();
  });

  it('links to the OpenAPI document as JSON', async () => {
    const { page, context } = await openPage(d);
    await signInAdmin(page, d, '/docs');
    const link = page.getByRole('link', { name: 'OpenAPI document (JSON)' });
    expect(await link.getAttribute('href')).toBe('/api/v1/openapi.json');
    const [res] = await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/openapi.json' && r.request().isNavigationRequest()), link.click()]);
    expect(res.status()).toBe(200);
    expect((await res.json()).openapi).toMatch(/^3\./);
    await context.close();
  });
});
