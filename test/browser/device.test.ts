// The device page through the UI, against the local relay and a real agent (--simulate, reading
// this machine's /proc): facts and live device info, the process list sorted and filtered,
// tunnels made, copied, opened, locked with a password or a bearer token shown once, disabled and
// deleted, a TCP tunnel's `pirelay tcp` command run as shown, renaming, moving to another team,
// revoking and removing a second device, and "not found" for an unknown or another team's device.
// Every state visited is scanned with axe-core and must load nothing from another host.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { Agent, fetch as ufetch, type Dispatcher } from 'undici';
import { ROOT } from '../../scripts/dev-env.ts';
import { agentCli, freePort, loopbackLookup, startTargets, tcpExchange, tempDir, type Targets } from '../e2e/harness.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';
import { formatBytes } from '../../shared/bytes.ts';


/** The processes table's rows as {name, cpu, text of every cell}. */
async function processRows(page: Page) {
  const table = page.getByRole('table', { name: /^Processes on / });
  await table.locator('tbody tr').first().waitFor();
  return table.locator('tbody tr').evaluateAll((trs) =>
    trs.map((tr) => {
      const cells = Array.from(tr.querySelectorAll('td'), (td) => td.textContent ?? '');
      return { pid: cells[0]!, name: cells[1]!, user: cells[2]!, cpu: Number(cells[3]), command: cells[5]!, text: cells.join(' ') };
    }),
  );
}

// Node does not resolve *.localhost by itself as browsers do: this dispatcher sends every name to 127.0.0.1.
const dispatcher: Dispatcher = new Agent({ connect: { lookup: loopbackLookup } as never });

/** A visitor's request to a tunnel's address, with no dashboard session: only the headers given. */
async function visit(url: string, headers: Record<string, string> = {}) {
  const res = await ufetch(url, { dispatcher, headers });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // an HTML page
  }
  return { status: res.status, headers: res.headers, body };
}

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

/** The tunnels tab's create form, opened with its button when the device already has tunnels. */
async function newTunnelForm(page: Page) {
  const form = page.getByRole('form', { name: 'New tunnel' });
  const button = page.getByRole('button', { name: 'New tunnel' });
  await form.or(button).first().waitFor();
  if (await button.isVisible()) await button.click();
  return form;
}

const nonIncreasing = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! >= x);

describeBrowser('the device page', () => {
  let d: Dashboard;
  let targets: Targets;
  let port: number;
  const clients: ChildProcess[] = [];

  beforeAll(async () => {
    targets = await startTargets();
    d = await startDashboard({ prefix: 'device' });
    port = Number(new URL(d.origin).port);
  });
  afterAll(async () => {
    clients.forEach((c) => c.kill());
    await d?.close();
    targets?.stop();
  });

  const devicePage = async (path = '', opts: Parameters<typeof openPage>[1] = {}) => {
    const opened = await openPage(d, opts);
    await signInAdmin(opened.page, d, `/device/${d.deviceId}${path}`);
    return opened;
  };

  it('shows the demo device: its header, its facts and live device info from its agent', async () => {
    const device = (await d.api(`/api/v1/devices/${d.deviceId}`)).body;
    const info = (await d.api(`/api/v1/devices/${d.deviceId}/info`)).body;
    const { page, context, foreign, errors } = await devicePage();
    await page.getByRole('heading', { level: 1, name: device.name }).waitFor();
    await expect.poll(() => page.locator('.device-meta .badge').textContent()).toBe('online');
    await page.locator('.device-meta').getByRole('link', { name: 'Default' }).waitFor();
    expect(await page.getByRole('link', { name: 'Overview' }).getAttribute('aria-current')).toBe('page');

    const facts = page.getByRole('region', { name: 'Facts' });
    await expect.poll(() => facts.textContent()).toContain(device.hostname);
    expect(await facts.textContent()).toContain(device.id);

    const cpu = page.getByRole('region', { name: 'CPU' });
    await cpu.waitFor();
    expect(await cpu.textContent()).toMatch(/\d+\.\d %/);
    expect(await cpu.textContent()).toContain(`of ${info.cpu.cores} core`);
    expect(Number(await cpu.getByRole('meter', { name: 'CPU usage' }).getAttribute('value'))).toBeGreaterThanOrEqual(0);
    const memory = page.getByRole('region', { name: 'Memory' });
    expect(await memory.textContent()).toContain(`of ${formatBytes(info.memory.total)}`);
    expect(await page.getByRole('region', { name: 'Disk (/)' }).textContent()).toContain(`of ${formatBytes(info.disk_usage[0])}`);
    expect(await page.getByRole('region', { name: 'Temperatures' }).textContent()).toMatch(/CPU(\d+\.\d °C|not reported)/);
    if (info.disks.length) expect(await page.getByRole('table', { name: 'Filesystems' }).textContent()).toContain(info.disks[0].mount);

    // Refresh reads again (the button is busy meanwhile, then the figures are back).
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('button', { name: 'Refresh' }).waitFor();
    await cpu.getByRole('meter').waitFor();

    await expectAccessible(page, 'device overview');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('lists the processes, sorts them by CPU and by name, filters them and refreshes', async () => {
    const { page, context, foreign, errors } = await devicePage();
    await page.getByRole('navigation', { name: 'Device' }).getByRole('link', { name: 'Processes' }).click();
    await page.waitForURL(`**/device/${d.deviceId}/processes`);
    const table = page.getByRole('table', { name: /^Processes on / });

    // Busiest first to begin with.
    const byCpu = await processRows(page);
    expect(byCpu.length).toBeGreaterThan(5);
    expect(nonIncreasing(byCpu.map((r) => r.cpu))).toBe(true);
    expect(await table.getByRole('columnheader', { name: /CPU %/ }).getAttribute('aria-sort')).toBe('descending');

    await table.getByRole('button', { name: 'Name' }).click();
    await expect.poll(() => table.getByRole('columnheader', { name: /Name/ }).getAttribute('aria-sort')).toBe('ascending');
    const byName = await processRows(page);
    const initials = byName.map((r) => r.name.toLowerCase().charCodeAt(0));
    expect(initials.every((c, i) => i === 0 || initials[i - 1]! <= c)).toBe(true);
    expect(byName.map((r) => r.pid)).not.toEqual(byCpu.map((r) => r.pid));

    // Name again: descending, the reverse of the initials.
    await table.getByRole('button', { name: 'Name' }).click();
    await expect.poll(() => table.getByRole('columnheader', { name: /Name/ }).getAttribute('aria-sort')).toBe('descending');
    const desc = (await processRows(page)).map((r) => r.name.toLowerCase().charCodeAt(0));
    expect(desc.every((c, i) => i === 0 || desc[i - 1]! >= c)).toBe(true);

    await table.getByRole('button', { name: 'CPU %' }).click();
    await expect.poll(() => table.getByRole('columnheader', { name: /CPU %/ }).getAttribute('aria-sort')).toBe('descending');
    expect(nonIncreasing((await processRows(page)).map((r) => r.cpu))).toBe(true);

    // The agent itself runs under Bun, so "bun" matches at least its process, and not every one.
    await page.getByLabel('Filter').fill('bun');
    await expect.poll(async () => (await processRows(page)).length).toBeLessThan(byCpu.length);
    const filtered = await processRows(page);
    expect(filtered.length).toBeGreaterThan(0);
    for (const r of filtered) expect(`${r.name} ${r.user} ${r.command}`.toLowerCase()).toContain('bun');
    await expect.poll(() => page.getByText(/^\d+ of \d+ processes/).textContent()).toMatch(new RegExp(`^${filtered.length} of \\d+ processes`));

    await page.getByLabel('Filter').fill('no-such-process-anywhere');
    await page.getByText('No process matches “no-such-process-anywhere”.').waitFor();
    await expectAccessible(page, 'processes, nothing matches');

    await page.getByLabel('Filter').fill('');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(async () => (await processRows(page)).length).toBeGreaterThan(5);
    await expectAccessible(page, 'processes');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('creates an HTTP tunnel, copies and opens its URL, disables it and deletes it', async () => {
    const { page, context, foreign, errors } = await devicePage('/tunnels');
    await page.getByText('This device has no tunnels yet.').waitFor();
    await expectAccessible(page, 'tunnels, empty');

    const form = page.getByRole('form', { name: 'New tunnel' });
    await form.getByLabel('Name').fill('devweb');
    await form.getByLabel('Target').fill(`127.0.0.1:${targets.http}`);
    expect(await form.getByLabel('Access').inputValue()).toBe('public');
    await form.getByRole('button', { name: 'Create tunnel' }).click();

    const card = page.getByRole('region', { name: 'devweb' });
    await card.waitFor();
    const url = `http://devweb.localhost:${port}`;
    await card.getByRole('button', { name: 'Copy URL' }).click();
    await card.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(url);

    const link = card.getByRole('link', { name: new RegExp(`^${url.replace(/\./g, '\\.')}`) });
    expect(await link.getAttribute('target')).toBe('_blank');
    expect(await link.getAttribute('rel')).toBe('noopener');
    const [opened] = await Promise.all([context.waitForEvent('page'), link.click()]);
    await opened.waitForLoadState();
    const seen = JSON.parse((await opened.textContent('body')) ?? '{}');
    expect(seen).toMatchObject({ method: 'GET', path: '/' });
    expect(seen.headers['x-forwarded-host']).toBe(`devweb.localhost:${port}`);
    await opened.close();
    await expectAccessible(page, 'tunnels, one http tunnel');

    await card.getByRole('button', { name: 'Disable devweb' }).click();
    await card.getByText('disabled', { exact: true }).waitFor();
    await expect.poll(async () => (await visit(`${url}/`, { accept: 'application/json' })).body.code).toBe('TUNNEL_DISABLED');
    await card.getByRole('button', { name: 'Enable devweb' }).click();
    await card.getByText('enabled', { exact: true }).waitFor();
    await expect.poll(async () => (await visit(`${url}/`)).status).toBe(200);

    // Edit: the target is checked by the API, whose message shows beside the field.
    await card.getByRole('button', { name: 'Edit devweb' }).click();
    const edit = page.getByRole('form', { name: 'Change tunnel devweb' });
    await edit.getByLabel('Target').fill(`127.0.0.1:${port}`);
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await edit.locator('.field-error').getByText(/loop back into the relay/).waitFor();
    await expectAccessible(page, 'tunnel form with an API error');
    await edit.getByLabel('Target').fill(`localhost:${targets.http}`);
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await card.getByText(`localhost:${targets.http}`, { exact: true }).waitFor();

    await card.getByRole('button', { name: 'Delete devweb' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete tunnel devweb?' });
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('This device has no tunnels yet.').waitFor();
    expect((await d.api(`/api/v1/devices/${d.deviceId}/tunnels`)).body.tunnels).toEqual([]);
    expect(foreign).toEqual([]);
    // The one error is the browser's note of the 422 the looping target was meant to get.
    expect(errors.filter((e) => !/status of 422/.test(e))).toEqual([]);
    await context.close();
  });

  it('shows a password and a bearer token once, not after a reload, and the tunnels ask for them', async () => {
    const { page, context, foreign, errors } = await devicePage('/tunnels');
    const form = await newTunnelForm(page);
    await form.getByLabel('Name').fill('devpass');
    await form.getByLabel('Target').fill(`127.0.0.1:${targets.http}`);
    await form.getByLabel('Access').selectOption('basic');
    await form.getByLabel('User name').fill('visitor');
    await form.getByRole('button', { name: 'Generate a password' }).click();
    await form.getByRole('button', { name: 'Create tunnel' }).click();
    const card = page.getByRole('region', { name: 'devpass' });
    await card.getByText('Password for visitor on devpass').waitFor();
    const password = (await card.locator('[data-secret]').textContent())!;
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await expectAccessible(page, 'tunnels, a password shown once');

    const url = `http://devpass.localhost:${port}/`;
    const asked = await visit(url);
    expect(asked.status).toBe(401);
    expect(asked.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect((await visit(url, basic('visitor', 'not-the-password'))).status).toBe(401);
    const admitted = await visit(url, basic('visitor', password));
    expect(admitted.status).toBe(200);
    expect(admitted.body.path).toBe('/');

    // A bearer tunnel: the relay makes the token and this answer is the only place it appears.
    await newTunnelForm(page);
    await form.getByLabel('Name').fill('devtoken');
    await form.getByLabel('Target').fill(`127.0.0.1:${targets.http}`);
    await form.getByLabel('Access').selectOption('bearer');
    await form.getByRole('button', { name: 'Create tunnel' }).click();
    const tokenCard = page.getByRole('region', { name: 'devtoken' });
    await tokenCard.getByText('Bearer token for devtoken').waitFor();
    const token = (await tokenCard.locator('[data-secret]').textContent())!;
    expect(token.length).toBeGreaterThan(20);
    const tokenUrl = `http://devtoken.localhost:${port}/`;
    expect((await visit(tokenUrl)).status).toBe(401);
    expect((await visit(tokenUrl, { authorization: `Bearer ${token}` })).status).toBe(200);

    await page.reload();
    await page.getByRole('region', { name: 'devtoken' }).waitFor();
    expect(await page.locator('[data-secret]').count()).toBe(0);
    const html = await page.content();
    expect(html).not.toContain(token);
    expect(html).not.toContain(password);
    expect(await page.getByRole('region', { name: 'devpass' }).textContent()).toContain('Password, user visitor');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    expect(stored).not.toContain(token);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows the `pirelay tcp` command of a TCP tunnel, and the command carries bytes', async () => {
    const { page, context, foreign, errors } = await devicePage('/tunnels');
    const form = await newTunnelForm(page);
    await form.getByLabel('Name').fill('devtcp');
    await form.getByLabel('Kind').selectOption('tcp');
    await expect.poll(() => form.getByLabel('Access').count()).toBe(0);
    await form.getByLabel('Target').fill(`127.0.0.1:${targets.tcp}`);
    await form.getByRole('button', { name: 'Create tunnel' }).click();
    const card = page.getByRole('region', { name: 'devtcp' });
    const command = (await card.getByRole('group', { name: 'pirelay tcp command for devtcp' }).locator('code').textContent())!;
    expect(command).toBe(`pirelay tcp devtcp --relay ${d.origin} --listen 127.0.0.1:${targets.tcp}`);
    await expectAccessible(page, 'tunnels, with a tcp tunnel');

    // Run it as shown, with the API key in PIRELAY_API_KEY as the hint says; only the local port
    // differs, because here the target itself listens on this machine at the shown one.
    const listen = await freePort();
    const args = command.split(' ').slice(1).map((a) => (a === `127.0.0.1:${targets.tcp}` ? `127.0.0.1:${listen}` : a));
    const client = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'client/pirelay.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, PIRELAY_API_KEY: d.env.state.apiKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.stdout!.on('data', (b) => String(b).includes('listening') && resolve());
      client.once('exit', (code) => reject(new Error(`pirelay tcp exited with ${code}`)));
    });
    expect(await tcpExchange(listen, 'through the dashboard\n')).toBe('through the dashboard\nbye after 22 bytes\n');
    client.kill();
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('renames the device (the header follows) and moves it to another team it stays visible in', async () => {
    const lab = await d.api('/api/v1/teams', { json: { name: 'Lab' } });
    expect(lab.status).toBe(201);
    const { page, context, foreign, errors } = await devicePage('/settings');
    const rename = page.getByRole('region', { name: 'Name' });
    await rename.getByLabel('Device name').fill('demo-pi-renamed');
    await rename.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { level: 1, name: 'demo-pi-renamed' }).waitFor();
    expect((await d.api(`/api/v1/devices/${d.deviceId}`)).body.name).toBe('demo-pi-renamed');

    // An API error shows beside the field that caused it.
    await rename.getByLabel('Device name').fill('bad\u0007name');
    await rename.getByRole('button', { name: 'Rename' }).click();
    await rename.getByText(/control characters/).first().waitFor();
    await expectAccessible(page, 'settings with an API error');

    const tags = page.getByRole('region', { name: 'Tags' });
    await tags.getByLabel('New tag').fill('garage');
    await tags.getByRole('button', { name: 'Add tag' }).click();
    await page.locator('.device-meta').getByText('garage').waitFor();
    await tags.getByRole('button', { name: 'Remove tag garage' }).click();
    await expect.poll(() => page.locator('.device-meta').getByText('garage').count()).toBe(0);

    const team = page.getByRole('region', { name: 'Team' });
    await team.getByLabel('Move to team').selectOption({ label: 'Lab' });
    await team.getByRole('button', { name: 'Move' }).click();
    await page.locator('.device-meta').getByRole('link', { name: 'Lab' }).waitFor();
    expect((await d.api(`/api/v1/devices/${d.deviceId}`)).body.team_id).toBe(lab.body.id);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'demo-pi-renamed' }).waitFor();
    await page.locator('.device-meta').getByRole('link', { name: 'Lab' }).waitFor();
    await expectAccessible(page, 'settings');

    // Back where it was, for the tests after this one.
    await page.getByRole('region', { name: 'Team' }).getByLabel('Move to team').selectOption({ label: 'Default' });
    await page.getByRole('region', { name: 'Team' }).getByRole('button', { name: 'Move' }).click();
    await page.locator('.device-meta').getByRole('link', { name: 'Default' }).waitFor();
    await page.getByRole('region', { name: 'Name' }).getByLabel('Device name').fill('demo-pi');
    await page.getByRole('region', { name: 'Name' }).getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { level: 1, name: 'demo-pi' }).waitFor();
    expect(foreign).toEqual([]);
    // The one error is the browser's note of the 400 the bad name was meant to get.
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([]);
    await context.close();
  });

  it('approves, revokes and removes a second device enrolled with the agent CLI; offline it says what to do', async () => {
    const teams = (await d.api('/api/v1/teams')).body.teams as { id: string; name: string }[];
    const team_id = teams.find((t) => t.name === 'Default')!.id;
    const token = await d.api('/api/v1/enrollment-tokens', { json: { name: 'second', auto_approve: false, max_uses: 1, team_id } });
    expect(token.status).toBe(201);
    const dir = await tempDir('device-second');
    const enrolled = await agentCli(['enroll', '--relay', d.origin, '--token', token.body.token, '--name', 'second-pi', '--config', join(dir, 'agent.json')]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const { device_id: id } = JSON.parse(enrolled.stdout.trim().split('\n').pop()!);

    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, `/device/${id}`);
    await page.getByRole('heading', { level: 1, name: 'second-pi' }).waitFor();
    expect(await page.locator('.device-meta .badge').textContent()).toBe('pending');
    await page.getByText(/This device is waiting for approval/).waitFor();
    await expectAccessible(page, 'overview of a pending device');

    await page.getByRole('link', { name: 'approve it in Settings' }).click();
    await page.getByRole('region', { name: 'Approval' }).getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => page.locator('.device-meta .badge').textContent()).toBe('offline');
    expect((await d.api(`/api/v1/devices/${id}`)).body.status).toBe('approved');
    expect(await page.getByRole('region', { name: 'Approval' }).count()).toBe(0);

    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByText(/This device is offline/).waitFor();
    expect(await page.locator('.notice').textContent()).toContain('it has not connected yet');
    expect(await page.locator('.notice').textContent()).toContain('systemctl status pirelay-agent');
    expect(await page.getByRole('region', { name: 'Live info' }).count()).toBe(0);
    await expectAccessible(page, 'overview of an offline device');

    await page.getByRole('link', { name: 'Processes' }).click();
    await page.getByText('The process list is read from the device, which must be online.').waitFor();
    await expectAccessible(page, 'processes of an offline device');

    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog', { name: 'Revoke second-pi?' }).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => page.locator('.device-meta .badge').textContent()).toBe('revoked');
    expect((await d.api(`/api/v1/devices/${id}`)).body.status).toBe('revoked');
    await expectAccessible(page, 'settings of a revoked device');

    await page.getByRole('button', { name: 'Remove device' }).click();
    await page.getByRole('dialog', { name: 'Remove second-pi?' }).getByRole('button', { name: 'Remove' }).click();
    await page.waitForURL(`${d.origin}/`);
    expect((await d.api(`/api/v1/devices/${id}`)).status).toBe(404);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('follows the device going offline and coming back, from the live stream', async () => {
    const { page, context, foreign, errors } = await devicePage();
    await page.getByRole('region', { name: 'CPU' }).waitFor();
    await d.env.stopAgent(d.deviceId);
    await expect.poll(() => page.locator('.device-meta .badge').textContent(), { timeout: 15_000 }).toBe('offline');
    await page.getByText(/This device is offline/).waitFor();
    expect(await page.getByRole('region', { name: 'CPU' }).count()).toBe(0);
    d.env.startAgent(d.deviceId);
    await expect.poll(() => page.locator('.device-meta .badge').textContent(), { timeout: 20_000 }).toBe('online');
    // Back online, the live info is read again by itself.
    await page.getByRole('region', { name: 'CPU' }).getByRole('meter').waitFor();
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('answers "not found" for a device that does not exist and for another team\'s device', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/device/no-such-device');
    await page.getByRole('heading', { level: 1, name: 'Device not found' }).waitFor();
    await expectAccessible(page, 'device not found');
    await context.close();

    // A viewer in no team: the demo device (team Default) does not exist for them.
    const outsider = await createUser(d, 'outsider', ['viewer']);
    const other = await openPage(d);
    await signIn(other.page, d.origin, outsider.username, outsider.password, `/device/${d.deviceId}`);
    await other.page.getByRole('heading', { level: 1, name: 'Device not found' }).waitFor();
    expect(await other.page.getByRole('link', { name: 'Go to the fleet' }).count()).toBe(1);
    await expectAccessible(other.page, "another team's device");
    // The only errors are the browser's notes of the 404 answers the page handles.
    expect([...errors, ...other.errors].filter((e) => !/status of 404/.test(e))).toEqual([]);
    expect([...foreign, ...other.foreign]).toEqual([]);
    await other.context.close();
  });

  it.each([
    ['light', 1280, 800],
    ['light', 390, 844],
    ['dark', 1280, 800],
    ['dark', 390, 844],
  ] as const)('looks right and passes axe on every tab, %s at %i px', async (colorScheme, width, height) => {
    const tunnels = (await d.api(`/api/v1/devices/${d.deviceId}/tunnels`)).body.tunnels as { name: string }[];
    if (!tunnels.some((t) => t.name === 'shots-web')) {
      expect((await d.api(`/api/v1/devices/${d.deviceId}/tunnels`, { json: { name: 'shots-web', kind: 'http', target: `127.0.0.1:${targets.http}` } })).status).toBe(201);
    }
    const { page, context, foreign, errors } = await devicePage('', { width, height, colorScheme });
    for (const [tab, ready] of [
      ['', () => page.getByRole('region', { name: 'CPU' }).waitFor()],
      ['processes', () => page.getByRole('table', { name: /^Processes on / }).locator('tbody tr').first().waitFor()],
      ['tunnels', () => page.getByRole('region', { name: 'shots-web' }).waitFor()],
      ['settings', () => page.getByRole('region', { name: 'Team' }).waitFor()],
    ] as const) {
      await page.goto(`${d.origin}/device/${d.deviceId}${tab ? `/${tab}` : ''}`);
      await ready();
      await expectAccessible(page, `${tab || 'overview'} at ${width} px, ${colorScheme}`);
      // No horizontal scroll of the page itself.
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await screenshot(page, `device-${tab || 'overview'}-${width}-${colorScheme}`);
    }
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
