// The Add a device page as an admin uses it: make an enrollment token, copy the three commands it
// shows and run them as written — download the agent (from a local folder standing in for the
// release downloads, AGENT_DOWNLOAD_URL), enroll, install-service — so a second real device
// enrolls, waits for approval, is approved and comes online. The only differences from a Pi are
// in the environment: `sudo` and `systemctl` are stand-ins on PATH (the fake systemctl starts the
// unit's ExecStart as systemd would), and the install paths point into a scratch directory.
// Also: no commands for a token the relay refused (its message beside the form), the token list
// with revoke, a viewer turned away by the API, and the page at 390 px in dark.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { BUN, ROOT, waitFor } from '../../scripts/dev-env.ts';
import { tempDir } from '../e2e/harness.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

/** This machine's agent build, published under the name the page links to. */
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const ARCH_LABEL = ARCH === 'arm64' ? 'Raspberry Pi OS 64-bit (arm64)' : 'Linux PC or server (x86-64)';

/** Runs `bash -c command` in `cwd` with `env`; resolves with its exit code and output. */
function bash(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The commands of the setup steps, each as the clipboard holds it after its Copy button. */
async function copiedCommands(page: Page): Promise<string[]> {
  const steps = page.getByRole('list').filter({ has: page.locator('.code-line') }).getByRole('listitem');
  expect(await steps.count()).toBe(3);
  const commands: string[] = [];
  for (const step of await steps.all()) {
    await step.getByRole('button', { name: /^Copy .+ command$/ }).click();
    await step.getByRole('button', { name: /^Copied .+ command$/ }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(await step.locator('code').textContent());
    commands.push(copied);
  }
  return commands;
}

describeBrowser('the Add a device page', () => {
  let d: Dashboard;
  let scratch: string;
  let downloads: Server;
  let downloadUrl: string;
  const downloaded: string[] = [];
  let agentPid: number | undefined;

  beforeAll(async () => {
    scratch = await tempDir('add-device');
    // The agent compiled for this machine, as `npm run build:agent` compiles it for a Pi (about a second, offline).
    const folder = join(scratch, 'downloads');
    await mkdir(folder);
    const built = await bash(`'${BUN}' build --compile --root . agent/main.ts agent/terminal/screen-worker.ts --outfile '${join(folder, `pirelay-agent-linux-${ARCH}`)}'`, ROOT, process.env);
    expect(built.code, built.stderr).toBe(0);
    downloads = createServer((req, res) => {
      downloaded.push(`${req.method} ${req.url}`);
      const file = join(folder, new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/agent\//, ''));
      if (req.method !== 'GET' || !req.url?.startsWith('/agent/') || !existsSync(file)) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => downloads.listen(0, '127.0.0.1', r));
    downloadUrl = `http://127.0.0.1:${(downloads.address() as { port: number }).port}/agent`;
    d = await startDashboard({ prefix: 'add-device', vars: { AGENT_DOWNLOAD_URL: downloadUrl } });
  });

  afterAll(async () => {
    if (agentPid && alive(agentPid)) {
      process.kill(agentPid, 'SIGTERM');
      await waitFor('the installed agent to stop', async () => !alive(agentPid!), 20_000);
    }
    await d?.close();
    await new Promise((r) => downloads?.close(r));
  });

  it('makes a token and shows the commands that enroll a second device, which waits for approval, is approved and comes online', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/add-device');
    await page.getByRole('heading', { name: 'Add a device', level: 1 }).waitFor();
    // The demo device's token is used up, so no token is active yet: the empty state says what to do.
    await page.getByText('No active enrollment tokens.').waitFor();
    await expectAccessible(page, 'the form');
    await screenshot(page, 'add-device-form-1280-light');

    await page.getByLabel('Label').fill('second pi');
    expect(await page.getByLabel('Approve devices at once').isChecked()).toBe(false);
    expect(await page.getByLabel('Expires', { exact: true }).inputValue()).toBe('24');
    await page.getByLabel('Number of uses').fill('1');
    await page.getByRole('button', { name: 'Make token' }).click();

    await page.getByRole('heading', { name: 'Set up the device' }).waitFor();
    // Keyboard and screen reader users land on what appeared.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('commands-title');
    const token = (await page.locator('[data-secret]').textContent())!;
    expect(token).toMatch(/^pre_[A-Za-z0-9_-]{43}$/);
    await page.getByLabel(ARCH_LABEL).check();
    await expectAccessible(page, 'the commands');
    await screenshot(page, 'add-device-commands-1280-light');
    const commands = await copiedCommands(page);
    expect(commands).toEqual([
      `curl -fsSLo pirelay-agent ${downloadUrl}/pirelay-agent-linux-${ARCH} && chmod +x pirelay-agent`,
      `sudo ./pirelay-agent enroll --relay ${d.origin} --token ${token}`,
      'sudo ./pirelay-agent install-service',
    ]);
    // The token's secret is not kept anywhere the page could leak it from.
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href)).not.toContain(token);

    // On "the device": a scratch directory. A stand-in sudo (a real one would ask for a password and
    // reset the environment) and a stand-in systemctl that records its calls and starts the unit.
    const pi = join(scratch, 'pi');
    const shims = join(scratch, 'shims');
    await mkdir(pi, { recursive: true });
    await mkdir(shims, { recursive: true });
    await writeFile(join(shims, 'sudo'), '#!/bin/sh\nexec "$@"\n');
    await writeFile(
      join(shims, 'systemctl'),
      `#!/bin/bash
echo "$*" >> "$FAKE_SYSTEMCTL_LOG"
if [ "$*" = "enable --now pirelay-agent" ]; then
  exec_start=$(sed -n 's/^ExecStart=//p' "$PIRELAY_UNIT_DIR/pirelay-agent.service")
  bash -c "exec $exec_start" > "$FAKE_AGENT_LOG" 2>&1 < /dev/null &
  echo $! > "$FAKE_AGENT_PID"
fi
`,
    );
    await chmod(join(shims, 'sudo'), 0o755);
    await chmod(join(shims, 'systemctl'), 0o755);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${shims}:${process.env.PATH}`,
      PIRELAY_AGENT_CONFIG: join(pi, 'etc/pirelay/agent.json'),
      PIRELAY_BIN_DIR: join(pi, 'usr/local/bin'),
      PIRELAY_UNIT_DIR: join(pi, 'etc/systemd/system'),
      FAKE_SYSTEMCTL_LOG: join(pi, 'systemctl.log'),
      FAKE_AGENT_LOG: join(pi, 'agent.log'),
      FAKE_AGENT_PID: join(pi, 'agent.pid'),
    };
    delete env.PIRELAY_SYSTEMCTL;

    const results = [];
    for (const command of commands) {
      const r = await bash(command, pi, env);
      expect(r.code, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
      results.push(r);
    }
    expect(downloaded).toEqual([`GET /agent/pirelay-agent-linux-${ARCH}`]);
    const enrolled = JSON.parse(results[1]!.stdout.trim().split('\n').pop()!) as { device_id: string; name: string; status: string };
    expect(enrolled.status).toBe('pending');
    expect(results[2]!.stdout).toContain('pirelay-agent is enabled and started');
    expect((await readFile(env.FAKE_SYSTEMCTL_LOG!, 'utf8')).trim().split('\n')).toEqual(['daemon-reload', 'enable --now pirelay-agent']);
    const unit = await readFile(join(env.PIRELAY_UNIT_DIR!, 'pirelay-agent.service'), 'utf8');
    expect(unit).toContain(`\nExecStart=${join(env.PIRELAY_BIN_DIR!, 'pirelay-agent')} run --config ${env.PIRELAY_AGENT_CONFIG}\n`);
    agentPid = Number(await readFile(env.FAKE_AGENT_PID!, 'utf8'));
    expect(alive(agentPid)).toBe(true);

    // The device waits for approval.
    const id = enrolled.device_id;
    const pending = await d.api(`/api/v1/devices/${id}`);
    expect(pending.body).toMatchObject({ status: 'pending', online: false, name: enrolled.name });

    // Approve it on the Fleet page, whose pending list has a button "Approve <device name>".
    await page.getByRole('link', { name: 'Fleet page' }).click();
    const approve = page.getByRole('button', { name: `Approve ${enrolled.name}` });
    await approve.click();

    // The installed agent, waiting for approval, now connects, and the fleet shows it online.
    await waitFor(`${enrolled.name} approved and online`, async () => {
      const r = await d.api(`/api/v1/devices/${id}`);
      return r.body.status === 'approved' && r.body.online === true;
    }, 30_000);
    await page.getByRole('row').filter({ has: page.getByRole('link', { name: enrolled.name }) }).filter({ hasText: 'online' }).waitFor();
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows no commands for a token the relay refused, and its message beside the form and the field', async () => {
    const { page, context, foreign } = await openPage(d);
    await signInAdmin(page, d, '/add-device');
    const before = (await d.api('/api/v1/enrollment-tokens')).body.enrollment_tokens.length;

    await page.getByLabel('Expires', { exact: true }).selectOption('at');
    await page.getByLabel('Expires at').fill('2020-01-01T10:00');
    await page.getByRole('button', { name: 'Make token' }).click();
    await expect.poll(() => page.locator('.error-note').textContent()).toContain('expires_at is in the past');
    expect(await page.getByLabel('Expires at').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByRole('heading', { name: 'Set up the device' }).count()).toBe(0);
    expect(await page.locator('[data-secret], .code-line').count()).toBe(0);
    await expectAccessible(page, 'the form with the API error');
    await screenshot(page, 'add-device-refused-1280-light');

    await page.getByLabel('Expires', { exact: true }).selectOption('24');
    await page.getByLabel('Number of uses').fill('0');
    await page.getByRole('button', { name: 'Make token' }).click();
    await expect.poll(() => page.getByLabel('Number of uses').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.field-error').textContent()).toMatch(/1/);
    expect(await page.locator('[data-secret], .code-line').count()).toBe(0);

    expect((await d.api('/api/v1/enrollment-tokens')).body.enrollment_tokens.length).toBe(before);
    expect(foreign).toEqual([]);
    await context.close();
  });

  it('lists the tokens with uses left, expiry and team, and revokes one', async () => {
    const { page, context, foreign, errors } = await openPage(d);
    await signInAdmin(page, d, '/add-device');
    await page.getByLabel('Label').fill('spare');
    await page.getByLabel('Expires', { exact: true }).selectOption('never');
    await page.getByLabel('Number of uses').fill('');
    await page.getByLabel('Approve devices at once').check();
    await page.getByRole('button', { name: 'Make token' }).click();
    await page.getByRole('heading', { name: 'Set up the device' }).waitFor();
    await page.getByText('The device then comes online on the').waitFor();
    await page.getByRole('button', { name: 'Make another token' }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('new-token-title');

    const table = page.getByRole('table', { name: 'Enrollment tokens' });
    const row = table.getByRole('row').filter({ hasText: 'spare' });
    await row.waitFor();
    const teams = (await d.api('/api/v1/teams')).body.teams as { id: string; name: string }[];
    const token = ((await d.api('/api/v1/enrollment-tokens')).body.enrollment_tokens as { id: string; name: string; team_id: string }[]).find((t) => t.name === 'spare')!;
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells.slice(1, 6)).toEqual([teams.find((t) => t.id === token.team_id)!.name, 'unlimited (0 used)', 'never', 'automatic', 'active']);
    // The token of the second device (made in the first test) is used up: listed only when asked.
    expect(await table.getByRole('row').filter({ hasText: 'second pi' }).count()).toBe(0);
    await page.getByLabel(/^Show inactive tokens/).check();
    await expect.poll(() => table.getByRole('row').filter({ hasText: 'second pi' }).getByRole('cell').allTextContents()).toContain('0 of 1');
    await page.getByLabel(/^Show inactive tokens/).uncheck();
    await expectAccessible(page, 'the token list');
    await screenshot(page, 'add-device-tokens-1280-light');

    await row.getByRole('button', { name: 'Revoke spare' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke spare?' });
    await dialog.waitFor();
    await expectAccessible(page, 'the revoke dialog');
    await dialog.getByRole('button', { name: 'Revoke token' }).click();
    await page.getByText('No active enrollment tokens.').waitFor();
    const after = ((await d.api('/api/v1/enrollment-tokens')).body.enrollment_tokens as { id: string; state: string }[]).find((t) => t.id === token.id)!;
    expect(after.state).toBe('revoked');
    await page.getByLabel(/^Show inactive tokens/).check();
    expect(await table.getByRole('row').filter({ hasText: 'spare' }).getByRole('cell').allTextContents()).toContain('revoked');
    expect(await table.getByRole('row').filter({ hasText: 'spare' }).getByRole('button').count()).toBe(0);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('keeps a viewer out: no link, and the API refuses, as the page says', async () => {
    const viewer = await createUser(d, 'add-device-viewer', ['viewer']);
    const { page, context, foreign } = await openPage(d);
    await signIn(page, d.origin, viewer.username, viewer.password);
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Add a device' }).count()).toBe(0);
    await page.goto(d.origin + '/add-device');
    const alert = page.getByRole('alert').filter({ hasText: 'You may not add devices' });
    await alert.waitFor();
    expect(await alert.textContent()).toContain('FORBIDDEN');
    expect(await page.getByRole('button', { name: 'Make token' }).count()).toBe(0);
    // Not only hidden: the relay itself refuses this user's session.
    const statuses = await page.evaluate(async () => {
      const list = await fetch('/api/v1/enrollment-tokens');
      const make = await fetch('/api/v1/enrollment-tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      const install = await fetch('/api/v1/agent-install');
      return [list.status, make.status, install.status];
    });
    expect(statuses).toEqual([403, 403, 403]);
    await expectAccessible(page, 'the page for a viewer');
    expect(foreign).toEqual([]);
    await context.close();
  });

  it('holds at 390 px in dark, with the commands wrapped inside the page', async () => {
    const { page, context, foreign } = await openPage(d, { width: 390, height: 844, colorScheme: 'dark' });
    await signInAdmin(page, d, '/add-device');
    await page.getByRole('button', { name: 'Make token' }).waitFor();
    const noSideScroll = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    expect(await noSideScroll()).toBe(true);
    await expectAccessible(page, 'the form, 390 px dark');
    await screenshot(page, 'add-device-form-390-dark');
    await page.getByRole('button', { name: 'Make token' }).click();
    await page.getByRole('heading', { name: 'Set up the device' }).waitFor();
    expect(await noSideScroll()).toBe(true);
    await expectAccessible(page, 'the commands, 390 px dark');
    await screenshot(page, 'add-device-commands-390-dark');
    expect(foreign).toEqual([]);
    await context.close();
  });
});
