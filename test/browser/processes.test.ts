// The Processes tab's signal menu through the UI, against the local relay and the demo device's
// real agent (on this machine, reading its real /proc): a `sleep` started by this test is found
// in the list with the filter, sent SIGTERM from its row's menu after a confirmation naming it
// and the signal, and exits (and leaves the list); signalling pid 1 is refused by the agent and
// the dialog says so in the API's words; a viewer sees no Signal menu, and the API refuses the
// viewer's own session a signal (403) while the process lives on. Every state visited is scanned
// with axe-core and must load nothing from another host.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

/** A `sleep` with an argument no other process has, so the filter finds it alone. */
async function sleeper(children: ChildProcess[]) {
  const seconds = String(900_000 + Math.floor(Math.random() * 99_999));
  const child = spawn('sleep', [seconds], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return { child, pid: child.pid!, command: `sleep ${seconds}`, exited };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function processesTab(page: Page) {
  await page.getByRole('heading', { name: 'Processes', level: 2 }).waitFor();
  const table = page.getByRole('table', { name: /^Processes on / });
  await table.locator('tbody tr').first().waitFor();
  return table;
}

/** The one row whose PID cell is `pid` (after filtering for its command, when given). */
async function rowOf(page: Page, pid: number, command?: string) {
  if (command) await page.getByLabel('Filter').fill(command);
  const table = await processesTab(page);
  const row = table.locator('tbody tr').filter({ has: page.locator('td:first-child', { hasText: new RegExp(`^${pid}$`) }) });
  await row.waitFor();
  return row;
}

describeBrowser('the Processes tab signal menu', () => {
  let d: Dashboard;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'processes' });
  });
  afterAll(async () => {
    children.forEach((c) => c.kill('SIGKILL'));
    await d?.close();
  });

  it('finds a real sleep, sends it SIGTERM from its row after confirming, and the sleep exits and leaves the list', async () => {
    const s = await sleeper(children);
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, `/device/${d.deviceId}/processes`);
    // The list may have been read before the sleep was exec'd: read it again until it shows.
    await page.getByLabel('Filter').fill(s.command);
    await expect
      .poll(async () => {
        if ((await page.getByText(/^No process matches/).count()) > 0) await page.getByRole('button', { name: 'Refresh' }).click();
        return page.locator('tbody tr td:first-child').allTextContents();
      })
      .toEqual([String(s.pid)]);
    const row = await rowOf(page, s.pid);

    await row.getByLabel(`Signal sleep (${s.pid})`).click();
    const menu = page.getByRole('list', { name: `Signals for sleep (${s.pid})` });
    await menu.waitFor();
    // The allow-list, the common ones first.
    expect((await menu.getByRole('button').allTextContents()).map((t) => t.split(' ')[0])).toEqual([
      'SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGSTOP', 'SIGCONT', 'SIGUSR1', 'SIGUSR2',
    ]);
    await expectAccessible(page, 'signal menu open');
    await screenshot(page, 'processes-signal-menu');
    await menu.getByRole('button', { name: /^SIGTERM/ }).click();

    const dialog = page.getByRole('dialog', { name: 'Send SIGTERM to sleep?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`Process ${s.pid}`);
    expect(await dialog.textContent()).toContain(s.command);
    await expectAccessible(page, 'signal confirmation');
    await screenshot(page, 'processes-signal-confirm');
    // Nothing is sent before the confirmation.
    expect(alive(s.pid)).toBe(true);
    await dialog.getByRole('button', { name: 'Send SIGTERM' }).click();

    await page.getByRole('status').getByText(`Sent SIGTERM to sleep (${s.pid}).`).waitFor();
    expect(await s.exited).toBe('SIGTERM');
    expect(await dialog.isVisible()).toBe(false);
    // The list was read again: the sleep is gone from it.
    await page.getByText(`No process matches “${s.command}”.`).waitFor();
    await expectAccessible(page, 'after a signal');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('the agent refuses to signal pid 1: the dialog shows its words and stays open; Cancel closes it', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, `/device/${d.deviceId}/processes`);
    const row = await rowOf(page, 1);
    await row.locator('summary').click();
    // SIGCONT: harmless to init should the refusal ever break.
    await page.getByRole('list', { name: /^Signals for / }).getByRole('button', { name: /^SIGCONT/ }).click();
    const dialog = page.getByRole('dialog', { name: /^Send SIGCONT to / });
    await dialog.getByRole('button', { name: 'Send SIGCONT' }).click();
    const alert = dialog.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/process 1 is init \(pid 1\): the agent will not signal it.*\(PROCESS_PROTECTED\)/);
    await expectAccessible(page, 'signal refused');
    expect(await page.getByRole('status').getByText(/^Sent /).count()).toBe(0);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('a viewer sees the list without a Signal menu, and the API refuses the viewer a signal (403)', async () => {
    const s = await sleeper(children);
    const viewer = await createUser(d, 'processes-viewer', ['viewer']);
    const team = (await d.api(`/api/v1/devices/${d.deviceId}`)).body.team_id;
    const joined = await d.api(`/api/v1/teams/${team}/members`, { json: { username: viewer.username, role: 'member' } });
    expect(joined.status, JSON.stringify(joined.body)).toBe(201);

    const { page, context, foreign, errors } = await openPage(d);
    await signIn(page, d.origin, viewer.username, viewer.password, `/device/${d.deviceId}/processes`);
    const table = await processesTab(page);
    expect(await table.getByRole('columnheader').allTextContents()).not.toContainEqual(expect.stringContaining('Signal'));
    expect(await page.locator('summary').count()).toBe(0);
    await expectAccessible(page, 'processes as a viewer');

    // The viewer's own session, from the page, as a hand-made request would be.
    const refused = await page.evaluate(async ([path]) => {
      const res = await fetch(path!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ signal: 15 }), credentials: 'same-origin' });
      return { status: res.status, body: await res.json() };
    }, [`/api/v1/devices/${d.deviceId}/processes/${s.pid}/signal`]);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('FORBIDDEN');
    expect(alive(s.pid)).toBe(true);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
