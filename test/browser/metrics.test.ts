// The device page's Metrics tab through the UI, against the local relay and the demo device's real
// agent sampling this machine: the charts draw from history and a live sample arrives on them
// (their point count grows while the page is not reloaded), over one socket to the device's
// metrics stream; a chart only for what the device measures (no empty temperature or GPU chart);
// the zoom buttons ask history for the resolution of their range (1 h raw, 24 h 1m, 7 d 5m,
// 30 d 1h) and keep it in the URL; the charts follow their container when the window narrows (no
// sideways scroll at 360 px); an offline device's history stays readable and live samples resume
// when it is back; a device that never sent a sample says so, with no empty chart; the
// overview's live info follows the fleet stream's samples; someone without
// metrics:read has no Metrics tab and reads no history. Every state visited is scanned with
// axe-core and loads nothing from another host.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import { waitOnline } from '../../scripts/dev-env.ts';
import { agentCli, tempDir } from '../e2e/harness.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

/** expect.poll waits 1 s by default; the page is given as long as Playwright's own waits give it. */
const WAIT = { timeout: 30_000 };

const chart = (page: Page, id: string) => page.locator(`figure[data-chart="chart-${id}"]`);
const pointsOn = async (page: Page, id: string) => Number(await chart(page, id).getAttribute('data-points'));
const charts = (page: Page) => page.locator('figure[data-chart]').evaluateAll((els) => els.map((e) => e.getAttribute('data-chart')!.replace(/^chart-/, '')));

/** Records the page's history requests (their query) and the WebSockets it opens. */
function record(page: Page) {
  const history: URLSearchParams[] = [];
  const sockets: string[] = [];
  page.on('request', (r: Request) => {
    const u = new URL(r.url());
    if (r.method() === 'GET' && u.pathname === '/api/v1/history') history.push(u.searchParams);
  });
  page.on('websocket', (ws) => sockets.push(ws.url()));
  return { history, sockets };
}

async function openMetrics(page: Page, d: Dashboard, search = '') {
  await page.goto(`${d.origin}/device/${d.deviceId}/metrics${search}`);
  await page.getByRole('heading', { name: 'Metrics', level: 2 }).waitFor();
}

describeBrowser('the Metrics tab', () => {
  let d: Dashboard;

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'metrics' });
  }, 120_000);
  afterAll(async () => {
    await d?.close();
  });

  it('draws the charts from history and sees a new live sample arrive on them', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    const seen = record(page);
    await signInAdmin(page, d);
    await openMetrics(page, d);
    await page.getByRole('status').filter({ hasText: 'Live: a new sample every second' }).waitFor(WAIT);
    await chart(page, 'cpu').waitFor(WAIT);
    // A reload would lose this.
    await page.evaluate(() => ((window as unknown as { unreloaded: boolean }).unreloaded = true));

    const before = await pointsOn(page, 'cpu');
    expect(before).toBeGreaterThan(0);
    await expect.poll(() => pointsOn(page, 'cpu'), WAIT).toBeGreaterThan(before);
    // Every chart holds the same points: the sample reached them all.
    const memory = await pointsOn(page, 'memory');
    expect(memory).toBeGreaterThan(before);
    expect(await page.evaluate(() => (window as unknown as { unreloaded?: boolean }).unreloaded)).toBe(true);

    // One live socket, to this device's metrics; the last hour's raw points read once.
    const live = seen.sockets.filter((s) => new URL(s).searchParams.get('agent_id') === d.deviceId);
    expect(live).toHaveLength(1);
    expect(new URL(live[0]!).searchParams.get('events')).toBe('metrics');
    expect(seen.history.map((q) => q.get('resolution'))).toEqual(['raw']);
    const q = seen.history[0]!;
    expect(q.get('agent_id')).toBe(d.deviceId);
    expect(Date.parse(q.get('to')!) - Date.parse(q.get('from')!)).toBe(3_600_000);

    // A chart for what the device measures, and none for what it does not.
    const latest = await d.api('/api/v1/metrics/latest');
    expect(latest.status, JSON.stringify(latest.body)).toBe(200);
    const sample = latest.body.metrics.find((m: { agent_id: string }) => m.agent_id === d.deviceId);
    expect(sample).toBeDefined();
    const drawn = await charts(page);
    expect(drawn).toEqual(expect.arrayContaining(['cpu', 'memory', 'network', 'load']));
    expect(drawn.includes('temperature')).toBe(sample.temperature.sensors.length > 0);
    expect(drawn.includes('gpu')).toBe(sample.gpu.gpus.some((g: { utilization?: number }) => g.utilization !== undefined));
    expect(drawn.includes('disk')).toBe(sample.disk.mounts.some((m: { total: number }) => m.total > 0));

    // The text alternative: each chart is an image named with its latest values, which the legend shows too.
    const label = await chart(page, 'cpu').getByRole('img').getAttribute('aria-label');
    expect(label).toMatch(/^CPU \(total and per core\): latest Total \d+(\.\d)? %/);
    const cores = sample.cpu.cores.length;
    if (cores > 1) expect(label).toMatch(cores > 4 ? new RegExp(`${cores} cores`) : /Core 0 \d/);
    expect(await chart(page, 'memory').locator('.chart-legend').textContent()).toMatch(/Memory \d+(\.\d)? %/);

    await expectAccessible(page, 'the Metrics tab, live');
    await screenshot(page, 'metrics-live-1280-light');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('asks history for the resolution of each zoom, keeps the zoom in the URL, and adds live points only to the last hour', async () => {
    const { page, context, foreign, errors } = await openPage(d, { colorScheme: 'dark' });
    const seen = record(page);
    await signInAdmin(page, d);
    await openMetrics(page, d);
    await chart(page, 'cpu').waitFor(WAIT);
    const cases = [
      ['24 hours', '24h', '1m', 86_400_000],
      ['7 days', '7d', '5m', 7 * 86_400_000],
      ['30 days', '30d', '1h', 30 * 86_400_000],
      ['1 hour', null, 'raw', 3_600_000],
    ] as const;
    for (const [name, range, resolution, span] of cases) {
      seen.history.length = 0;
      await page.getByRole('button', { name, exact: true }).click();
      await expect.poll(() => page.getByRole('button', { name, exact: true }).getAttribute('aria-pressed')).toBe('true');
      await expect.poll(() => seen.history.length, WAIT).toBe(1);
      const q = seen.history[0]!;
      expect(q.get('resolution'), name).toBe(resolution);
      expect(Date.parse(q.get('to')!) - Date.parse(q.get('from')!), name).toBe(span);
      expect(new URL(page.url()).searchParams.get('range')).toBe(range);
      await expect.poll(() => page.locator('section.metrics').getAttribute('data-resolution'), WAIT).toBe(resolution);
      // A device that has sampled for a minute or two may have no finished 5 m or 1 h bucket yet: charts, or the page saying so.
      await page.locator('figure[data-chart="chart-cpu"], .metrics .empty').first().waitFor(WAIT);
      expect(await page.locator('[role="alert"]').allTextContents(), name).toEqual([]);
      await expectAccessible(page, `the Metrics tab, ${name}, dark`);
      if (range === '24h' && (await chart(page, 'cpu').count()) > 0) {
        expect(await page.getByText(/Averages per minute; the shaded band/).count()).toBe(1);
        // A bucketed view does not move with live samples.
        const held = await pointsOn(page, 'cpu');
        await page.waitForFunction(() => /last sample/.test(document.querySelector('.metrics-live')?.textContent ?? ''), undefined, WAIT);
        const stamp = await page.locator('.metrics-live time').getAttribute('datetime');
        await page.waitForFunction((s) => document.querySelector('.metrics-live time')?.getAttribute('datetime') !== s, stamp, WAIT);
        expect(await pointsOn(page, 'cpu')).toBe(held);
        await screenshot(page, 'metrics-24h-1280-dark');
      }
    }
    // The zoom survives a reload (and is what a link to it shows).
    await openMetrics(page, d, '?range=7d');
    await expect.poll(() => page.locator('section.metrics').getAttribute('data-resolution'), WAIT).toBe('5m');
    expect(await page.getByRole('button', { name: '7 days', exact: true }).getAttribute('aria-pressed')).toBe('true');
    expect(seen.history[seen.history.length - 1]!.get('resolution')).toBe('5m');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('fits the charts to their container as the window narrows, with no sideways scroll at 360 px', async () => {
    const { page, context, foreign, errors } = await openPage(d, { width: 1280, height: 800 });
    await signInAdmin(page, d);
    await openMetrics(page, d);
    await chart(page, 'cpu').waitFor(WAIT);
    const widths = () =>
      chart(page, 'cpu').evaluate((f) => {
        const plot = f.querySelector('.chart-plot')!;
        return { box: plot.clientWidth, canvas: f.querySelector('canvas')!.getBoundingClientRect().width };
      });
    const wide = await widths();
    expect(wide.canvas).toBeLessThanOrEqual(wide.box);
    await page.setViewportSize({ width: 360, height: 800 });
    await expect.poll(() => widths().then((w) => w.canvas), WAIT).toBeLessThan(wide.canvas);
    const narrow = await widths();
    expect(narrow.canvas).toBeLessThanOrEqual(narrow.box);
    const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth!);
    await expectAccessible(page, 'the Metrics tab at 360 px');
    await screenshot(page, 'metrics-360-light');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('keeps an offline device\'s history readable and resumes live samples when it is back', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openMetrics(page, d);
    await chart(page, 'cpu').waitFor(WAIT);
    await d.env.stopAgent(d.deviceId);
    await page.getByText('This device is offline').waitFor(WAIT);
    // Its history is still drawn.
    expect(await pointsOn(page, 'cpu')).toBeGreaterThan(0);
    await expectAccessible(page, 'the Metrics tab, device offline');
    const offline = await pointsOn(page, 'cpu');

    d.env.startAgent(d.deviceId);
    await waitOnline(d.env);
    await expect.poll(() => page.getByText('This device is offline').count(), WAIT).toBe(0);
    await expect.poll(() => pointsOn(page, 'cpu'), WAIT).toBeGreaterThan(offline);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('says so when a device has sent no sample yet, with no empty chart', async () => {
    const teams = (await d.api('/api/v1/teams')).body.teams as { id: string; name: string }[];
    const team_id = teams.find((t) => t.name === 'Default')!.id;
    const token = await d.api('/api/v1/enrollment-tokens', { json: { name: 'quiet', auto_approve: true, max_uses: 1, team_id } });
    expect(token.status, JSON.stringify(token.body)).toBe(201);
    const enrolled = await agentCli(['enroll', '--relay', d.origin, '--token', token.body.token, '--name', 'quiet-pi', '--config', join(await tempDir('metrics-quiet'), 'agent.json')]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const { device_id: id } = JSON.parse(enrolled.stdout.trim().split('\n').pop()!);
    const { page, context, foreign, errors } = await openPage(d, { width: 390, height: 844, colorScheme: 'dark' });
    await signInAdmin(page, d, `/device/${id}/metrics`);
    await page.getByText('No samples in the last 1 hour.').waitFor(WAIT);
    await page.getByText(/This device is offline/).waitFor();
    expect(await page.locator('figure[data-chart]').count()).toBe(0);
    await page.getByRole('button', { name: '30 days', exact: true }).click();
    await page.getByText('No samples in the last 30 days.').waitFor(WAIT);
    expect(await page.locator('figure[data-chart]').count()).toBe(0);
    await expectAccessible(page, 'the Metrics tab of a device with no samples');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('keeps the overview\'s live info current from the fleet stream\'s samples, without reading it again', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    const reads: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === `/api/v1/devices/${d.deviceId}/info`) reads.push(r.url());
    });
    await signInAdmin(page, d, `/device/${d.deviceId}`);
    const readAt = page.getByRole('region', { name: 'Live info' }).locator('p.muted time').last();
    await readAt.waitFor(WAIT);
    const first = await readAt.getAttribute('datetime');
    await expect.poll(() => readAt.getAttribute('datetime'), WAIT).not.toBe(first);
    expect(Date.parse((await readAt.getAttribute('datetime'))!)).toBeGreaterThan(Date.parse(first!));
    expect(reads, 'the sample came by the stream').toHaveLength(1);
    expect(await page.getByRole('region', { name: 'CPU' }).textContent()).toMatch(/\d+\.\d %/);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows no Metrics tab, and reads no history, for someone without metrics:read', async () => {
    const role = await d.api('/api/v1/roles', { json: { name: 'device-reader', permissions: ['dashboard:view', 'devices:read'] } });
    expect(role.status, JSON.stringify(role.body)).toBe(201);
    const user = await createUser(d, 'nometrics', ['device-reader']);
    const teams = await d.api('/api/v1/teams');
    const team = teams.body.teams.find((t: { name: string }) => t.name === 'Default').id;
    expect((await d.api(`/api/v1/teams/${team}/members`, { json: { username: user.username, role: 'member' } })).status).toBe(201);

    const { page, context, foreign, errors } = await openPage(d);
    const seen = record(page);
    await signIn(page, d.origin, user.username, user.password, `/device/${d.deviceId}`);
    await page.getByRole('navigation', { name: 'Device' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Device' }).getByRole('link', { name: 'Metrics' }).count()).toBe(0);
    await page.goto(`${d.origin}/device/${d.deviceId}/metrics`);
    await page.getByText('This device has no such tab.').waitFor();
    // Nor may they read it behind the page's back.
    const r = await page.evaluate((id) => fetch(`/api/v1/history?agent_id=${id}`).then((x) => x.status), d.deviceId);
    expect(r).toBe(403);
    expect(seen.history.length).toBe(1); // that one, not the page's
    expect(seen.sockets.some((s) => new URL(s).searchParams.has('agent_id'))).toBe(false);
    await expectAccessible(page, 'no Metrics tab');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
