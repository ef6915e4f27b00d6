// The Alerts page, driven as a person would in Chromium against the real relay and demo agent: a
// rule made on the page with a webhook channel (its URL, secret path and all, never comes back to
// the page: not in the DOM, not in any response the page read), changed, disabled and deleted; a
// bad threshold shows the API's message at its field; a rule that must fire (cpu ≥ 0 on the demo
// device, no hold) raises an alert that shows with its device, value and cause and is
// acknowledged there; "Send test notification" reaches a real local HTTP server and the page shows
// the outcome, a failing target's too; a viewer sees it all and no control that changes anything.
// Each state is scanned with axe-core, nothing is requested from another host, and the page with
// rules and alerts on it holds at 360 px.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createUser, describeBrowser, expectAccessible, openPage, pageText, recordResponses, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

/** A webhook target on 127.0.0.1: /fail answers 500, anything else 200; every request is kept. */
async function webhookTarget(): Promise<{ server: Server; port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // not JSON: kept as text
      }
      received.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(req.url?.startsWith('/fail') ? 500 : 200, { 'content-type': 'text/plain' }).end(req.url?.startsWith('/fail') ? 'target is down' : 'ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, received };
}

const noHorizontalScroll = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

/** Errors in the page besides the console's line for a refusal the test asked for (the browser logs every 4xx). */
const unexpected = (errors: string[]) => errors.filter((e) => !/status of 4\d\d/.test(e));

describeBrowser('the Alerts page', () => {
  let d: Dashboard;
  let target: Awaited<ReturnType<typeof webhookTarget>>;

  const rulesTable = (page: Page) => page.getByRole('table', { name: 'Alert rules' });
  // By the text of its name cell (a cell's accessible name also holds its card label under 600 px).
  const ruleRow = (page: Page, name: string) => rulesTable(page).getByRole('row').filter({ has: page.getByText(name, { exact: true }) });

  /** The firing alert of a rule, once the relay has raised it. */
  const firingAlertOf = async (ruleId: string) => {
    let alert: any;
    await expect
      .poll(
        async () => {
          const r = await d.api(`/api/v1/alerts?state=firing&agent_id=${d.deviceId}`);
          alert = r.body.alerts?.find((a: { rule_id: string }) => a.rule_id === ruleId);
          return !!alert;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(true);
    return alert;
  };

  beforeAll(async () => {
    target = await webhookTarget();
    // The relay sends notifications to public hosts only, unless told (as local demos and tests are) that a private one is fine.
    d = await startDashboard({ prefix: 'alerts', vars: { ALERT_ALLOW_PRIVATE_TARGETS: 'true' } });
  });
  afterAll(async () => {
    await d?.close();
    await new Promise((r) => target?.server.close(r));
  });

  it('makes a rule with a webhook whose URL never comes back, changes, disables and deletes it', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    const bodies = recordResponses(page);
    await signInAdmin(page, d, '/alerts');
    await page.getByRole('heading', { name: 'Add a rule' }).waitFor();
    await expectAccessible(page, 'Alerts, no rules');

    const secret = randomBytes(16).toString('hex');
    const url = `http://127.0.0.1:${target.port}/hook/${secret}`;
    const name = `mem-${randomBytes(3).toString('hex')}`;
    const form = page.getByRole('form', { name: 'Add a rule' });
    await form.getByLabel('Name').fill(name);
    await form.getByLabel('Metric').selectOption('memory');
    // Only what a memory rule takes: thresholds, no target, no level.
    expect(await form.getByLabel('Mount point').count()).toBe(0);
    expect(await form.getByLabel('Level', { exact: true }).count()).toBe(0);
    await form.getByLabel('Applies to').selectOption(`device:${d.deviceId}`);
    await form.getByLabel('Warning at (%)').fill('90');
    // Bad input: critical under warning is the API's to refuse, and its message sits at the field.
    await form.getByLabel('Critical at (%)').fill('50');
    await form.getByRole('button', { name: 'Add a channel' }).click();
    await form.getByLabel('Channel 1 URL').fill(url);
    // A channel can be tried before it is saved: the real server gets it, the page says how it went.
    await form.getByRole('button', { name: 'Send a test to channel 1' }).click();
    await expect.poll(() => form.locator('.test-outcome').textContent(), { timeout: 30_000 }).toContain('Delivered · HTTP 200');
    expect(target.received.some((r) => r.path === `/hook/${secret}`)).toBe(true);
    await form.getByRole('button', { name: 'Add rule' }).click();
    const critical = form.getByLabel('Critical at (%)');
    await expect.poll(() => critical.getAttribute('aria-invalid')).toBe('true');
    const describedBy = (await critical.getAttribute('aria-describedby'))!.split(' ');
    const message = await page.locator(`[id="${describedBy.find((i) => i.endsWith('-error'))}"]`).textContent();
    expect(message).toContain('critical must not be under warning');
    await expectAccessible(page, 'rule refused');

    // A disk rule takes a mount point; switching there and back keeps the thresholds typed.
    await form.getByLabel('Metric').selectOption('disk');
    await form.getByLabel('Mount point').waitFor();
    await form.getByLabel('Metric').selectOption('offline');
    await form.getByLabel('Level', { exact: true }).waitFor();
    expect(await form.getByLabel('Warning at', { exact: false }).count()).toBe(0);
    await form.getByLabel('Metric').selectOption('memory');
    await critical.fill('95');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await page.getByRole('status').filter({ hasText: `Saved rule ${name}.` }).waitFor();
    const row = ruleRow(page, name);
    await row.waitFor();
    expect(await row.textContent()).toContain(`webhook · 127.0.0.1:${target.port}`);
    expect(await row.textContent()).toContain('≥ 90 % warning, ≥ 95 % critical');
    // The form was replaced by an empty one: the URL is gone from the page, and no answer carried it.
    expect(await pageText(page)).not.toContain(secret);
    const rule = (await d.api('/api/v1/alert-rules')).body.rules.find((r: { name: string }) => r.name === name);
    expect(rule).toMatchObject({ metric: 'memory', warning: 90, critical: 95, device_id: d.deviceId, enabled: true, channels: [{ type: 'webhook', host: `127.0.0.1:${target.port}` }] });
    await expectAccessible(page, 'a rule');

    // Edit: the channels stay unless replaced, and the URL is not offered back.
    await row.getByRole('button', { name: `Edit ${name}` }).click();
    const edit = page.getByRole('form', { name: `Edit rule ${name}` });
    await edit.waitFor();
    expect(await pageText(page)).not.toContain(secret);
    expect(await edit.getByLabel('Channel 1 URL').count()).toBe(0);
    await edit.getByLabel('Name').fill(`${name}-b`);
    await edit.getByLabel('Warning at (%)').fill('');
    await edit.getByLabel('Critical at (%)').fill('97');
    await edit.getByLabel('Hold (seconds)', { exact: true }).fill('120');
    await expectAccessible(page, 'editing a rule');
    await edit.getByRole('button', { name: 'Save rule' }).click();
    const renamed = ruleRow(page, `${name}-b`);
    await renamed.waitFor();
    expect(await renamed.textContent()).toContain('≥ 97 % critical over 2 min');
    const changed = (await d.api(`/api/v1/alert-rules/${rule.id}`)).body;
    expect(changed).toMatchObject({ name: `${name}-b`, warning: null, critical: 97, hold_seconds: 120, channels: [{ type: 'webhook' }] });

    // Replacing the channels means entering them again; the new URL, too, is gone once saved.
    const secret2 = randomBytes(16).toString('hex');
    await renamed.getByRole('button', { name: `Edit ${name}-b` }).click();
    const again = page.getByRole('form', { name: `Edit rule ${name}-b` });
    await again.getByLabel('Replace the channels').check();
    await again.getByRole('button', { name: 'Add a channel' }).click();
    await again.getByLabel('Channel 1 type').selectOption('ntfy');
    await again.getByLabel('Channel 1 topic URL').fill(`http://127.0.0.1:${target.port}/topic-${secret2}`);
    await again.getByLabel('Channel 1 access token').fill(`tk_${secret2}`);
    await again.getByRole('button', { name: 'Save rule' }).click();
    await page.getByRole('status').filter({ hasText: `Saved rule ${name}-b.` }).waitFor();
    await expect.poll(() => renamed.textContent()).toContain(`ntfy · 127.0.0.1:${target.port}`);
    expect((await d.api(`/api/v1/alert-rules/${rule.id}`)).body.channels).toEqual([{ type: 'ntfy', host: `127.0.0.1:${target.port}` }]);
    expect(await pageText(page)).not.toContain(secret2);

    // Disable, and enable again.
    await renamed.getByRole('button', { name: `Disable ${name}-b` }).click();
    await expect.poll(() => renamed.textContent()).toContain('disabled');
    expect((await d.api(`/api/v1/alert-rules/${rule.id}`)).body.enabled).toBe(false);
    await renamed.getByRole('button', { name: `Enable ${name}-b` }).click();
    await expect.poll(async () => (await d.api(`/api/v1/alert-rules/${rule.id}`)).body.enabled).toBe(true);

    // Delete asks first.
    await renamed.getByRole('button', { name: `Delete ${name}-b` }).click();
    const dialog = page.getByRole('dialog', { name: `Delete rule ${name}-b?` });
    await dialog.waitFor();
    await expectAccessible(page, 'delete dialog');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => ruleRow(page, `${name}-b`).count()).toBe(0);
    expect((await d.api(`/api/v1/alert-rules/${rule.id}`)).status).toBe(404);

    expect((await bodies()).filter((b) => b.includes(secret) || b.includes(secret2))).toEqual([]);
    expect(await pageText(page)).not.toContain(secret);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('sends a test notification to a real local server and shows the outcome, a failing one too', async () => {
    const name = `test-${randomBytes(3).toString('hex')}`;
    const made = await d.api('/api/v1/alert-rules', {
      json: {
        name,
        metric: 'temperature',
        critical: 95,
        device_id: d.deviceId,
        channels: [
          { type: 'webhook', url: `http://127.0.0.1:${target.port}/ok/${name}` },
          { type: 'webhook', url: `http://127.0.0.1:${target.port}/fail/${name}` },
        ],
      },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);

    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/alerts');
    await ruleRow(page, name).getByRole('button', { name: `Notifications of ${name}` }).click();
    const panel = page.getByRole('region', { name: `Notifications of ${name}` });
    await panel.waitFor();
    await expect.poll(() => new URL(page.url()).searchParams.get('rule')).toBe(made.body.id);
    await panel.getByRole('heading', { name: `Notifications of ${name}` }).waitFor();
    await panel.getByText('Nothing sent yet.').waitFor();

    await panel.getByRole('button', { name: 'Send test notification' }).click();
    const outcome = panel.locator('.test-outcome');
    await expect.poll(() => outcome.textContent(), { timeout: 30_000 }).toContain('HTTP 200');
    expect(await outcome.textContent()).toContain('delivered');
    expect(await outcome.textContent()).toContain('HTTP 500');
    // The real server got the test, in our JSON.
    const got = target.received.find((r) => r.path === `/ok/${name}`);
    expect(got?.body).toMatchObject({ event: 'test', rule: { id: made.body.id, name } });
    // The history lists both deliveries with their status, attempts and response status.
    const table = panel.getByRole('table', { name: `Notifications of ${name}` });
    await expect.poll(() => table.getByRole('row').count()).toBe(3);
    const text = (await table.textContent())!;
    expect(text).toContain('delivered');
    expect(text).toContain('HTTP 200');
    expect(text).toContain('HTTP 500');
    await expectAccessible(page, 'test notification sent');
    await screenshot(page, 'alerts-test-notification');

    // The status filter is in the address and narrows the history.
    await panel.getByLabel('Status').selectOption('delivered');
    await expect.poll(() => new URL(page.url()).searchParams.get('delivery_status')).toBe('delivered');
    await expect.poll(() => table.getByRole('row').count()).toBe(2);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('shows a fired alert with its device, value and cause, acknowledges it, and lists it once resolved', async () => {
    // cpu ≥ 0 with no hold: the demo device's next sample fires it.
    const name = `fire-${randomBytes(3).toString('hex')}`;
    const made = await d.api('/api/v1/alert-rules', { json: { name, metric: 'cpu', warning: 0, hold_seconds: 0, recovery_seconds: 0, device_id: d.deviceId } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const fired = await firingAlertOf(made.body.id);

    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/alerts');
    const table = page.getByRole('table', { name: 'Firing alerts' });
    const row = table.getByRole('row').filter({ hasText: `Rule ${name}` });
    await row.waitFor();
    const text = (await row.textContent())!;
    expect(text).toContain('warning');
    expect(text).toContain('threshold 0 %');
    expect(await row.getByRole('link', { name: 'demo-pi' }).getAttribute('href')).toBe(`/device/${d.deviceId}/metrics`);
    // The cause: the top processes of the sample it fired on, as the relay recorded them.
    for (const p of fired.cause.processes ?? []) expect(text).toContain(`${p.name} (pid ${p.pid}`);
    await expectAccessible(page, 'a firing alert');
    await screenshot(page, 'alerts-firing');

    await row.getByRole('button', { name: /^Acknowledge warning CPU usage on demo-pi/ }).click();
    await expect.poll(() => row.textContent()).toContain('by you');
    const acked = (await d.api(`/api/v1/alerts/${fired.id}`)).body;
    expect(acked).toMatchObject({ acknowledged: true, state: 'firing' });

    // The alert's rule opens its notifications in this view.
    await row.getByRole('link', { name, exact: true }).click();
    await page.getByRole('region', { name: `Notifications of ${name}` }).waitFor();
    expect(new URL(page.url()).searchParams.get('rule')).toBe(made.body.id);

    // Disabling the rule resolves its alert; the resolved view (in the address) lists it.
    expect((await d.api(`/api/v1/alert-rules/${made.body.id}`, { method: 'PATCH', json: { enabled: false } })).status).toBe(200);
    await expect.poll(async () => (await d.api(`/api/v1/alerts/${fired.id}`)).body.state, { timeout: 30_000 }).toBe('resolved');
    await page.getByLabel('Show', { exact: true }).selectOption('resolved');
    await expect.poll(() => new URL(page.url()).searchParams.get('state')).toBe('resolved');
    const resolved = page.getByRole('table', { name: 'Resolved alerts' }).getByRole('row').filter({ hasText: `Rule ${name}` });
    await resolved.waitFor();
    expect(await resolved.textContent()).toContain('resolved');
    expect(await resolved.getByRole('button', { name: /^Acknowledge(?!d)/ }).count()).toBe(0);
    // A reload keeps the view.
    await page.reload();
    await page.getByRole('table', { name: 'Resolved alerts' }).getByRole('row').filter({ hasText: `Rule ${name}` }).waitFor();
    expect(await page.getByLabel('Show', { exact: true }).inputValue()).toBe('resolved');
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('shows a viewer the rules, alerts and notifications, and no control that changes them', async () => {
    const name = `seen-${randomBytes(3).toString('hex')}`;
    const made = await d.api('/api/v1/alert-rules', {
      json: { name, metric: 'cpu', warning: 0, hold_seconds: 0, device_id: d.deviceId, channels: [{ type: 'webhook', url: `http://127.0.0.1:${target.port}/viewer/${name}` }] },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    await firingAlertOf(made.body.id);
    const viewer = await createUser(d, `alerts-viewer-${randomBytes(2).toString('hex')}`, ['viewer']);
    const team = (await d.api(`/api/v1/devices/${d.deviceId}`)).body.team_id;
    const joined = await d.api(`/api/v1/teams/${team}/members`, { json: { username: viewer.username, role: 'member' } });
    expect(joined.status, JSON.stringify(joined.body)).toBeLessThan(300);

    const { page, context, foreign, errors } = await openPage(d, { width: 360, height: 800 });
    await signIn(page, d.origin, viewer.username, viewer.password, '/alerts');
    const row = ruleRow(page, name);
    await row.waitFor();
    await page.getByRole('table', { name: 'Firing alerts' }).getByRole('row').filter({ hasText: `Rule ${name}` }).waitFor();
    await row.getByRole('button', { name: `Notifications of ${name}` }).click();
    await page.getByRole('region', { name: `Notifications of ${name}` }).waitFor();
    const main = page.locator('main');
    for (const label of [/^Acknowledge(?!d)/, /^Edit/, /^Disable/, /^Enable/, /^Delete/, /^Add rule/, /^Add a channel/, /^Send test notification/])
      expect(await main.getByRole('button', { name: label }).count(), String(label)).toBe(0);
    expect(await page.getByRole('form', { name: 'Add a rule' }).count()).toBe(0);
    expect(await noHorizontalScroll(page)).toBe(true);
    await expectAccessible(page, 'Alerts as a viewer at 360 px');
    await screenshot(page, 'alerts-viewer-360');
    // The API holds a viewer to reading, whatever a page shows.
    expect((await page.evaluate(async (id) => (await fetch(`/api/v1/alert-rules/${id}`, { method: 'DELETE' })).status, made.body.id))).toBe(403);
    expect(foreign).toEqual([]);
    expect(unexpected(errors)).toEqual([]);
    await context.close();
  });

  it('holds at 360 px with rules, alerts and the form, light and dark; a rule name is text, never markup', async () => {
    const hostile = '<img src=x onerror="window.__pwned=1">';
    expect((await d.api('/api/v1/alert-rules', { json: { name: hostile, metric: 'load', warning: 50, device_id: d.deviceId } })).status).toBe(201);
    for (const colorScheme of ['light', 'dark'] as const) {
      const { page, context, foreign, errors } = await openPage(d, { width: 360, height: 800, colorScheme });
      await signInAdmin(page, d, '/alerts');
      await rulesTable(page).waitFor();
      await page.getByRole('table', { name: 'Firing alerts' }).waitFor();
      const form = page.getByRole('form', { name: 'Add a rule' });
      await form.getByRole('button', { name: 'Add a channel' }).click();
      await form.getByLabel('Channel 1 type').selectOption('telegram');
      await form.getByLabel('Quiet hours').check();
      await ruleRow(page, hostile).waitFor();
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.locator('main img').count()).toBe(0);
      expect(await noHorizontalScroll(page)).toBe(true);
      await expectAccessible(page, `Alerts at 360 px ${colorScheme}`);
      await screenshot(page, `alerts-360-${colorScheme}`);
      expect(foreign).toEqual([]);
      expect(unexpected(errors)).toEqual([]);
      await context.close();
    }
  });
});
