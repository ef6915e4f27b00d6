// The whole spine against real parts: the relay in workerd as `npm start` runs it, real agent
// processes under Bun, this machine's real /proc. Enroll → pending → approve → online →
// device_info matches /proc → agent killed → offline → relay restarted → agent back by itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AGENT_MAIN, runBun, startDevEnv, waitFor, type DevEnv } from '../../scripts/dev-env.ts';
import { startRelay } from '../../scripts/relay.ts';
import { agentCli, freePort, http, tempDir } from './harness.ts';

const HEARTBEAT_MS = 500;
let env: DevEnv;
let url: string;
let key: string;
let dir: string;
let port: number;
let deviceId: string;
let agent: ChildProcess | null = null;
let agentLog = '';

function startAgent() {
  agentLog = '';
  agent = runBun([AGENT_MAIN, 'run', '--simulate', '--config', join(dir, 'device.json'), '--max-backoff-ms', '1000'], { logs: 'pipe' });
  agent.stderr?.on('data', (d) => (agentLog += d));
  return agent;
}

async function deviceOnline(): Promise<boolean> {
  const r = await http(`${url}/devices`, { basicKey: key });
  return r.body.devices.find((d: { id: string }) => d.id === deviceId)?.online === true;
}

beforeAll(async () => {
  dir = await tempDir('e2e');
  port = await freePort();
  env = await startDevEnv({ dir, port, demoDevices: [], vars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), RPC_TIMEOUT_MS: '3000' } });
  url = env.state.url;
  key = env.state.apiKey;
});

afterAll(async () => {
  agent?.kill('SIGKILL');
  await env?.stop();
});

describe('spine end to end', () => {
  it('enrolls a device that waits as pending until approved', async () => {
    const tok = await http(`${url}/api/v1/enrollment-tokens`, { key, json: { name: 'e2e', auto_approve: false } });
    expect(tok.status).toBe(201);
    const enrolled = await agentCli(['enroll', '--relay', url, '--token', tok.body.token, '--config', join(dir, 'device.json'), '--name', 'e2e-pi']);
    expect(enrolled.stderr).toBe('');
    expect(enrolled.code).toBe(0);
    const out = JSON.parse(enrolled.stdout);
    expect(out.status).toBe('pending');
    deviceId = out.device_id;
    expect(deviceId).toMatch(/^[0-9a-f]{40}$/);

    const config = JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8'));
    expect(config.device_id).toBe(deviceId);
    expect(config.private_key.d).toBeTruthy();

    const pending = await http(`${url}/api/v1/agents/pending`, { key });
    expect(pending.body.agents.map((a: { id: string }) => a.id)).toContain(deviceId);

    startAgent();
    await waitFor('agent to report waiting for approval', async () => agentLog.includes('waiting for approval'), 15_000);
    expect(await deviceOnline()).toBe(false);
  });

  it('comes online after approval and shows in /devices as PiTunnel documents', async () => {
    const approved = await http(`${url}/api/v1/agents/pending/${deviceId}/approve`, { key, method: 'POST' });
    expect(approved.status).toBe(200);
    await waitFor('device online', deviceOnline, 15_000);

    const list = await http(`${url}/devices`, { basicKey: key });
    const dev = list.body.devices.find((d: { id: string }) => d.id === deviceId);
    expect(dev).toEqual({
      id: deviceId,
      hostname: hostname(),
      serial: expect.any(String),
      display_name: 'e2e-pi',
      os: 'Linux',
      os_version: expect.any(String),
      hardware: expect.any(String),
      online: true,
    });
    const native = await http(`${url}/api/v1/devices/${deviceId}`, { key });
    expect(native.body).toMatchObject({ id: deviceId, name: 'e2e-pi', status: 'approved', online: true });
  });

  it('answers device_info with values read from this machine', async () => {
    const r = await http(`${url}/device_info`, {
      basicKey: key,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `device_id=${deviceId}`,
    });
    expect(r.status).toBe(200);
    const info = r.body.device_info;
    const meminfo = readFileSync('/proc/meminfo', 'utf8');
    const memTotal = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)![1]) * 1024;
    expect(info.mem_total).toBe(memTotal);
    const memAvailable = Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)![1]) * 1024;
    expect(Math.abs(info.mem_available - memAvailable)).toBeLessThan(memTotal * 0.05);
    expect(info.hostname).toBe(hostname());
    const fs = await statfs('/');
    expect(info.disk_usage[0]).toBe(fs.blocks * fs.bsize);
    expect(info.disk_usage).toHaveLength(4);
    expect(info.cpu_usage).toBeGreaterThanOrEqual(0);
    expect(info.cpu_usage).toBeLessThanOrEqual(100);
    expect(info.mem_used_percent).toBeCloseTo(((memTotal - info.mem_available) / memTotal) * 100, 0);
    expect(info.mac_address).toMatch(/^[0-9A-F]{12}$/);
  });

  it('lists processes from /proc without the agent itself', async () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      const r = await http(`${url}/process_list?device_id=${deviceId}`, { basicKey: key });
      expect(r.status).toBe(200);
      const pids = r.body.process_list.map((p: { pid: number }) => p.pid);
      expect(pids).toContain(sleeper.pid);
      expect(pids).not.toContain(agent!.pid);
      const p = r.body.process_list.find((x: { pid: number }) => x.pid === sleeper.pid);
      expect(p).toEqual({ pid: sleeper.pid, name: 'sleep', cpu_percent: expect.any(Number), memory_percent: expect.any(Number) });
    } finally {
      sleeper.kill();
    }
  });

  it("runs the seed's curl examples with only the host changed", () => {
    const devices = JSON.parse(execFileSync('curl', ['-s', `${url}/devices`, '-u', `${key}:`], { encoding: 'utf8' }));
    expect(Array.isArray(devices.devices)).toBe(true);
    expect(devices.devices[0]).toEqual(
      expect.objectContaining({ id: expect.any(String), hostname: expect.any(String), serial: expect.any(String), os: expect.any(String), os_version: expect.any(String), hardware: expect.any(String), online: expect.any(Boolean) }),
    );
    const info = JSON.parse(execFileSync('curl', ['-s', `${url}/device_info`, '-u', `${key}:`, '-d', `device_id=${deviceId}`], { encoding: 'utf8' }));
    expect(Object.keys(info.device_info).sort()).toEqual(
      expect.arrayContaining(['cpu_temp', 'cpu_usage', 'disk_usage', 'hostname', 'mac_address', 'mem_available', 'mem_total', 'mem_used_percent']),
    );
    const procs = JSON.parse(execFileSync('curl', ['-s', `${url}/process_list`, '-u', `${key}:`, '-d', `device_id=${deviceId}`], { encoding: 'utf8' }));
    expect(procs.process_list.length).toBeGreaterThan(0);
  });

  it('goes offline within the heartbeat window when the agent dies, and the API says so', async () => {
    agent!.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('device offline', async () => !(await deviceOnline()), HEARTBEAT_MS * 4 + 2_000, 50);
    expect(Date.now() - killedAt).toBeLessThan(HEARTBEAT_MS * 4 + 2_000);
    const r = await http(`${url}/device_info`, { basicKey: key, method: 'POST', body: new URLSearchParams({ device_id: deviceId }) });
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('DEVICE_OFFLINE');
  });

  it('marks a silent agent (alive but not answering) offline by the heartbeat alarm', async () => {
    startAgent();
    await waitFor('device online again', deviceOnline, 15_000);
    // SIGSTOP keeps the TCP connection open but silences the agent: only the alarm can notice.
    agent!.kill('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await waitFor('silent device offline', async () => !(await deviceOnline()), HEARTBEAT_MS * 6 + 3_000, 50);
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(HEARTBEAT_MS * 3 - 100);
    } finally {
      agent!.kill('SIGCONT');
    }
    // Once resumed, the agent notices its socket is gone and dials again.
    await waitFor('device online after resume', deviceOnline, 15_000);
  });

  it('reconnects by itself after the relay restarts', async () => {
    const connectsBefore = agentLog.split('connected to relay').length;
    await env.relay.stop();
    await new Promise((r) => setTimeout(r, 1_500));
    const secrets = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8'));
    env.relay = await startRelay({ port, stateDir: join(dir, 'state'), vars: { ...secrets, HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) } });
    const back = Date.now();
    await waitFor('a new connection after relay restart', async () => agentLog.split('connected to relay').length > connectsBefore, 15_000, 50);
    await waitFor('device online after relay restart', deviceOnline, 15_000, 100);
    // The agent probes /health every second while the relay is away, so it is back quickly.
    expect(Date.now() - back).toBeLessThan(5_000);
    const r = await http(`${url}/device_info`, { basicKey: key, method: 'POST', body: new URLSearchParams({ device_id: deviceId }) });
    expect(r.status).toBe(200);
  });
});
