// Two teams on one relay, end to end: the relay in workerd, two real Bun agents enrolled with
// enrollment tokens of two teams, and two users, one per team, set up through the teams API.
// Each sees and drives only its own device, through the native API, PiTunnel, Tyto,
// tunnel-control and the ingress of a `pirelay`-access tunnel; the other team's device is
// "not found" in each layer's own words, and its tunnel refuses them as it refuses a stranger.
// The instance admin sees both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Agent, fetch as ufetch, type Dispatcher } from 'undici';
import { AGENT_MAIN, runBun, startDevEnv, waitFor, type DevEnv } from '../../scripts/dev-env.ts';
import { agentCli, freePort, http, loopbackLookup, startTargets, tempDir, type Targets } from './harness.ts';

let env: DevEnv;
let url: string;
let port: number;
let adminKey: string;
let targets: Targets;
const agents: ChildProcess[] = [];
const dispatcher: Dispatcher = new Agent({ connect: { lookup: loopbackLookup } as never });

/** One team's side: its user's API key, its device, its tunnel. */
interface Side {
  team: string;
  key: string;
  device: string;
  tunnel: string;
}
const sides: Record<'a' | 'b', Side> = { a: {} as Side, b: {} as Side };

async function ok<T = any>(what: string, p: Promise<{ status: number; body: any }>, status = 201): Promise<T> {
  const r = await p;
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as T;
}

const api = (path: string, key: string, init: Parameters<typeof http>[1] = {}) => http(`${url}${path}`, { key, ...init });

/** A team made by the instance admin, with a new operator as its admin, who enrolls a device into it and opens a pirelay tunnel. */
async function setUpSide(label: 'a' | 'b', dir: string): Promise<Side> {
  const team = (await ok('team', api('/api/v1/teams', adminKey, { json: { name: `Team ${label.toUpperCase()}` } }))).id as string;
  const username = `user-${label}`;
  const password = `password-of-${label}-1234`;
  await ok('user', api('/api/v1/users', adminKey, { json: { username, password, roles: ['operator'] } }));
  await ok('member', api(`/api/v1/teams/${team}/members`, adminKey, { json: { username, role: 'admin' } }));
  const session = (await ok('login', http(`${url}/api/v1/auth/login`, { json: { username, password } }), 200)).token as string;
  const key = (await ok('api key', api('/api/v1/api-keys', session, { json: { name: `key ${label}` } }))).key as string;

  // The user is in one team: the token goes to it without naming it.
  const token = await ok('token', api('/api/v1/enrollment-tokens', key, { json: { name: `pi ${label}`, auto_approve: true } }));
  expect(token.team_id).toBe(team);
  const config = join(dir, `${label}.json`);
  const enrolled = await agentCli(['enroll', '--relay', url, '--token', token.token, '--config', config, '--name', `pi-of-team-${label}`]);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  const device = JSON.parse(enrolled.stdout.trim().split('\n').pop()!).device_id as string;
  agents.push(runBun([AGENT_MAIN, 'run', '--simulate', '--config', config, '--max-backoff-ms', '500'], { logs: 'ignore' }));

  const tunnel = `web-${label}`;
  await ok('tunnel', api(`/api/v1/devices/${device}/tunnels`, key, { json: { name: tunnel, target: `127.0.0.1:${targets.http}`, access: { mode: 'pirelay' } } }));
  return { team, key, device, tunnel };
}

const visit = (name: string, key?: string) => ufetch(`http://${name}.localhost:${port}/tiny`, { dispatcher, headers: key ? { authorization: `Bearer ${key}` } : {} });
const controlCall = (call: string, deviceId: string, key: string) => http(`${url}/tunnel-api/${call}?device_id=${deviceId}&api_key=${key}`);

beforeAll(async () => {
  targets = await startTargets();
  port = await freePort();
  const dir = await tempDir('teams');
  env = await startDevEnv({ dir, port, demoDevices: [], vars: { HEARTBEAT_INTERVAL_MS: '500' } });
  url = env.state.url;
  adminKey = env.state.apiKey;
  sides.a = await setUpSide('a', dir);
  sides.b = await setUpSide('b', dir);
  for (const s of Object.values(sides)) {
    await waitFor(`${s.device} online`, async () => (await api(`/api/v1/devices/${s.device}`, adminKey)).body?.online === true, 20_000);
    // The agent learns its tunnel over its socket.
    await waitFor(`${s.tunnel} reachable`, async () => (await visit(s.tunnel, s.key)).status === 200, 10_000);
  }
}, 120_000);

afterAll(async () => {
  for (const a of agents) a.kill('SIGKILL');
  await env?.stop();
  targets?.stop();
});

describe('two teams on one relay', () => {
  for (const [me, other] of [['a', 'b'], ['b', 'a']] as const) {
    it(`team ${me}'s user sees and drives only team ${me}'s device`, async () => {
      const mine = sides[me];
      const theirs = sides[other];

      // Native.
      const list = await api('/api/v1/devices', mine.key);
      expect(list.body.devices.map((d: { id: string }) => d.id)).toEqual([mine.device]);
      expect(list.body.devices[0].team_id).toBe(mine.team);
      const info = await api(`/api/v1/devices/${mine.device}/info`, mine.key);
      expect(info.status).toBe(200);
      expect(info.body.memory.total).toBeGreaterThan(0);
      for (const path of [`/api/v1/devices/${theirs.device}`, `/api/v1/devices/${theirs.device}/info`, `/api/v1/devices/${theirs.device}/tunnels`]) {
        const r = await api(path, mine.key);
        expect(r.status, path).toBe(404);
        expect(r.body, path).toEqual({ error: 'Device not found', code: 'NOT_FOUND', details: { device_id: theirs.device } });
      }

      // PiTunnel.
      const devices = await http(`${url}/devices`, { basicKey: mine.key });
      expect(devices.body.devices.map((d: { id: string }) => d.id)).toEqual([mine.device]);
      const deviceInfo = await http(`${url}/device_info`, { basicKey: mine.key, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `device_id=${mine.device}` });
      expect(deviceInfo.status).toBe(200);
      expect(deviceInfo.body.device_info.mem_total).toBeGreaterThan(0);
      const foreignInfo = await http(`${url}/device_info?device_id=${theirs.device}`, { basicKey: mine.key });
      expect(foreignInfo.status).toBe(404);
      expect(foreignInfo.body).toMatchObject({ code: 'NOT_FOUND' });

      // Tyto.
      const tyto = await api('/api/v1/agents', mine.key);
      expect(tyto.body.agents.map((a: { id: string }) => a.id)).toEqual([mine.device]);
      expect(tyto.body.agents[0].status).toBe('online');
      expect((await api(`/api/v1/agents/${theirs.device}`, mine.key)).status).toBe(404);

      // tunnel-control.
      expect((await controlCall('client_status', mine.device, mine.key)).body).toEqual({ message: 'online', error_code: 0, success: true });
      expect((await controlCall('client_status', theirs.device, mine.key)).body).toEqual({ message: `Wrong data: no device ${theirs.device}`, error_code: 31, success: false });

      // Tunnel ingress with pirelay access.
      const own = await visit(mine.tunnel, mine.key);
      expect(own.status).toBe(200);
      expect(await own.text()).toBe('ok');
      const stranger = await visit(theirs.tunnel);
      const foreign = await visit(theirs.tunnel, mine.key);
      expect(foreign.status).toBe(401);
      expect(foreign.headers.get('x-pirelay-error')).toBe(stranger.headers.get('x-pirelay-error'));
      expect(await foreign.text()).toBe(await stranger.text());
    });
  }

  it('the instance admin sees both teams', async () => {
    const list = await api('/api/v1/devices', adminKey);
    expect(list.body.devices.map((d: { id: string }) => d.id).sort()).toEqual([sides.a.device, sides.b.device].sort());
    for (const s of Object.values(sides)) {
      expect((await api(`/api/v1/devices/${s.device}/info`, adminKey)).status).toBe(200);
      expect((await controlCall('client_status', s.device, adminKey)).body).toMatchObject({ error_code: 0 });
    }
  });
});
