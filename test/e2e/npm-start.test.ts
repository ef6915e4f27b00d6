// `npm start` as a user runs it, stopped the ways a user or a process manager stops it: SIGTERM
// and SIGHUP to the npm process must take down everything it started (the relay's workerd and
// the demo agent), not leave them serving with nobody to stop them. npm passes neither signal on
// to the script itself, so this tests start.ts's own watch on the processes above it. Once, it
// also tries the demo device as the README's "npm start" steps do: a keystroke, a terminal from
// PiTunnel's /terminal, a line in its log file found by a search, Tyto's process API.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { ROOT, waitFor } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';
import { socketUrl, Viewer } from './terminal-helpers.ts';

const started: ChildProcess[] = [];
/** Everything npm start ran, so a failing test leaves no relay or agent behind. */
const leftovers: number[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of leftovers) if (!gone(pid)) process.kill(pid, 'SIGKILL');
});

/** Every process below `root`, by walking the table `ps` prints. */
function descendants(root: number): { pid: number; args: string }[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const out: { pid: number; args: string }[] = [];
  const walk = (pid: number) => {
    for (const r of rows) if (r.ppid === pid) out.push(r), walk(r.pid);
  };
  walk(root);
  return out;
}

/** Gone, or a zombie nobody reaped yet (this container's init may not). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return true;
  }
}

const answers = (port: number) =>
  fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) }).then(
    (r) => r.ok,
    () => false,
  );

/**
 * What the demo device offers beyond the KVM: a terminal from PiTunnel's /terminal that echoes,
 * its log file (named in the start-up output) searchable, and Tyto's process API about its agent.
 */
async function demo(url: string, key: string, device: { id: string; name: string }, logFile: string, agentPid: number, output: string) {
  const link = await http(`${url}/terminal`, { basicKey: key, body: new URLSearchParams({ device_id: device.id }) });
  expect(link.status).toBe(200);
  expect(link.body.terminal_url).toMatch(new RegExp(`^${url}/terminal/${device.id}#.+`));
  const v = await Viewer.open(socketUrl(url, device.id), new URL(link.body.terminal_url).hash.slice(1));
  try {
    const from = v.received;
    v.type('echo hello\r');
    await v.output('\nhello\n', from);
    v.send({ t: 'close' });
    await v.control('exit');
  } finally {
    v.ws.close();
  }

  expect(output).toContain(logFile);
  const word = `demo${Date.now().toString(36)}`;
  appendFileSync(logFile, `hello from the device ${word}\n`);
  const found = await waitFor('the demo log line to be searchable', async () => {
    const r = await http(`${url}/api/v1/logs?agent_id=${device.id}&q=${word}`, { key });
    return r.status === 200 && r.body.total === 1 ? r.body.entries[0] : null;
  }, 30_000);
  expect(found).toMatchObject({ agent_id: device.id, source: 'file', source_name: 'demo', message: `hello from the device ${word}` });

  // The process the demo's agent is, through Tyto's API; and it refuses to signal itself.
  const proc = await http(`${url}/api/v1/processes/${agentPid}?agent_id=${device.id}`, { key });
  expect(proc.status).toBe(200);
  expect(proc.body).toMatchObject({ pid: agentPid, cmdline: expect.stringContaining('agent/main.ts run') });
  const self = await http(`${url}/api/v1/processes/${agentPid}/signal?agent_id=${device.id}`, { key, json: { signal: 15 } });
  expect(self.status).toBe(403);
  expect(self.body.code).toBe('PROCESS_PROTECTED');
}

describe('npm start', () => {
  // Ctrl-C signals the terminal's whole foreground process group; the others go to npm alone.
  for (const [signal, group] of [
    ['SIGTERM', false],
    ['SIGHUP', false],
    ['SIGINT', true],
  ] as const) {
    it(`stops the relay and the agent when ${group ? 'the process group (Ctrl-C)' : 'the npm process'} gets ${signal}`, async () => {
      const port = await freePort();
      const dir = await tempDir('npm-start');
      const npm = spawn('npm', ['start'], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port), PIRELAY_STATE_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, as a shell gives a foreground job.
        detached: true,
      });
      started.push(npm);
      let output = '';
      npm.stdout!.on('data', (d) => (output += d));
      npm.stderr!.on('data', (d) => (output += d));
      await waitFor('npm start to be up', async () => output.includes('pirelay is running at'), 90_000);
      expect(await answers(port)).toBe(true);
      // The dashboard is printed beside the API, and the admin login printed works there.
      expect(output).toContain(`dashboard     http://127.0.0.1:${port}/`);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await page.text()).toContain('<div id="app">');
      const [, user, password] = /admin login\s+(\S+) \/ (\S+)/.exec(output) ?? [];
      const login = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
        body: JSON.stringify({ username: user, password, session_cookie: true }),
      });
      expect(login.status).toBe(200);
      expect(login.headers.get('set-cookie')).toMatch(/^__Host-pirelay_session=/);
      const tree = descendants(npm.pid!);
      leftovers.push(...tree.map((p) => p.pid));
      const workerd = tree.filter((p) => /workerd/.test(p.args));
      const agent = tree.filter((p) => /agent\/main\.ts run/.test(p.args));
      expect(workerd.length).toBeGreaterThan(0);
      expect(agent.length).toBeGreaterThan(0);
      expect(readFileSync(`${dir}/dev.json`, 'utf8')).toContain(`127.0.0.1:${port}`);
      // The demo device is a KVM: a keystroke through the API lands, byte for byte, in the hid
      // file the start-up output names.
      const dev = JSON.parse(readFileSync(`${dir}/dev.json`, 'utf8')) as { apiKey: string; devices: { id: string; name: string }[] };
      const hidg0 = `${dir}/hid/${dev.devices[0]!.name}/hidg0`;
      expect(output).toContain(hidg0);
      await waitFor('the keystroke to reach the demo device', async () => {
        const r = await fetch(`http://127.0.0.1:${port}/api/v1/devices/${dev.devices[0]!.id}/keystroke`, {
          method: 'POST',
          headers: { authorization: `Bearer ${dev.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ code: 'KeyH', modifiers: ['ShiftLeft'] }),
        });
        return r.status === 200;
      }, 30_000);
      expect(readFileSync(hidg0).toString('hex')).toMatch(/02000b0000000000(0000000000000000)$/);
      // The demo's terminal, logs and processes, once (each start is the same demo).
      if (signal === 'SIGTERM') await demo(`http://127.0.0.1:${port}`, dev.apiKey, dev.devices[0]!, `${dir}/logs/${dev.devices[0]!.name}.log`, agent[0]!.pid, output);

      if (group) process.kill(-npm.pid!, signal);
      else npm.kill(signal);
      await waitFor(`every process npm start ran to exit after ${signal}`, async () => tree.every((p) => gone(p.pid)), 30_000);
      expect(await answers(port)).toBe(false);
      expect(output).toMatch(/stopping the relay and the agent…[\s\S]*\[pirelay\] stopped/);
    }, 150_000);
  }
});
