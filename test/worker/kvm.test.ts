// The native KVM routes for input and status, against a fake agent on a real DeviceHub: each
// route reaches the device with the RPC and parameters it should (a keystroke's modifier codes as
// the report's byte, a hold's lease), and answers with what the device said; who may call them
// (401, 403 without hid:write / screen:read, 404 for another team's device); bodies refused with
// 400 before any RPC reaches the device, a text refused naming its first untypeable character;
// the agent's error codes as statuses; the audit log records type jobs without their text; the
// OpenAPI document and the permission catalogue show the routes.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { enrollDevice, insertDevice } from './device-helpers.ts';
import { HELD_NOTHING, STATUS, job, kvmDevice, makeTeam, userWithPermissions, type FakeKvmAgent, type RpcAnswer } from './kvm-helpers.ts';
import { MODIFIER_BITS } from '../../shared/hid/keycodes.ts';

let admin: string;
let deviceId: string;
let agent: FakeKvmAgent;
/** Set by a test to make the agent answer one method with an error. */
let override: ((method: string, params: Record<string, unknown>) => RpcAnswer | undefined) | null = null;

beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  const d = await kvmDevice(admin, { rpc: (m, p) => override?.(m, p) });
  deviceId = d.deviceId;
  agent = d.agent;
});

const post = (path: string, json: unknown, key = admin) => api(`/api/v1/devices/${deviceId}${path}`, { key, method: 'POST', json });
const get = (path: string, key = admin) => api(`/api/v1/devices/${deviceId}${path}`, { key });

/** Runs `act` and returns the RPCs the device received meanwhile. */
async function rpcsDuring(act: () => Promise<unknown>) {
  const before = agent.calls.length;
  await act();
  return agent.calls.slice(before);
}

describe('keyboard and mouse', () => {
  it('a keystroke sends the code with its modifiers as the report byte and answers the state', async () => {
    const calls = await rpcsDuring(async () => {
      const res = await post('/keystroke', { code: 'Delete', modifiers: ['ControlLeft', 'AltLeft'] });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(HELD_NOTHING);
    });
    expect(calls).toEqual([{ method: 'hid_keystroke', params: { code: 'Delete', modifiers: MODIFIER_BITS.ControlLeft | MODIFIER_BITS.AltLeft } }]);
    expect(MODIFIER_BITS.ControlLeft | MODIFIER_BITS.AltLeft).toBe(0x05);
    // Without modifiers: byte 0.
    const plain = await rpcsDuring(() => post('/keystroke', { code: 'KeyA' }));
    expect(plain[0]!.params).toEqual({ code: 'KeyA', modifiers: 0 });
  });

  it('holds a key with a lease (1 s by default), releases it, and releases everything', async () => {
    const calls = await rpcsDuring(async () => {
      const down = await post('/keys/down', { code: 'ShiftLeft', lease_ms: 5000 });
      expect(down.status).toBe(200);
      expect(await down.json()).toEqual({ held: ['ShiftLeft'], leds: HELD_NOTHING.leds, lease_ms: 5000 });
      const byDefault = await post('/keys/down', { code: 'KeyB' });
      expect(((await byDefault.json()) as { lease_ms: number }).lease_ms).toBe(1000);
      const up = await post('/keys/up', { code: 'ShiftLeft' });
      expect(up.status).toBe(200);
      expect(await up.json()).toEqual(HELD_NOTHING);
      const release = await post('/keys/release', {});
      expect(release.status).toBe(200);
    });
    expect(calls).toEqual([
      { method: 'hid_key', params: { action: 'down', code: 'ShiftLeft', lease_ms: 5000 } },
      { method: 'hid_key', params: { action: 'down', code: 'KeyB', lease_ms: 1000 } },
      { method: 'hid_key', params: { action: 'up', code: 'ShiftLeft' } },
      { method: 'hid_release', params: {} },
    ]);
  });

  it('sends mouse events with their defaults', async () => {
    const calls = await rpcsDuring(async () => {
      const res = await post('/mouse', { x: 0.5, y: 0.75, buttons: 1 });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
      expect((await post('/mouse', { x: 0, y: 1, wheel: -3, hwheel: 2 })).status).toBe(200);
    });
    expect(calls).toEqual([
      { method: 'hid_mouse', params: { x: 0.5, y: 0.75, buttons: 1, wheel: 0, hwheel: 0 } },
      { method: 'hid_mouse', params: { x: 0, y: 1, buttons: 0, wheel: -3, hwheel: 2 } },
    ]);
  });

  it('refuses bad bodies with 400 before any RPC reaches the device', async () => {
    const calls = await rpcsDuring(async () => {
      await expectError(await post('/keystroke', { code: 'NotAKey' }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/keystroke', { code: 'KeyA', modifiers: ['KeyB'] }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/keystroke', { code: 'KeyA', extra: 1 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/keys/down', { code: 'KeyA', lease_ms: 99 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/keys/down', { code: 'KeyA', lease_ms: 60_001 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/keys/up', {}), 400, 'VALIDATION_ERROR');
      await expectError(await post('/mouse', { x: 1.01, y: 0 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/mouse', { x: 0, y: -0.1 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/mouse', { x: 0, y: 0, buttons: 32 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/mouse', { x: 0, y: 0, wheel: 128 }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/mouse', [1, 2]), 400, 'VALIDATION_ERROR');
      await expectError(await post('/type', { text: '', layout: 'en-US' }), 400, 'VALIDATION_ERROR');
      await expectError(await post('/type', { text: 'x', layout: 'en-US', interval_ms: 1001 }), 400, 'VALIDATION_ERROR');
    });
    expect(calls).toEqual([]);
  });
});

describe('typing a text', () => {
  it('starts a type job (202), follows it and cancels it; an unknown job is 404', async () => {
    const calls = await rpcsDuring(async () => {
      const res = await post('/type', { text: 'hello', layout: 'en-US', interval_ms: 5 });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual(job({ total: 5 }));
      const status = await get('/type/job-1');
      expect(status.status).toBe(200);
      expect(await status.json()).toEqual(job({ typed: 2 }));
      const cancel = await api(`/api/v1/devices/${deviceId}/type/job-1`, { key: admin, method: 'DELETE' });
      expect(cancel.status).toBe(200);
      expect(((await cancel.json()) as { state: string }).state).toBe('cancelled');
      await expectError(await get('/type/job-2'), 404, 'UNKNOWN_TYPE_JOB');
      await expectError(await api(`/api/v1/devices/${deviceId}/type/job-2`, { key: admin, method: 'DELETE' }), 404, 'UNKNOWN_TYPE_JOB');
    });
    expect(calls.map((c) => c.method)).toEqual(['hid_type_start', 'hid_type_status', 'hid_type_cancel', 'hid_type_status', 'hid_type_cancel']);
    expect(calls[0]!.params).toEqual({ text: 'hello', layout: 'en-US', interval_ms: 5 });
    await expectError(await get('/type/bad%20id'), 400, 'VALIDATION_ERROR');
  });

  it('refuses a text naming its first untypeable character and its index, an unknown layout, before any device work', async () => {
    const calls = await rpcsDuring(async () => {
      const bad = await expectError(await post('/type', { text: 'ok so far → not this', layout: 'en-US' }), 400, 'UNTYPEABLE_CHARACTER');
      expect(bad.details).toEqual({ index: 10, char: '→', layout: 'en-US' });
      expect(bad.error).toContain('→');
      const unknown = await expectError(await post('/type', { text: 'hi', layout: 'xx-XX' }), 400, 'UNKNOWN_LAYOUT');
      expect(unknown.details).toMatchObject({ layout: 'xx-XX' });
    });
    expect(calls).toEqual([]);
  });

  it('records a type job in the audit log with its layout and length, never its text', async () => {
    const secret = 'hunter2Password';
    const res = await post('/type', { text: secret, layout: 'en-US' });
    expect(res.status).toBe(202);
    const rows = (await env.DB.prepare("SELECT * FROM audit_log WHERE action = 'kvm.type' AND target_id = ?1").bind(deviceId).all<Record<string, unknown>>()).results;
    const row = rows.at(-1)!;
    expect(row).toMatchObject({ target_type: 'device', team_id: 'test-team', credential: 'api_key' });
    expect(JSON.parse(String(row.details))).toEqual({ job: 'job-1', layout: 'en-US', length: secret.length });
    expect(JSON.stringify(rows)).not.toContain(secret);
    // Keystrokes, holds and mouse events are not recorded (a session makes thousands).
    const count = async () => (await env.DB.prepare('SELECT COUNT(*) AS n FROM audit_log').first<{ n: number }>())!.n;
    const before = await count();
    expect((await post('/keystroke', { code: 'KeyA' })).status).toBe(200);
    expect((await post('/keys/down', { code: 'KeyA' })).status).toBe(200);
    expect((await post('/mouse', { x: 0.1, y: 0.2 })).status).toBe(200);
    expect(await count()).toBe(before);
  });
});

describe('the device errors', () => {
  const cases: [string, number, string][] = [
    ['HID_MISSING', 503, 'is the cable connected'],
    ['HID_UNPLUGGED', 503, 'is the cable connected'],
    ['HID_TIMEOUT', 504, 'in time'],
    ['UNKNOWN_KEY', 400, 'agent says'],
    ['TOO_MANY_KEYS', 409, 'agent says'],
    ['TYPE_BUSY', 409, 'agent says'],
    ['UNTYPEABLE_CHARACTER', 400, 'agent says'],
    ['HID_ERROR', 502, 'agent says'],
  ];
  for (const [code, status, says] of cases) {
    it(`maps ${code} to ${status}`, async () => {
      override = () => ({ error: { code, message: 'the agent says no', details: { path: '/dev/hidg0' } } });
      try {
        const err = await expectError(await post('/keystroke', { code: 'KeyA' }), status, code);
        expect(err.error).toContain(says);
        if (status === 503) expect(err.error).toContain('/dev/hidg0');
      } finally {
        override = null;
      }
    });
  }

  it('answers 503 DEVICE_OFFLINE for an approved device with no agent, 409 for one not approved', async () => {
    const offline = await insertDevice({ status: 'approved' });
    await expectError(await api(`/api/v1/devices/${offline}/keystroke`, { key: admin, json: { code: 'KeyA' } }), 503, 'DEVICE_OFFLINE');
    await expectError(await api(`/api/v1/devices/${offline}/kvm`, { key: admin }), 503, 'DEVICE_OFFLINE');
    const pending = await insertDevice({ status: 'pending' });
    await expectError(await api(`/api/v1/devices/${pending}/mouse`, { key: admin, json: { x: 0, y: 0 } }), 409, 'DEVICE_NOT_APPROVED');
  });
});

describe('status and layouts', () => {
  it('reads the KVM status with screen:read', async () => {
    const res = await get('/kvm');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(STATUS);
  });

  it('lists the layouts to any signed-in caller', async () => {
    const viewer = (await userWithKey(['viewer'])).key;
    const res = await api('/api/v1/kvm/layouts', { key: viewer });
    expect(res.status).toBe(200);
    const { layouts } = (await res.json()) as { layouts: { id: string; name: string }[] };
    expect(layouts.map((l) => l.id)).toContain('en-US');
    await expectError(await api('/api/v1/kvm/layouts'), 401, 'UNAUTHORIZED');
  });
});

describe('who may use the KVM', () => {
  it('401 without a credential, 403 without hid:write or screen:read, and no RPC reaches the device', async () => {
    const viewer = (await userWithKey(['viewer'])).key;
    const screenOnly = (await userWithPermissions(['devices:read', 'screen:read'])).key;
    const hidOnly = (await userWithPermissions(['devices:read', 'hid:write'])).key;
    const calls = await rpcsDuring(async () => {
      await expectError(await post('/keystroke', { code: 'KeyA' }, ''), 401, 'UNAUTHORIZED');
      await expectError(await get('/kvm', ''), 401, 'UNAUTHORIZED');
      for (const key of [viewer, screenOnly]) {
        await expectError(await post('/keystroke', { code: 'KeyA' }, key), 403, 'FORBIDDEN');
        await expectError(await post('/keys/down', { code: 'KeyA' }, key), 403, 'FORBIDDEN');
        await expectError(await post('/mouse', { x: 0, y: 0 }, key), 403, 'FORBIDDEN');
        await expectError(await post('/type', { text: 'x', layout: 'en-US' }, key), 403, 'FORBIDDEN');
      }
      await expectError(await get('/kvm', viewer), 403, 'FORBIDDEN');
      await expectError(await get('/kvm', hidOnly), 403, 'FORBIDDEN');
    });
    expect(calls).toEqual([]);
    expect((await post('/keystroke', { code: 'KeyA' }, hidOnly)).status).toBe(200);
    expect((await get('/kvm', screenOnly)).status).toBe(200);
  });

  it('an API key narrowed without hid:write cannot type, though its owner can', async () => {
    const made = await api('/api/v1/api-keys', { key: admin, json: { name: 'screen only', permissions: ['devices:read', 'screen:read'] } });
    expect(made.status).toBe(201);
    const narrowed = ((await made.json()) as { key: string }).key;
    const calls = await rpcsDuring(async () => {
      await expectError(await post('/type', { text: 'rm -rf /', layout: 'en-US' }, narrowed), 403, 'FORBIDDEN');
      await expectError(await post('/keystroke', { code: 'Enter' }, narrowed), 403, 'FORBIDDEN');
    });
    expect(calls).toEqual([]);
    expect((await get('/kvm', narrowed)).status).toBe(200);
  });

  it("a user of another team gets 404 for this team's device, whatever they send", async () => {
    await makeTeam('team-other');
    const outsider = (await userWithPermissions(['devices:read', 'hid:write', 'screen:read'], 'team-other', 'owner')).key;
    const calls = await rpcsDuring(async () => {
      await expectError(await post('/keystroke', { code: 'KeyA' }, outsider), 404, 'NOT_FOUND');
      await expectError(await post('/keystroke', { code: 'NotAKey' }, outsider), 404, 'NOT_FOUND');
      await expectError(await post('/type', { text: 'x', layout: 'en-US' }, outsider), 404, 'NOT_FOUND');
      await expectError(await get('/type/job-1', outsider), 404, 'NOT_FOUND');
      await expectError(await get('/kvm', outsider), 404, 'NOT_FOUND');
      await expectError(await post('/keys/release', {}, outsider), 404, 'NOT_FOUND');
    });
    expect(calls).toEqual([]);
    // Their own team's device is theirs to drive.
    const theirs = await enrollDevice(admin, { autoApprove: true });
    await api(`/api/v1/devices/${theirs.deviceId}/move`, { key: admin, json: { team_id: 'team-other' } });
    await expectError(await api(`/api/v1/devices/${theirs.deviceId}/keystroke`, { key: outsider, json: { code: 'KeyA' } }), 503, 'DEVICE_OFFLINE');
  });
});

describe('the API document', () => {
  it('lists every KVM route with a summary and its permission, and the catalogue describes hid:write and screen:read', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, { summary?: string; 'x-permissions'?: string[]; responses: Record<string, unknown> }>> };
    const expected: [string, string, string[]][] = [
      ['post', '/api/v1/devices/{id}/keystroke', ['hid:write']],
      ['post', '/api/v1/devices/{id}/keys/down', ['hid:write']],
      ['post', '/api/v1/devices/{id}/keys/up', ['hid:write']],
      ['post', '/api/v1/devices/{id}/keys/release', ['hid:write']],
      ['post', '/api/v1/devices/{id}/mouse', ['hid:write']],
      ['post', '/api/v1/devices/{id}/type', ['hid:write']],
      ['get', '/api/v1/devices/{id}/type/{job}', ['hid:write']],
      ['delete', '/api/v1/devices/{id}/type/{job}', ['hid:write']],
      ['get', '/api/v1/devices/{id}/hid', ['hid:write']],
      ['get', '/api/v1/devices/{id}/kvm', ['screen:read']],
      ['get', '/api/v1/devices/{id}/screenshot', ['screen:read']],
      ['get', '/api/v1/devices/{id}/screen/live', ['screen:read']],
      ['get', '/api/v1/kvm/layouts', []],
    ];
    for (const [method, path, permissions] of expected) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op!.summary!.length, `${path} summary`).toBeGreaterThan(10);
      expect(op!['x-permissions'], path).toEqual(permissions);
      expect(Object.keys(op!.responses).some((s) => s.startsWith('2') || s === '101'), `${path} success response`).toBe(true);
    }
    const catalogue = (await (await api('/api/v1/permissions', { key: admin })).json()) as { permissions: { permission: string; description: string }[] };
    const hid = catalogue.permissions.find((p) => p.permission === 'hid:write');
    const screen = catalogue.permissions.find((p) => p.permission === 'screen:read');
    expect(hid?.description).toContain('Press a key and release it');
    expect(screen?.description).toContain('screenshot');
  });
});
