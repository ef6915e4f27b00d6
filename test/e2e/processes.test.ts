// Processes end to end: Tyto's GET /api/v1/processes/{pid} and POST …/signal, and the native
// /api/v1/devices/{id}/processes/{pid}[/signal], through the relay in workerd to a real agent on
// this machine, against real processes this test starts (and watches exit) — and the ones the
// agent must never signal: pid 1, itself and its parent (this test's own process).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { userInfo } from 'node:os';
import { rm } from 'node:fs/promises';
import { startDevEnv, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';
import { gone, parentOf } from './terminal-helpers.ts';

let env: DevEnv;
let dir: string;
let url: string;
let key: string;
let deviceId: string;
let viewerKey: string;
const children: ChildProcess[] = [];

const sleeper = () => {
  const c = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(c);
  return c;
};
const exited = (c: ChildProcess) => new Promise<NodeJS.Signals | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.signalCode) : c.once('exit', (_code, sig) => r(sig))));
const tyto = (pid: number, k = key, agent = deviceId) => http(`${url}/api/v1/processes/${pid}?agent_id=${agent}`, { key: k });
const tytoSignal = (pid: number, signal: unknown, k = key, agent = deviceId) => http(`${url}/api/v1/processes/${pid}/signal?agent_id=${agent}`, { key: k, method: 'POST', json: { signal } });
const nativeSignal = (pid: number, signal: unknown, k = key) => http(`${url}/api/v1/devices/${deviceId}/processes/${pid}/signal`, { key: k, method: 'POST', json: { signal } });
const stateOf = async (pid: number) => (await tyto(pid)).body.state as string;

beforeAll(async () => {
  dir = await tempDir('processes');
  env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['proc-pi'], agentArgs: ['--no-journal'], vars: { HEARTBEAT_INTERVAL_MS: '500' } });
  await waitOnline(env, 30_000);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
  // A viewer of the device's team: may read a process, not signal it.
  const username = 'proc-viewer';
  const password = 'pw-viewer-processes-1234';
  expect((await http(`${url}/api/v1/users`, { key, json: { username, password, roles: ['viewer'] } })).status).toBe(201);
  const team = (await http(`${url}/api/servers/${deviceId}`, { key })).body.team_id as string;
  expect((await http(`${url}/api/v1/teams/${team}/members`, { key, json: { username, role: 'member' } })).status).toBeLessThan(300);
  const login = await http(`${url}/api/v1/auth/login`, { json: { username, password } });
  viewerKey = (await http(`${url}/api/v1/api-keys`, { key: login.body.token, json: { name: 'processes viewer' } })).body.key;
}, 90_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await env?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Tyto's process API on a real process", () => {
  it('GET /api/v1/processes/{pid} describes a process this machine runs, as Tyto does', async () => {
    const c = sleeper();
    const r = await tyto(c.pid!);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ pid: c.pid, ppid: process.pid, name: 'sleep', cmdline: 'sleep 600', user: userInfo().username, threads: 1 });
    expect(r.body.state).toMatch(/^[RS]$/);
    expect(r.body.memory).toBeGreaterThan(0);
    expect(r.body.cpu).toBeGreaterThanOrEqual(0);
    expect(Math.abs(Date.parse(r.body.startTime) - Date.now())).toBeLessThan(60_000);
    // The native route answers the same process.
    const native = await http(`${url}/api/v1/devices/${deviceId}/processes/${c.pid}`, { key });
    expect(native.status).toBe(200);
    expect(native.body).toMatchObject({ pid: c.pid, name: 'sleep' });
    // Reading is devices:read: a viewer may.
    expect((await tyto(c.pid!, viewerKey)).status).toBe(200);
  });

  it('SIGSTOP stops, SIGCONT resumes and SIGTERM ends a real child, which this test sees exit', async () => {
    const c = sleeper();
    const stop = await tytoSignal(c.pid!, 19);
    expect(stop.status).toBe(200);
    expect(stop.body).toMatchObject({ pid: c.pid, signal: 19, name: 'SIGSTOP' });
    expect(await stateOf(c.pid!)).toBe('T');
    expect((await tytoSignal(c.pid!, 'SIGCONT')).status).toBe(200);
    expect(await stateOf(c.pid!)).toMatch(/^[RS]$/);
    const term = await tytoSignal(c.pid!, 15);
    expect(term.status).toBe(200);
    expect(await exited(c)).toBe('SIGTERM');
    // And the native route, by name.
    const d = sleeper();
    const kill = await nativeSignal(d.pid!, 'KILL');
    expect(kill.status).toBe(200);
    expect(kill.body).toMatchObject({ pid: d.pid, signal: 9, name: 'SIGKILL' });
    expect(await exited(d)).toBe('SIGKILL');
  });

  it('the signal is audited with who, the device and what', async () => {
    const c = sleeper();
    expect((await tytoSignal(c.pid!, 'TERM')).status).toBe(200);
    await exited(c);
    const audit = await http(`${url}/api/v1/audit?limit=50`, { key });
    expect(audit.status).toBe(200);
    const entry = JSON.stringify(audit.body.entries ?? audit.body);
    expect(entry).toMatch(/process(es)?\.signal/);
    expect(entry).toContain(String(c.pid));
  });
});

describe('refusals', () => {
  it('pid 1, the agent itself and its parent are PROCESS_PROTECTED (403), and stay alive', async () => {
    const agentPid = env.agents.get(deviceId)!.pid!;
    const parent = parentOf(agentPid);
    expect(parent).toBe(process.pid);
    for (const pid of [1, agentPid, parent]) {
      for (const call of [() => tytoSignal(pid, 9), () => nativeSignal(pid, 'TERM')]) {
        const r = await call();
        expect(r.status, `pid ${pid}`).toBe(403);
        expect(r.body).toMatchObject({ code: 'PROCESS_PROTECTED', error: expect.any(String) });
      }
    }
    expect(gone(agentPid)).toBe(false);
    expect(gone(1)).toBe(false);
    // The agent still answers.
    expect((await tyto(agentPid)).status).toBe(200);
  });

  it('a pid that does not exist is 404 PROCESS_NOT_FOUND, to read and to signal', async () => {
    const c = sleeper();
    c.kill('SIGKILL');
    await exited(c);
    for (const pid of [c.pid!, 4_194_304]) {
      const read = await tyto(pid);
      expect(read.status, `pid ${pid}`).toBe(404);
      expect(read.body).toMatchObject({ code: 'PROCESS_NOT_FOUND' });
      const sig = await tytoSignal(pid, 15);
      expect(sig.status).toBe(404);
      expect(sig.body).toMatchObject({ code: 'PROCESS_NOT_FOUND' });
    }
  });

  it('a signal off the allow-list, a bad pid, an unknown device and a caller without processes:signal are refused and the process lives', async () => {
    const c = sleeper();
    for (const signal of [11, 'SIGSEGV', 'NOPE', 0, -9, null]) {
      const r = await tytoSignal(c.pid!, signal);
      expect(r.status, JSON.stringify(signal)).toBe(400);
    }
    for (const pid of ['0', '-1', 'abc', '99999999999']) {
      const r = await http(`${url}/api/v1/processes/${pid}/signal?agent_id=${deviceId}`, { key, method: 'POST', json: { signal: 15 } });
      expect(r.status, pid).toBe(400);
    }
    expect((await tytoSignal(c.pid!, 15, key, 'no-such-device')).status).toBe(404);
    const noAgent = await http(`${url}/api/v1/processes/${c.pid}`, { key });
    expect(noAgent.status).toBe(400);
    const viewer = await tytoSignal(c.pid!, 15, viewerKey);
    expect(viewer.status).toBe(403);
    expect((await http(`${url}/api/v1/processes/${c.pid}/signal?agent_id=${deviceId}`, { method: 'POST', json: { signal: 15 } })).status).toBe(401);
    expect(gone(c.pid!)).toBe(false);
    expect(await stateOf(c.pid!)).toMatch(/^[RS]$/);
  });
});
