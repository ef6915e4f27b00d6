// The API keys, variables and audit log pages, driven as a person would in Chromium against the
// real relay: an API key made on the page and shown once works with the real curl binary and stops
// working once revoked there; secret variables (account and device level) are shown masked and
// their values reach neither the page's DOM nor any response the page received; the audit log
// finds those changes with its filters (kept in the URL) and pages past its first page; a user
// without audit:read gets no link and sees the API's refusal. Each state is scanned with axe-core,
// no request leaves for another host, and every page is photographed at 1280 and 390 px, light and dark.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createUser, describeBrowser, expectAccessible, openPage, pageText, recordResponses, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

const run = promisify(execFile);

/** The real curl: the response body and the status on its last line. */
async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-w', '\n%{http_code}', ...args]);
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** Errors in the page besides the console's line for a refusal the test asked for (the browser logs every 4xx). */
const unexpected = (errors: string[]) => errors.filter((e) => !/status of 40[03]/.test(e));

const noHorizontalScroll = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

describeBrowser('API keys, variables and the audit log', () => {
  let d: Dashboard;
  // Unguessable values: found anywhere, they came from this test.
  const accountSecret = `acct-${randomBytes(12).toString('hex')}`;
  const accountSecret2 = `acct2-${randomBytes(12).toString('hex')}`;
  const deviceSecret = `dev-${randomBytes(12).toString('hex')}`;
  let keyName: string;

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'keys-vars-audit' });
  });
  afterAll(async () => {
    await d?.close();
  });

  it('creates an API key shown once with a curl line that works, then revokes it', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/api-keys');
    await page.getByRole('heading', { name: 'Your API keys' }).waitFor();
    await page.getByRole('table', { name: 'Your API keys' }).waitFor();
    await expectAccessible(page, 'API keys');

    keyName = `curl-${randomBytes(3).toString('hex')}`;
    await page.getByLabel('Name').fill(keyName);
    await page.getByLabel('Expires').selectOption('30');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const once = page.locator('.once-secret');
    await once.waitFor();
    const key = (await once.locator('code[data-secret]').textContent())!.trim();
    expect(key).toMatch(/^prk_/);
    // Copy puts exactly the key on the clipboard.
    await once.getByRole('button', { name: 'Copy' }).first().click();
    await expect.poll(() => once.getByRole('button', { name: 'Copied' }).count()).toBeGreaterThan(0);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);

    // The curl line the page shows is ready to run against this relay.
    const line = (await page.getByRole('group', { name: 'A curl command using the new key' }).locator('code').textContent())!.trim();
    const m = /^curl -H "Authorization: (Bearer \S+)" (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const [, credential = '', url = ''] = m!;
    expect(credential).toBe(`Bearer ${key}`);
    expect(url).toBe(`${d.origin}/api/v1/devices`);
    const ok = await curl(['-H', `Authorization: ${credential}`, url]);
    expect(ok.status, ok.body).toBe(200);
    expect(JSON.parse(ok.body).devices.map((x: { id: string }) => x.id)).toContain(d.deviceId);
    await expectAccessible(page, 'API key shown once');
    await screenshot(page, 'api-keys-created');

    // Shown once: after a reload only its prefix is left, and the key itself is nowhere.
    await page.reload();
    const row = page.getByRole('row').filter({ hasText: keyName });
    await row.waitFor();
    expect(await row.textContent()).toContain(key.slice(0, 12));
    expect(await pageText(page)).not.toContain(key);

    await row.getByRole('button', { name: `Revoke ${keyName}` }).click();
    const dialog = page.getByRole('dialog', { name: `Revoke ${keyName}?` });
    await dialog.waitFor();
    await expectAccessible(page, 'revoke dialog');
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => page.getByRole('row').filter({ hasText: keyName }).count()).toBe(0);
    await page.getByLabel('Show revoked and expired keys').check();
    await expect.poll(() => page.getByRole('row').filter({ hasText: keyName }).textContent()).toContain('revoked');
    const refused = await curl(['-H', `Authorization: ${credential}`, url]);
    expect(refused.status).toBe(401);
    await expectAccessible(page, 'API keys with a revoked one');

    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('narrows a new key to the permissions ticked, and the API holds it to them', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/api-keys');
    const name = `narrow-${randomBytes(3).toString('hex')}`;
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Limit it to some of my permissions').check();
    const picker = page.getByRole('group', { name: 'Permissions of the key' });
    // A permission nobody may hold is refused by the API, its message at the field.
    await picker.getByLabel('Other permissions').fill('Not-A-Permission');
    await page.getByRole('button', { name: 'Create API key' }).click();
    await expect.poll(() => picker.getByLabel('Other permissions').getAttribute('aria-invalid')).toBe('true');
    expect(await picker.locator('.field-error').textContent()).toContain('resource:action');
    await expectAccessible(page, 'API key narrowing refused');
    await picker.getByLabel('Other permissions').fill('');
    await picker.getByLabel('devices:read').check();
    await page.getByRole('button', { name: 'Create API key' }).click();
    const key = (await page.locator('.once-secret code[data-secret]').textContent())!.trim();
    const row = page.getByRole('row').filter({ hasText: name });
    await expect.poll(() => row.textContent()).toContain('devices:read');
    const auth = `Authorization: Bearer ${key}`;
    expect((await curl(['-H', auth, `${d.origin}/api/v1/devices`])).status).toBe(200);
    expect((await curl(['-H', auth, `${d.origin}/api/v1/audit`])).status).toBe(403);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('masks secret variables at account and device level; their values never reach the page', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    const received = recordResponses(page);
    await signInAdmin(page, d, '/variables');
    await page.getByText('No variables for your account yet.').waitFor();
    await expectAccessible(page, 'variables, none yet');

    // The name is checked by the API, and its message shows at the field.
    await page.getByLabel('Name').fill('not-a-name');
    await page.getByLabel('Value').fill('x');
    await page.getByRole('button', { name: 'Add variable' }).click();
    await expect.poll(() => page.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.field-error').first().textContent()).toContain('shell identifier');
    await expectAccessible(page, 'variables, name refused');

    // A plain one shows its value.
    await page.getByLabel('Name').fill('GREETING');
    await page.getByLabel('Value').fill('hello from the account');
    await page.getByRole('button', { name: 'Add variable' }).click();
    await page.getByRole('row').filter({ hasText: 'GREETING' }).filter({ hasText: 'hello from the account' }).waitFor();

    // A secret one shows the mask.
    await page.getByLabel('Name').fill('ACCOUNT_TOKEN');
    await page.getByLabel('Value').fill(accountSecret);
    await page.getByLabel('Secret').check();
    await page.getByRole('button', { name: 'Add variable' }).click();
    const secretRow = page.getByRole('row').filter({ hasText: 'ACCOUNT_TOKEN' });
    await secretRow.waitFor();
    expect(await secretRow.textContent()).toContain('***');
    expect(await secretRow.textContent()).toContain('secret');
    // Once saved, the typed value is gone from the form too.
    expect(await pageText(page)).not.toContain(accountSecret);

    // Editing a secret does not prefill it: a new value replaces it.
    await secretRow.getByRole('button', { name: 'Edit ACCOUNT_TOKEN' }).click();
    await page.getByRole('heading', { name: 'Edit ACCOUNT_TOKEN' }).waitFor();
    expect(await page.getByLabel('New value').inputValue()).toBe('');
    expect(await page.getByLabel('Secret').isChecked()).toBe(true);
    await expectAccessible(page, 'editing a secret');
    await page.getByLabel('New value').fill(accountSecret2);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved ACCOUNT_TOKEN (secret).' }).waitFor();
    expect(await secretRow.textContent()).toContain('***');
    expect(await pageText(page)).not.toContain(accountSecret2);
    // Editing a plain one starts from its value.
    await page.getByRole('button', { name: 'Edit GREETING' }).click();
    expect(await page.getByLabel('Value').inputValue()).toBe('hello from the account');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expectAccessible(page, 'account variables');
    await screenshot(page, 'variables-account');

    // The device's level, picked on the page: the URL says which, so it can be linked.
    await page.getByLabel('Level').selectOption(`device:${d.deviceId}`);
    await page.getByRole('heading', { name: /^Variables of device / }).waitFor();
    expect(new URL(page.url()).searchParams.get('device')).toBe(d.deviceId);
    await page.getByText(/^No variables for device/).waitFor();
    await page.getByLabel('Name').fill('DEVICE_TOKEN');
    await page.getByLabel('Value').fill(deviceSecret);
    await page.getByLabel('Secret').check();
    await page.getByRole('button', { name: 'Add variable' }).click();
    await page.getByRole('table', { name: /^Variables of device/ }).getByRole('row').filter({ hasText: 'DEVICE_TOKEN' }).waitFor();
    expect(await pageText(page)).not.toContain(deviceSecret);
    // The device's GREETING wins over the account's in what its runs get.
    await page.getByLabel('Name').fill('GREETING');
    await page.getByLabel('Value').fill('hello from the device');
    await page.getByRole('button', { name: 'Add variable' }).click();
    const merged = page.getByRole('table', { name: "What this device's runs get" });
    await expect.poll(() => merged.getByRole('row').filter({ hasText: 'GREETING' }).textContent()).toContain('hello from the device');
    expect(await merged.getByRole('row').filter({ hasText: 'GREETING' }).textContent()).toContain('this device');
    const fromAccount = await merged.getByRole('row').filter({ hasText: 'ACCOUNT_TOKEN' }).textContent();
    expect(fromAccount).toContain('***');
    expect(fromAccount).toContain('your account');
    expect(await merged.getByRole('row').filter({ hasText: 'DEVICE_TOKEN' }).textContent()).toContain('***');
    await expectAccessible(page, 'device variables');
    await screenshot(page, 'variables-device');

    // A link straight to the level works on its own.
    await page.goto(`${d.origin}/variables?device=${d.deviceId}`);
    await merged.getByRole('row').filter({ hasText: 'DEVICE_TOKEN' }).waitFor();

    for (const secret of [accountSecret, accountSecret2, deviceSecret]) expect(await pageText(page)).not.toContain(secret);
    const bodies = await received();
    expect(bodies.some((b) => b.includes('/api/v1/account/variables'))).toBe(true);
    for (const b of bodies) for (const secret of [accountSecret, accountSecret2, deviceSecret]) expect(b).not.toContain(secret);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('finds those changes in the audit log with filters kept in the URL, and loads older pages', async () => {
    // More than one page (50) of entries after the ones looked for.
    for (let i = 0; i < 55; i++) {
      const r = await d.api('/api/v1/account/variables/PAGING', { method: 'PUT', json: { value: String(i) } });
      expect(r.status).toBeLessThan(300);
    }
    const { page, context, foreign, errors } = await openPage(d);
    const received = recordResponses(page);
    await signInAdmin(page, d, '/audit');
    const table = page.getByRole('table', { name: 'Audit log entries, newest first' });
    await table.waitFor();
    expect(await table.locator('tbody tr').count()).toBe(50);
    await expectAccessible(page, 'audit log');

    // API keys: their creation and revocation, by action prefix.
    await page.getByLabel('Action').fill('api_key.');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('action')).toBe('api_key.');
    const keyRows = table.locator('tbody tr').filter({ hasText: keyName });
    await expect.poll(() => keyRows.count()).toBe(2);
    expect(await keyRows.nth(0).textContent()).toContain('api_key.revoke');
    expect(await keyRows.nth(1).textContent()).toContain('api_key.create');
    // The details open by keyboard.
    const summary = keyRows.nth(1).locator('summary');
    await summary.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => keyRows.nth(1).locator('details').getAttribute('open')).not.toBeNull();
    expect(await keyRows.nth(1).locator('pre').textContent()).toContain('"prefix"');
    await expectAccessible(page, 'audit log, API key entries');

    // Variables: the page of the newest entries is all PAGING; the older page holds the secrets' entries.
    await page.getByLabel('Action').fill('variable.');
    await page.getByLabel('Target type').fill('variable');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('target_type')).toBe('variable');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(50);
    expect(await table.locator('tbody tr').filter({ hasText: 'ACCOUNT_TOKEN' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Load older entries' }).click();
    await expect.poll(() => table.locator('tbody tr').count()).toBeGreaterThan(50);
    const tokenRows = table.locator('tbody tr').filter({ hasText: 'ACCOUNT_TOKEN' });
    await expect.poll(() => tokenRows.count()).toBe(2);
    expect(await tokenRows.nth(0).textContent()).toContain('variable.update');
    expect(await tokenRows.nth(1).textContent()).toContain('variable.create');
    expect(await table.locator('tbody tr').filter({ hasText: 'DEVICE_TOKEN' }).filter({ hasText: 'variable.create' }).count()).toBe(1);
    // Every page loaded: no further "older" button, and the status says so.
    await expect.poll(() => page.getByRole('button', { name: 'Load older entries' }).count()).toBe(0);
    await page.getByRole('status').filter({ hasText: 'the oldest included' }).waitFor();

    // The view is a link: reloading it keeps the filters, in the form as in the list.
    await page.reload();
    await table.waitFor();
    expect(await page.getByLabel('Action').inputValue()).toBe('variable.');
    expect(await page.getByLabel('Target type').inputValue()).toBe('variable');

    // The device's team: only the device-level variables belong to a team.
    const teams = (await d.api('/api/v1/teams')).body.teams as { id: string; name: string }[];
    const device = (await d.api(`/api/v1/devices/${d.deviceId}`)).body as { team_id: string };
    const team = teams.find((t) => t.id === device.team_id)!;
    await page.getByLabel('Team').selectOption(team.id);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('team_id')).toBe(team.id);
    await expect.poll(() => table.locator('tbody tr').count()).toBe(2);
    expect(await table.locator('tbody').textContent()).toContain('DEVICE_TOKEN');
    expect(await table.locator('tbody').textContent()).not.toContain('ACCOUNT_TOKEN');

    // An actor's link narrows to that actor, on top of the other filters.
    await table.locator('tbody tr').first().getByRole('link', { name: `Show only entries by ${d.env.state.adminUser}` }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('actor_id')).not.toBeNull();
    expect(new URL(page.url()).searchParams.get('team_id')).toBe(team.id);
    await expect.poll(() => table.locator('tbody tr').count()).toBe(2);

    // A time range after everything: the empty state, with the way back.
    await page.goto(`${d.origin}/audit?action=variable.&from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`);
    await page.getByText('No entries match these filters.').waitFor();
    await expectAccessible(page, 'audit log, nothing matches');
    await page.getByRole('link', { name: 'Clear the filters' }).first().click();
    await table.waitFor();
    expect(new URL(page.url()).search).toBe('');

    // A filter the API refuses: its message at the field.
    await page.getByLabel('Action').fill('Not An Action');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.getByLabel('Action').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.field-error').first().textContent()).toContain('an action');
    await expectAccessible(page, 'audit log, filter refused');

    for (const b of await received()) for (const secret of [accountSecret, accountSecret2, deviceSecret]) expect(b).not.toContain(secret);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('shows a user without audit:read no audit link, and the API refusal on /audit', async () => {
    const viewer = await createUser(d, 'vault-viewer', ['viewer']);
    const { page, context, foreign } = await openPage(d);
    await signIn(page, d.origin, viewer.username, viewer.password, '/audit');
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Variables' }).waitFor();
    expect(await nav.getByRole('link', { name: 'Audit log' }).count()).toBe(0);
    await page.getByRole('alert').filter({ hasText: 'Insufficient permissions' }).waitFor();
    expect(await page.getByRole('button', { name: 'Apply filters' }).count()).toBe(0);
    await expectAccessible(page, 'audit log refused');
    await screenshot(page, 'audit-refused');
    // Reading variables is theirs, changing them is not: no form, and the list says so.
    await page.goto(`${d.origin}/variables`);
    await page.getByText('You may not add variables here.').waitFor();
    expect(await page.getByRole('button', { name: 'Add variable' }).count()).toBe(0);
    await expectAccessible(page, 'variables, read only');
    expect(foreign).toEqual([]);
    await context.close();
  });

  it("shows an instance admin everyone's keys with their owners, and revokes another user's", async () => {
    const other = await createUser(d, 'vault-operator', ['operator']);
    const login = await d.api('/api/v1/auth/login', { json: { username: other.username, password: other.password } });
    const made = await d.api('/api/v1/api-keys', { json: { name: 'operator-script' }, key: login.body.token });
    expect(made.status).toBe(201);
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/api-keys');
    await page.getByRole('table', { name: 'Your API keys' }).waitFor();
    expect(await page.getByRole('row').filter({ hasText: 'operator-script' }).count()).toBe(0);
    await page.getByLabel('Whose keys').selectOption('all');
    const row = page.getByRole('table', { name: 'Everyone’s API keys' }).getByRole('row').filter({ hasText: 'operator-script' });
    await expect.poll(() => row.textContent()).toContain('vault-operator');
    await expectAccessible(page, "everyone's API keys");
    await row.getByRole('button', { name: 'Revoke operator-script' }).click();
    await page.getByRole('dialog', { name: 'Revoke operator-script?' }).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => row.count()).toBe(0);
    expect((await curl(['-H', `Authorization: Bearer ${made.body.key}`, `${d.origin}/api/v1/devices`])).status).toBe(401);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  for (const [width, colorScheme] of [
    [1280, 'light'],
    [1280, 'dark'],
    [390, 'light'],
    [390, 'dark'],
  ] as const) {
    it(`lays the pages out at ${width} px, ${colorScheme}, without a horizontal scroll`, async () => {
      const { page, context, foreign, errors } = await openPage(d, { width, height: width === 1280 ? 800 : 844, colorScheme });
      await signInAdmin(page, d, '/api-keys');
      for (const [path, name, ready] of [
        ['/api-keys', 'api-keys', () => page.getByRole('table', { name: 'Your API keys' }).waitFor()],
        ['/variables', 'variables-account', () => page.getByRole('table', { name: 'Variables of your account' }).waitFor()],
        [`/variables?device=${d.deviceId}`, 'variables-device', () => page.getByRole('table', { name: "What this device's runs get" }).waitFor()],
        ['/audit', 'audit', () => page.getByRole('table', { name: 'Audit log entries, newest first' }).waitFor()],
      ] as const) {
        await page.goto(d.origin + path);
        await ready();
        if (name === 'audit') await page.locator('.audit-details summary').first().click();
        await expectAccessible(page, `${name} ${width} ${colorScheme}`);
        expect(await noHorizontalScroll(page), `${name} ${width} ${colorScheme} scrolls sideways`).toBe(true);
        await screenshot(page, `${name}-${width}-${colorScheme}`);
      }
      expect(foreign).toEqual([]);
      expect(unexpected(errors)).toEqual([]);
      await context.close();
    });
  }
});
