// The device page's Logs tab through the UI, against the local relay and the demo device's real
// agent following a real file (--log-file PATH=NAME, no journal): a line appended to the file shows
// at the top of the Live view (marked live), a line over the size bound shows as truncated, a line
// of HTML shows as text; a search for a word of a line finds it after a reload (the view is in the
// URL), unticking its level hides it; "Load older" pages back by offset, each line once; a custom
// range that ends before it starts shows the API's own message beside From; an offline device's
// stored lines stay readable. Every state visited is scanned with axe-core (at 1280 light and 390
// dark) and must load nothing from another host.
import { randomBytes } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { waitFor, waitOnline } from '../../scripts/dev-env.ts';
import { tempDir } from '../e2e/harness.ts';
import { describeBrowser, expectAccessible, openPage, screenshot, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

const unique = (what: string) => `${what}${randomBytes(5).toString('hex')}`;

async function openLogs(page: Page, d: Dashboard, search = '') {
  await page.goto(`${d.origin}/device/${d.deviceId}/logs${search}`);
  await page.getByRole('heading', { name: 'Logs', level: 2 }).waitFor();
}

/** The table row holding `text` (a line's rows are the table's only rows with a message). */
const rowWith = (page: Page, text: string) => page.locator('table.log-table tbody tr').filter({ hasText: text });

describeBrowser('the Logs tab', () => {
  let d: Dashboard;
  let logFile: string;
  /** The words of lines the tests wrote, to find them again. */
  const word = unique('tailword');

  beforeAll(async () => {
    logFile = join(await tempDir('logs-file'), 'app.log');
    await writeFile(logFile, '');
    d = await startDashboard({ prefix: 'logs', agentArgs: ['--no-journal', '--log-file', `${logFile}=test-app`] });
  }, 120_000);
  afterAll(async () => {
    await d?.close();
  });

  it('shows a line written on the device at the top of the Live view, a truncated one marked, and HTML as text', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openLogs(page, d);
    await page.getByRole('button', { name: 'Live', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Live: new lines appear at the top' }).waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).searchParams.get('live')).toBe('1');
    await expect.poll(() => page.getByRole('button', { name: 'Live', exact: true }).getAttribute('aria-pressed')).toBe('true');

    await appendFile(logFile, `WARN pirelay logs test ${word} reached the relay\n`);
    await rowWith(page, word).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('table.log-table tbody tr').first().textContent()).toContain(word);
    expect(await rowWith(page, word).locator('td[data-label="Source"]').textContent()).toContain('test-app');

    // Over the agent's bound (8 KiB): stored cut, with a marker the page shows as a badge.
    const long = unique('longword');
    await appendFile(logFile, `${long} ${'x'.repeat(12_000)}\n`);
    await rowWith(page, long).waitFor({ timeout: 30_000 });
    await expect.poll(() => rowWith(page, long).locator('.log-truncated').textContent()).toMatch(/truncated: [\d,. ]+ more bytes were not kept/);
    expect(await rowWith(page, long).locator('.log-text').textContent()).not.toContain('[truncated');
    await rowWith(page, long).getByRole('button', { name: /^Show all/ }).click();
    await expect.poll(() => rowWith(page, long).locator('.log-text').textContent().then((t) => t?.length ?? 0)).toBeGreaterThan(8000);

    // A hostile device's line is shown, never run.
    const html = unique('htmlword');
    await appendFile(logFile, `<img src=x onerror="window.__logsPwned=1"> ${html}\n`);
    await rowWith(page, html).waitFor({ timeout: 30_000 });
    expect(await rowWith(page, html).locator('.log-text').textContent()).toContain('<img src=x onerror=');
    expect(await rowWith(page, html).locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __logsPwned?: number }).__logsPwned)).toBeUndefined();

    await screenshot(page, 'logs-live-1280-light');
    await expectAccessible(page, 'the Logs tab, live');

    await page.getByRole('button', { name: 'Live', exact: true }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Live', exact: true }).getAttribute('aria-pressed')).toBe('false');
    expect(await page.getByRole('status').filter({ hasText: 'Live: new lines appear at the top' }).count()).toBe(0);
    expect(new URL(page.url()).searchParams.get('live')).toBeNull();
    expect(await rowWith(page, word).count()).toBe(1);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('finds a line by a word of it after a reload, and hides it when its level is unticked', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openLogs(page, d);
    await page.getByRole('searchbox', { name: 'Search' }).fill(word);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe(word);
    await page.reload();
    await rowWith(page, word).waitFor({ timeout: 30_000 });
    expect(await page.locator('table.log-table tbody tr').count()).toBe(1);
    await page.getByText('One line matches.').waitFor();
    expect(await page.getByRole('searchbox', { name: 'Search' }).inputValue()).toBe(word);
    await expectAccessible(page, 'the Logs tab, a search');

    const level = (await rowWith(page, word).locator('.log-level').textContent())!.trim();
    const box = page.getByRole('checkbox', { name: level, exact: true });
    expect(await box.isChecked()).toBe(true);
    await box.uncheck();
    await page.getByText('No lines match.').waitFor({ timeout: 30_000 });
    expect(await rowWith(page, word).count()).toBe(0);
    const levels = new URL(page.url()).searchParams.get('level')!.split(',');
    expect(levels).not.toContain(level);
    expect(levels.length).toBe(7);
    await page.reload();
    await page.getByText('No lines match.').waitFor({ timeout: 30_000 });
    expect(await page.getByRole('checkbox', { name: level, exact: true }).isChecked()).toBe(false);
    await expectAccessible(page, 'the Logs tab, nothing matches');
    await page.getByRole('checkbox', { name: level, exact: true }).check();
    await rowWith(page, word).waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).searchParams.get('level')).toBeNull();

    // The same view on a phone in the dark: readable, nothing sideways, accessible.
    const phone = await openPage(d, { width: 390, height: 844, colorScheme: 'dark' });
    await signInAdmin(phone.page, d);
    await openLogs(phone.page, d, `?q=${word}`);
    await rowWith(phone.page, word).waitFor({ timeout: 30_000 });
    const [scrollWidth, innerWidth] = await phone.page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth!);
    await screenshot(phone.page, 'logs-search-390-dark');
    await expectAccessible(phone.page, 'the Logs tab, a search at 390 px dark');
    expect(phone.foreign).toEqual([]);
    expect(phone.errors).toEqual([]);
    await phone.context.close();

    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('reads older lines by offset with the total shown, each line once even when new ones arrived meanwhile', async () => {
    const paging = unique('pageword');
    const stored = async () => (await d.api(`/api/v1/devices/${d.deviceId}/logs?q=${paging}&limit=1`)).body.total as number;
    await appendFile(logFile, Array.from({ length: 120 }, (_, i) => `${paging} line ${i}\n`).join(''));
    await waitFor('120 lines stored', async () => (await stored()) === 120, 30_000);

    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openLogs(page, d, `?q=${paging}`);
    await page.getByText('The newest 100 of 120 lines that match.').waitFor({ timeout: 30_000 });
    expect(await page.locator('table.log-table tbody tr').count()).toBe(100);
    expect(await page.locator('table.log-table tbody tr').first().textContent()).toContain(`${paging} line 119`);

    // Three more arrive while the page is not live: the offsets move by three.
    await appendFile(logFile, [0, 1, 2].map((i) => `${paging} late ${i}\n`).join(''));
    await waitFor('123 lines stored', async () => (await stored()) === 123, 30_000);
    await page.getByRole('button', { name: 'Load older' }).click();
    await page.getByText('123 lines match.').waitFor({ timeout: 30_000 });
    const texts = await page.locator('table.log-table tbody tr .log-text').allTextContents();
    expect(texts.length).toBe(123);
    expect(new Set(texts).size).toBe(123);
    expect(texts[0]).toContain(`${paging} late 2`);
    expect(texts.at(-1)).toContain(`${paging} line 0`);
    expect(await page.getByRole('button', { name: 'Load older' }).count()).toBe(0);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it("shows the API's message beside From when a custom range ends before it begins", async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openLogs(page, d);
    await page.getByRole('combobox', { name: 'Time range' }).selectOption('custom');
    await page.getByLabel('From', { exact: true }).fill('2026-03-02T10:00');
    await page.getByLabel('To', { exact: true }).fill('2026-03-01T10:00');
    await page.getByRole('button', { name: 'Apply the range' }).click();

    const url = new URL(page.url());
    expect(url.searchParams.get('range')).toBe('custom');
    const asked = await d.api(`/api/v1/devices/${d.deviceId}/logs?from=${encodeURIComponent(url.searchParams.get('from')!)}&to=${encodeURIComponent(url.searchParams.get('to')!)}`);
    expect(asked.status).toBe(400);
    const said = (asked.body.details.issues as { path: string; message: string }[]).find((i) => i.path === 'from')?.message;
    expect(said, JSON.stringify(asked.body)).toBeTruthy();

    const from = page.getByLabel('From', { exact: true });
    const fromError = page.locator('.field', { has: from }).locator('.field-error');
    await fromError.waitFor({ timeout: 30_000 });
    expect((await fromError.textContent())?.trim()).toBe(said);
    expect(await from.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.field', { has: page.getByLabel('To', { exact: true }) }).locator('.field-error').count()).toBe(0);
    expect(await page.locator('table.log-table').count()).toBe(0);
    await screenshot(page, 'logs-bad-range-1280-light');
    await expectAccessible(page, 'the Logs tab, a bad range');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it("keeps an offline device's stored lines readable and says it is offline until it is back", async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await d.env.stopAgent(d.deviceId);
    await waitFor('the device offline', async () => (await d.api(`/api/v1/devices/${d.deviceId}`)).body.online === false, 30_000);
    await openLogs(page, d, `?q=${word}`);
    await page.getByText(/This device is offline\. The lines it sent before are here/).waitFor({ timeout: 30_000 });
    await rowWith(page, word).waitFor({ timeout: 30_000 });
    await expectAccessible(page, 'the Logs tab, device offline');
    d.env.startAgent(d.deviceId);
    await waitOnline(d.env, 30_000);
    await expect.poll(() => page.getByText(/This device is offline/).count(), { timeout: 30_000 }).toBe(0);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
