// One process and signalling it, native (/api/v1/devices/{id}/processes/{pid}[/signal]) and
// Tyto's (/api/v1/processes/{pid}[/signal] with agent_id), through a real DeviceHub to a fake
// agent: a bad pid or signal is a 400 naming it before the device hears of it; the agent's codes
// become their statuses (PROCESS_NOT_FOUND 404, PROCESS_PROTECTED and SIGNAL_DENIED 403); a
// viewer reads but may not signal; another team's device is a 404 on every route; offline 503;
// each signal sent (and each the agent refused as protected or denied) is in the audit log.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { kvmDevice, makeTeam, userWithPermissions, type FakeKvmAgent, type RpcAnswer } from './kvm-helpers.ts';
import type { ProcessDetail } from '../../shared/api/processes.ts';

const NGINX: ProcessDetail = {
  pid: 1234,
  ppid: 1,
  name: 'nginx',
  cmdline: '/usr/sbin/nginx -g daemon off;',
  user: 'www-data',
  state: 'S',
  cpu: 0.5,
  memory: 50_000_000,
  threads: 4,
  startTime: '2024-01-15T08:00:00Z',
};

/** The fake agent's processes: 1234 is nginx, 1 and 800 are protected, 777 is root's (EPERM), the rest do not exist. */
function answer(method: string, params: Record<string, unknown>): RpcAnswer | undefined {
  const pid = Number(params.pid);
  if (method === 'process_get') {
    return pid === NGINX.pid ? { result: NGINX } : { error: { code: 'PROCESS_NOT_FOUND', message: `no process ${pid}`, details: { pid } } };
  }
  if (method === 'process_signal') {
    if (pid === 1) return { error: { code: 'PROCESS_PROTECTED', message: 'process 1 is init (pid 1): the agent will not signal it', details: { pid, reason: 'init' } } };
    if (pid === 800) return { error: { code: 'PROCESS_PROTECTED', message: 'process 800 is the agent itself', details: { pid, reason: 'self' } } };
    if (pid === 777) return { error: { code: 'SIGNAL_DENIED', message: "the agent's user may not signal process 777", details: { pid, signal: params.signal } } };
    if (pid !== NGINX.pid) return { error: { code: 'PROCESS_NOT_FOUND', message: `no process ${pid}`, details: { pid } } };
    return { result: { pid, signal: params.signal, name: 'SIGTERM', process: 'nginx' } };
  }
  return undefined;
}

let admin: string;
let deviceId: string;
let agent: FakeKvmAgent;

beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  const d = await kvmDevice(admin, { rpc: answer });
  deviceId = d.deviceId;
  agent = d.agent;
});

const native = (pid: string | number, rest = '') => `/api/v1/devices/${deviceId}/processes/${pid}${rest}`;
const signal = (pid: string | number, body: unknown, key = admin) => api(native(pid, '/signal'), { key, json: body });
/** The device-bound calls the fake agent received during `fn`. */
async function callsDuring(fn: () => Promise<void>) {
  const before = agent.calls.length;
  await fn();
  return agent.calls.slice(before).filter((c) => c.method.startsWith('process_'));
}
const issuePaths = (body: { details: Record<string, unknown> }) => (body.details.issues as { path: string }[]).map((i) => i.path);

describe('reading one process', () => {
  it('answers the agent\'s process_get in Tyto\'s shape', async () => {
    const calls = await callsDuring(async () => {
      const res = await api(native(1234), { key: admin });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(NGINX);
    });
    expect(calls).toEqual([{ method: 'process_get', params: { pid: 1234 } }]);
  });

  it('a pid that is not a whole number from 1 to 4194304 is a 400 naming pid, and never reaches the device', async () => {
    const calls = await callsDuring(async () => {
      for (const bad of ['0', '-1', 'abc', '99999999999', '4194305', '0x10', '1e3', '%2012', '12.5']) {
        const body = await expectError(await api(native(bad), { key: admin }), 400, 'VALIDATION_ERROR');
        expect(issuePaths(body), bad).toEqual(['pid']);
      }
    });
    expect(calls).toEqual([]);
  });

  it('a missing pid is 404 PROCESS_NOT_FOUND (with the pid), not a 500', async () => {
    const body = await expectError(await api(native(4242), { key: admin }), 404, 'PROCESS_NOT_FOUND');
    expect(body.details).toMatchObject({ pid: 4242, device_id: deviceId });
  });
});

describe('signalling a process', () => {
  it('sends the signal by number or by name (SIGTERM, TERM, "15"), as the number', async () => {
    const calls = await callsDuring(async () => {
      for (const s of [15, 'SIGTERM', 'term', '15']) {
        const res = await signal(1234, { signal: s });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ pid: 1234, signal: 15, name: 'SIGTERM', process: 'nginx' });
      }
    });
    expect(calls.map((c) => c.params)).toEqual(Array(4).fill({ pid: 1234, signal: 15 }));
  });

  it('a signal outside the allow-list is a 400 naming signal and listing the allowed ones, before any device work', async () => {
    const calls = await callsDuring(async () => {
      for (const s of [11, 0, -15, 15.5, 'SIGSEGV', 'KILL9', '', null, true, [15], { n: 15 }, 'x'.repeat(100)]) {
        const body = await expectError(await signal(1234, { signal: s }), 400, 'VALIDATION_ERROR');
        expect(issuePaths(body), JSON.stringify(s)).toEqual(['signal']);
        if (typeof s === 'number' || typeof s === 'string') {
          const message = (body.details.issues as { message: string }[])[0]!.message;
          if (typeof s === 'number' && Number.isInteger(s)) expect(message).toContain('15 (SIGTERM)');
          if (typeof s === 'number' && Number.isInteger(s)) expect(message).toContain('19 (SIGSTOP)');
        }
      }
      for (const body of [{}, { signal: 15, extra: 1 }, [15], 'SIGTERM']) await expectError(await signal(1234, body), 400, 'VALIDATION_ERROR');
      // A bad pid with a good signal: the pid is named.
      expect(issuePaths(await expectError(await signal('0', { signal: 15 }), 400, 'VALIDATION_ERROR'))).toEqual(['pid']);
    });
    expect(calls).toEqual([]);
  });

  it('the agent\'s refusals keep their codes: protected 403 (with the reason), denied 403, missing 404', async () => {
    const init = await expectError(await signal(1, { signal: 9 }), 403, 'PROCESS_PROTECTED');
    expect(init.details).toMatchObject({ pid: 1, reason: 'init', device_id: deviceId });
    expect(init.error).toContain('will not signal');
    expect((await expectError(await signal(800, { signal: 15 }), 403, 'PROCESS_PROTECTED')).details).toMatchObject({ reason: 'self' });
    expect((await expectError(await signal(777, { signal: 15 }), 403, 'SIGNAL_DENIED')).details).toMatchObject({ pid: 777 });
    expect((await expectError(await signal(4242, { signal: 15 }), 404, 'PROCESS_NOT_FOUND')).details).toMatchObject({ pid: 4242 });
  });

  it('records process.signal (pid, signal, its name, the process) and the agent\'s refusals as process.signal_refused', async () => {
    const actor = await userWithPermissions(['devices:read', 'processes:signal']);
    expect((await signal(1234, { signal: 'SIGTERM' }, actor.key)).status).toBe(200);
    await expectError(await signal(1, { signal: 9 }, actor.key), 403, 'PROCESS_PROTECTED');
    await expectError(await signal(4242, { signal: 9 }, actor.key), 404, 'PROCESS_NOT_FOUND');
    await expectError(await signal(1234, { signal: 11 }, actor.key), 400, 'VALIDATION_ERROR');
    const rows = await env.DB.prepare("SELECT action, target_type, target_id, team_id, actor_id, details FROM audit_log WHERE actor_id = ?1 AND action LIKE 'process.%' ORDER BY id")
      .bind(actor.userId)
      .all<Record<string, string>>();
    expect(rows.results.map((r) => ({ ...r, details: JSON.parse(r.details!) }))).toEqual([
      { action: 'process.signal', target_type: 'device', target_id: deviceId, team_id: 'test-team', actor_id: actor.userId, details: { pid: 1234, signal: 15, name: 'SIGTERM', process: 'nginx' } },
      { action: 'process.signal_refused', target_type: 'device', target_id: deviceId, team_id: 'test-team', actor_id: actor.userId, details: { pid: 1, signal: 9, name: 'SIGKILL', code: 'PROCESS_PROTECTED', reason: 'init' } },
    ]);
  });
});

describe('who may read and signal', () => {
  it('a viewer reads a process but may not signal one (403, the device never asked); an operator may', async () => {
    const viewer = (await userWithKey(['viewer'])).key;
    const operator = (await userWithKey(['operator'])).key;
    const calls = await callsDuring(async () => {
      expect((await api(native(1234), { key: viewer })).status).toBe(200);
      await expectError(await signal(1234, { signal: 15 }, viewer), 403, 'FORBIDDEN');
      await expectError(await api('/api/v1/processes/1234/signal', { key: viewer, json: { signal: 15, agent_id: deviceId } }), 403, 'FORBIDDEN');
    });
    expect(calls.map((c) => c.method)).toEqual(['process_get']);
    expect((await signal(1234, { signal: 15 }, operator)).status).toBe(200);
  });

  it('another team\'s device is 404 on every route, native and Tyto\'s, before anything reaches it', async () => {
    await makeTeam('team-processes-elsewhere');
    const outsider = (await userWithPermissions(['devices:read', 'processes:signal'], 'team-processes-elsewhere', 'owner')).key;
    const calls = await callsDuring(async () => {
      for (const res of [
        await api(native(1234), { key: outsider }),
        await signal(1234, { signal: 15 }, outsider),
        await api(`/api/v1/processes/1234?agent_id=${deviceId}`, { key: outsider }),
        await api(`/api/v1/processes/1234/signal?agent_id=${deviceId}`, { key: outsider, json: { signal: 15 } }),
        await api('/api/v1/processes/1234/signal', { key: outsider, json: { signal: 15, agent_id: deviceId } }),
      ]) {
        expect((await expectError(res, 404, 'NOT_FOUND')).error).toBe('Device not found');
      }
    });
    expect(calls).toEqual([]);
  });

  it('without a credential 401; an unknown device 404; an approved device that is offline 503', async () => {
    await expectError(await api(native(1234)), 401, 'UNAUTHORIZED');
    await expectError(await api('/api/v1/processes/1234/signal', { json: { signal: 15, agent_id: deviceId } }), 401, 'UNAUTHORIZED');
    const unknown = 'f'.repeat(40);
    await expectError(await api(`/api/v1/devices/${unknown}/processes/1`, { key: admin }), 404, 'NOT_FOUND');
    await expectError(await api(`/api/v1/processes/1?agent_id=${unknown}`, { key: admin }), 404, 'NOT_FOUND');
    const offline = await insertDevice({ status: 'approved' });
    await expectError(await api(`/api/v1/devices/${offline}/processes/1`, { key: admin }), 503, 'DEVICE_OFFLINE');
    await expectError(await api(`/api/v1/devices/${offline}/processes/1/signal`, { key: admin, json: { signal: 15 } }), 503, 'DEVICE_OFFLINE');
    await expectError(await api(`/api/v1/processes/1/signal?agent_id=${offline}`, { key: admin, json: { signal: 15 } }), 503, 'DEVICE_OFFLINE');
    const pending = await insertDevice({ status: 'pending' });
    await expectError(await api(`/api/v1/devices/${pending}/processes/1`, { key: admin }), 409, 'DEVICE_NOT_APPROVED');
  });
});

describe("Tyto's routes", () => {
  it('GET /api/v1/processes/{pid}?agent_id= reads the process from that device', async () => {
    const res = await api(`/api/v1/processes/1234?agent_id=${deviceId}`, { key: admin });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(NGINX);
    await expectError(await api(`/api/v1/processes/4242?agent_id=${deviceId}`, { key: admin }), 404, 'PROCESS_NOT_FOUND');
  });

  it('POST …/signal takes agent_id in the query or the body; {"signal": 15} as its seed shows', async () => {
    for (const [path, body] of [
      [`/api/v1/processes/1234/signal?agent_id=${deviceId}`, { signal: 15 }],
      ['/api/v1/processes/1234/signal', { signal: 15, agent_id: deviceId }],
      [`/api/v1/processes/1234/signal?agent_id=${deviceId}`, { signal: 'SIGTERM', agent_id: deviceId }],
    ] as const) {
      const res = await api(path, { key: admin, json: body });
      expect(res.status, path).toBe(200);
      expect(await res.json()).toEqual({ pid: 1234, signal: 15, name: 'SIGTERM', process: 'nginx' });
    }
    await expectError(await api(`/api/v1/processes/1/signal?agent_id=${deviceId}`, { key: admin, json: { signal: 9 } }), 403, 'PROCESS_PROTECTED');
  });

  it('a missing, malformed or twice-given agent_id is a 400 naming agent_id; bad pid and signal as natively', async () => {
    const calls = await callsDuring(async () => {
      expect(issuePaths(await expectError(await api('/api/v1/processes/1234', { key: admin }), 400, 'VALIDATION_ERROR'))).toEqual(['agent_id']);
      expect(issuePaths(await expectError(await api('/api/v1/processes/1234?agent_id=../x', { key: admin }), 400, 'VALIDATION_ERROR'))).toEqual(['agent_id']);
      const none = await expectError(await api('/api/v1/processes/1234/signal', { key: admin, json: { signal: 15 } }), 400, 'VALIDATION_ERROR');
      expect(issuePaths(none)).toEqual(['agent_id']);
      expect(none.error).toContain('agent_id');
      const twice = await api(`/api/v1/processes/1234/signal?agent_id=${deviceId}`, { key: admin, json: { signal: 15, agent_id: 'a'.repeat(40) } });
      expect(issuePaths(await expectError(twice, 400, 'VALIDATION_ERROR'))).toEqual(['agent_id']);
      expect(issuePaths(await expectError(await api(`/api/v1/processes/abc?agent_id=${deviceId}`, { key: admin }), 400, 'VALIDATION_ERROR'))).toEqual(['pid']);
      const badSignal = await expectError(await api(`/api/v1/processes/1234/signal?agent_id=${deviceId}`, { key: admin, json: { signal: 31 } }), 400, 'VALIDATION_ERROR');
      expect(issuePaths(badSignal)).toEqual(['signal']);
    });
    expect(calls).toEqual([]);
  });
});

describe('the OpenAPI document', () => {
  it('describes the four routes, the pid parameter and the allow-list', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as any;
    const op = (path: string, method: string) => doc.paths[path]?.[method];
    expect(op('/api/v1/devices/{id}/processes/{pid}', 'get')['x-permissions']).toEqual(['devices:read']);
    expect(op('/api/v1/devices/{id}/processes/{pid}/signal', 'post')['x-permissions']).toEqual(['processes:signal']);
    expect(op('/api/v1/processes/{pid}', 'get')['x-permissions']).toEqual(['devices:read']);
    const tyto = op('/api/v1/processes/{pid}/signal', 'post');
    expect(tyto['x-permissions']).toEqual(['processes:signal']);
    expect(tyto.parameters.find((p: { name: string }) => p.name === 'pid').schema.pattern).toBe('^[0-9]{1,7}$');
    expect(tyto.parameters.find((p: { name: string }) => p.name === 'agent_id').in).toBe('query');
    expect(doc.components.schemas.TytoSignalBody.properties).toHaveProperty('agent_id');
    expect(doc.components.schemas.SignalBody.properties.signal.description).toContain('9 (SIGKILL), 10 (SIGUSR1), 12 (SIGUSR2), 15 (SIGTERM), 18 (SIGCONT), 19 (SIGSTOP)');
    expect(Object.keys(doc.components.schemas.ProcessDetail.properties)).toEqual(['pid', 'ppid', 'name', 'cmdline', 'user', 'state', 'cpu', 'memory', 'threads', 'startTime']);
  });
});
