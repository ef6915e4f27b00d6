// The fleet page as people use it: the demo device going offline and online live from the fleet
// stream (no request for the device list in between, no reload), devices enrolled with the agent
// CLI against a token that does not auto-approve waiting for approval, approving one (it moves
// into the list and comes online) and rejecting another after confirming, a viewer who sees no
// approve or reject buttons, what someone in no team is told, each device's CPU, memory and
// temperature updating live from the same stream (one read of the latest samples for the first
// paint, then no request per device and no polling), and the filters living in the URL.
import type { ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { AGENT_MAIN, runBun } from '../../scripts/dev-env.ts';
import { agentCli, tempDir } from '../e2e/harness.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard, type OpenedPage } from './harness.ts';

/** expect.poll waits 1 s by default; the page is given as long as Playwright's own waits give it. */
const WAIT = { timeout: 30_000 };

/** The names of the devices the fleet table lists, in its order. */
const listed = (page: Page) => page.getByRole('table', { name: 'Devices', exact: true }).getByRole('link').allTextContents();
const pendingListed = (page: Page) => page.getByRole('table', { name: 'Devices waiting for approval' }).getByRole('link').allTextContents();
const rowOf = (page: Page, name: string) => page.getByRole('table', { name: 'Devices', exact: true }).getByRole('row').filter({ has: page.getByRole('link', { name, exact: true }) });
const statusOf = (page: Page, name: string) => rowOf(page, name).locator('.badge').textContent();

/** Records the page's requests for the device list (GET /api/v1/devices, with any query). */
function recordListRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (r.method() === 'GET' && u.pathname === '/api/v1/devices') seen.push(r.url());
  });
  return seen;
}

describeBrowser('the fleet page', () => {
  let d: Dashboard;
  let dir: string;
  let defaultTeam: string;
  let labTeam: string;
  const agents = new Map<string, ChildProcess>();
  const enrolled = new Map<string, string>(); // name → device id

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'fleet' });
    dir = await tempDir('fleet-agents');
    const teams = await d.api('/api/v1/teams');
    defaultTeam = teams.body.teams.find((t: { name: string }) => t.name === 'Default').id;
    const lab = await d.api('/api/v1/teams', { json: { name: 'Lab' } });
    expect(lab.status, JSON.stringify(lab.body)).toBe(201);
    labTeam = lab.body.id;
  });
  afterAll(async () => {
    for (const a of agents.values()) a.kill('SIGKILL');
    await d?.close();
  });

  /** The same signed-in view at 1280 and 390 px, light and dark, for looking at (and axe in each). */
  async function screenshots(from: OpenedPage, path: string, name: string) {
    const cookies = await from.context.cookies();
    for (const [width, height] of [
      [1280, 800],
      [390, 844],
    ] as const) {
      for (const colorScheme of ['light', 'dark'] as const) {
        const o = await openPage(d, { width, height, colorScheme });
        await o.context.addCookies(cookies);
        await o.page.goto(d.origin + path);
        await o.page.getByRole('heading', { name: 'Fleet', level: 1 }).waitFor();
        await o.page.getByRole('status').filter({ hasText: /Loading/ }).waitFor({ state: 'detached' });
        await expectAccessible(o.page, `${name} at ${width} px, ${colorScheme}`);
        // No layout that scrolls the page sideways.
        expect(await o.page.evaluate(() => document.documentElement.scrollWidth <= innerWidth)).toBe(true);
        await screenshot(o.page, `fleet-${name}-${width}-${colorScheme}`);
        expect(o.foreign).toEqual([]);
        await o.context.close();
      }
    }
  }

  it('lists the demo device online, then offline and online again live from the stream', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    const requests = recordListRequests(page);
    await signInAdmin(page, d);
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi']);
    await expect.poll(() => statusOf(page, 'demo-pi'), WAIT).toBe('online');
    await expect.poll(() => rowOf(page, 'demo-pi').getByRole('cell').allTextContents(), WAIT).toContain('Default');
    await expectAccessible(page, 'fleet list');
    expect(requests.length).toBeGreaterThan(0);
    requests.length = 0;
    // A reload would lose this.
    await page.evaluate(() => ((window as unknown as { unreloaded: boolean }).unreloaded = true));

    await d.env.stopAgent(d.deviceId);
    await expect.poll(() => statusOf(page, 'demo-pi'), WAIT).toBe('offline');
    expect(await rowOf(page, 'demo-pi').locator('time').count()).toBe(1); // "last seen" a moment ago

    d.env.startAgent(d.deviceId);
    await expect.poll(() => statusOf(page, 'demo-pi'), WAIT).toBe('online');

    expect(requests, 'the status came from the stream, not from reading the list again').toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { unreloaded?: boolean }).unreloaded)).toBe(true);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('lists devices enrolled with a token that does not approve them as waiting for approval', async () => {
    for (const [name, team] of [
      ['lab-pi', labTeam],
      ['stray-pi', defaultTeam],
    ] as const) {
      const tok = await d.api('/api/v1/enrollment-tokens', { json: { name, auto_approve: false, team_id: team } });
      expect(tok.status, JSON.stringify(tok.body)).toBe(201);
      const config = join(dir, `${name}.json`);
      const out = await agentCli(['enroll', '--relay', d.origin, '--token', tok.body.token, '--config', config, '--name', name]);
      expect(out.code, out.stderr).toBe(0);
      const res = JSON.parse(out.stdout.trim().split('\n').pop()!);
      expect(res.status).toBe('pending');
      enrolled.set(name, res.device_id);
      // Its agent runs and keeps asking to connect, as on a real Pi.
      agents.set(name, runBun([AGENT_MAIN, 'run', '--simulate', '--config', config], { logs: 'ignore' }));
    }

    const opened = await openPage(d);
    const { page, context, foreign, errors } = opened;
    await signInAdmin(page, d);
    await page.getByRole('heading', { name: 'Waiting for approval', level: 2 }).waitFor();
    await expect.poll(() => pendingListed(page).then((n) => n.sort()), WAIT).toEqual(['lab-pi', 'stray-pi']);
    const row = page.getByRole('table', { name: 'Devices waiting for approval' }).getByRole('row').filter({ hasText: 'lab-pi' });
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells).toContain(hostname());
    expect(cells).toContain('Lab');
    expect(await row.locator('time').count()).toBe(1); // when it asked
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi']); // not in the fleet until approved
    await page.getByRole('button', { name: 'Approve lab-pi', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Reject stray-pi', exact: true }).waitFor();
    await expectAccessible(page, 'devices waiting for approval');
    await screenshots(opened, '/', 'pending');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('tells someone in no team what to do: a link to add a device only for those who may', async () => {
    const otto = await createUser(d, 'otto', ['operator']);
    const vera = await createUser(d, 'vera', ['viewer']);
    for (const [user, addLink] of [
      [otto, 1],
      [vera, 0],
    ] as const) {
      const { page, context, foreign } = await openPage(d);
      await signIn(page, d.origin, user.username, user.password);
      await page.getByText('No devices yet.').waitFor();
      // In the page (besides the navigation's): its action and the empty state's.
      expect(await page.getByRole('main').getByRole('link', { name: /add a device/i }).count()).toBe(addLink * 2);
      expect(await page.getByRole('heading', { name: 'Waiting for approval' }).count()).toBe(0);
      await expectAccessible(page, `no devices (${user.username})`);
      expect(foreign).toEqual([]);
      await context.close();
    }
  });

  it('shows a viewer the fleet, but no approve or reject buttons', async () => {
    for (const team of [defaultTeam, labTeam]) {
      const r = await d.api(`/api/v1/teams/${team}/members`, { json: { username: 'vera', role: 'member' } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    const { page, context, foreign, errors } = await openPage(d);
    await signIn(page, d.origin, 'vera', 'correct-horse-battery-9');
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi']);
    // The viewer's own API answer holds the pending devices; the page keeps them to those who may decide.
    const seen = await page.evaluate(() => fetch('/api/v1/devices?status=pending').then((r) => r.json()));
    expect(seen.devices.map((x: { name: string }) => x.name).sort()).toEqual(['lab-pi', 'stray-pi']);
    expect(await page.getByRole('heading', { name: 'Waiting for approval' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^(Approve|Reject)\b/ }).count()).toBe(0);
    expect(await page.getByRole('main').getByRole('link', { name: /add a device/i }).count()).toBe(0);
    await expectAccessible(page, 'fleet as a viewer');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('approves one device into the list, where it comes online, and rejects another after confirming', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await expect.poll(() => pendingListed(page).then((n) => n.sort()), WAIT).toEqual(['lab-pi', 'stray-pi']);
    const requests = recordListRequests(page);

    await page.getByRole('button', { name: 'Approve lab-pi', exact: true }).click();
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi', 'lab-pi']);
    expect(await pendingListed(page)).toEqual(['stray-pi']);
    // Its agent, still asking, is let in; the stream says so.
    await expect.poll(() => statusOf(page, 'lab-pi'), WAIT).toBe('online');
    expect(requests, 'online came from the stream').toEqual([]);
    expect(await rowOf(page, 'lab-pi').getByRole('cell').allTextContents()).toContain('Lab');

    await page.getByRole('button', { name: 'Reject stray-pi', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Reject stray-pi?' });
    await dialog.waitFor();
    await expectAccessible(page, 'reject confirmation');
    // Cancelling changes nothing.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await pendingListed(page)).toEqual(['stray-pi']);
    await page.getByRole('button', { name: 'Reject stray-pi', exact: true }).click();
    await dialog.getByRole('button', { name: 'Reject', exact: true }).click();
    await page.getByRole('heading', { name: 'Waiting for approval' }).waitFor({ state: 'detached' });
    expect(await page.getByText('stray-pi').count()).toBe(0);
    expect(await listed(page)).toEqual(['demo-pi', 'lab-pi']);
    expect((await d.api(`/api/v1/devices/${enrolled.get('stray-pi')}`)).body.status).toBe('rejected');
    expect((await d.api(`/api/v1/devices/${enrolled.get('lab-pi')}`)).body.status).toBe('approved');
    await expectAccessible(page, 'fleet after approving and rejecting');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows each device\'s CPU, memory and temperature live from the stream: one read for the first paint, then no request per device and no polling', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    const requests: string[] = [];
    const sockets: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/api/')) requests.push(`${r.method()} ${u.pathname}${u.search}`);
    });
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await signInAdmin(page, d);
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi', 'lab-pi']);
    await expect.poll(() => statusOf(page, 'lab-pi'), WAIT).toBe('online');
    const figure = (name: string, column: 'CPU' | 'Memory' | 'Temp.') => rowOf(page, name).locator(`td[data-label="${column}"]`);
    const pointsOf = async (name: string) => Number((await figure(name, 'CPU').locator('.fleet-figure').getAttribute('data-points')) ?? 0);
    for (const name of ['demo-pi', 'lab-pi']) {
      await expect.poll(() => figure(name, 'CPU').textContent(), WAIT).toMatch(/^\d+(\.\d)? %$/);
      await expect.poll(() => figure(name, 'Memory').textContent(), WAIT).toMatch(/^\d+(\.\d)? %$/);
    }
    // A temperature where the device has a sensor, a dash where it has none.
    const latest = await d.api('/api/v1/metrics/latest');
    expect(latest.status, JSON.stringify(latest.body)).toBe(200);
    const sensors = latest.body.metrics.find((m: { agent_id: string }) => m.agent_id === d.deviceId).temperature.sensors.length;
    expect(await figure('demo-pi', 'Temp.').textContent()).toMatch(sensors ? /^\d+\.\d °C$/ : /^—$/);

    const seeded = requests.filter((r) => r.includes('/metrics') || r.includes('/history'));
    expect(seeded, 'the first paint reads every device\'s latest sample at once').toEqual(['GET /api/v1/metrics/latest']);
    const counted = requests.length;
    // Two more samples per device (the relay's refresh interval) arrive on the page as they come…
    const start = { demo: await pointsOf('demo-pi'), lab: await pointsOf('lab-pi') };
    await expect.poll(() => pointsOf('demo-pi'), { timeout: 60_000 }).toBeGreaterThanOrEqual(start.demo + 2);
    await expect.poll(() => pointsOf('lab-pi'), { timeout: 60_000 }).toBeGreaterThanOrEqual(start.lab + 2);
    expect(await figure('demo-pi', 'CPU').locator('svg.sparkline polyline').count()).toBe(1);
    // …over the one fleet socket, with no request to the API in between.
    expect(requests.slice(counted), 'no polling, no request per device').toEqual([]);
    expect(sockets.map((s) => new URL(s).pathname + new URL(s).search)).toEqual(['/api/v1/stream']);
    await expectAccessible(page, 'fleet with live figures');
    await screenshot(page, 'fleet-figures-1280-light');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('filters by name, status and team, kept in the URL across a reload, with a way out when nothing matches', async () => {
    agents.get('stray-pi')?.kill('SIGTERM');
    const lab = agents.get('lab-pi')!;
    const exited = new Promise((r) => lab.once('exit', r));
    lab.kill('SIGTERM');
    await exited;
    const tags = [
      { name: 'garage', color: '#ff8800' },
      { name: 'web', color: '#1b4d8f' },
    ];
    expect((await d.api(`/api/v1/devices/${d.deviceId}/tags`, { method: 'PUT', json: { tags } })).status).toBe(200);
    const opened = await openPage(d);
    const { page, context, foreign, errors } = opened;
    await signInAdmin(page, d);
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi', 'lab-pi']);
    await expect.poll(() => statusOf(page, 'lab-pi'), WAIT).toBe('offline');
    expect(await rowOf(page, 'demo-pi').locator('.tag').allTextContents()).toEqual(['garage', 'web']);
    await screenshots(opened, '/', 'list');
    const search = () => new URL(page.url()).searchParams;

    await page.getByLabel('Name').fill('DEMO'); // any case
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi']);
    expect(search().get('q')).toBe('DEMO');
    await page.getByLabel('Name').fill('');
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi', 'lab-pi']);

    await page.getByLabel('Status').selectOption({ label: 'Offline' });
    await expect.poll(() => listed(page), WAIT).toEqual(['lab-pi']);
    expect(search().get('status')).toBe('offline');
    await page.getByLabel('Status').selectOption({ label: 'Online' });
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi']);
    await page.getByLabel('Status').selectOption({ label: 'Any' });
    expect(search().has('status')).toBe(false);

    await page.getByLabel('Team').selectOption({ label: 'Lab' });
    await expect.poll(() => listed(page), WAIT).toEqual(['lab-pi']);
    expect(search().get('team')).toBe(labTeam);

    // Lab and online: nothing matches, and the page says so.
    await page.getByLabel('Status').selectOption({ label: 'Online' });
    await page.getByText('No devices match these filters.').waitFor();
    expect(Object.fromEntries(search())).toEqual({ team: labTeam, status: 'online' });
    await expectAccessible(page, 'no device matches the filters');
    await screenshots(opened, `/?team=${labTeam}&status=online`, 'no-match');

    // The filtered view survives a reload (and is what a link to it shows).
    await page.reload();
    await page.getByText('No devices match these filters.').waitFor();
    expect(await page.getByLabel('Team').inputValue()).toBe(labTeam);
    expect(await page.getByLabel('Status').inputValue()).toBe('online');

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => listed(page), WAIT).toEqual(['demo-pi', 'lab-pi']);
    expect(new URL(page.url()).search).toBe('');

    await page.goto(`${d.origin}/?q=lab`);
    await expect.poll(() => listed(page), WAIT).toEqual(['lab-pi']);
    expect(await page.getByLabel('Name').inputValue()).toBe('lab');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
