// The audit log end to end: one of every kind of change the issue lists (users, roles, teams,
// memberships, invitations, variables, API keys, enrollment tokens, devices, tunnels, TinyPilot keys,
// logins, failed logins, 2FA, KVM type jobs and live input, terminals opened, handed over and closed, processes signalled and refused, alert rules and acknowledged alerts) made through the API, after which every action name of the catalogue is
// in the log, each with who, when, from where and the team — and no secret made along the way
// (passwords, keys, tokens, a variable's value, the TOTP secret, recovery codes, a typed text) is anywhere in it.
import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { timeStep, totpCode } from '../../worker/auth/totp.ts';
import { BASE, TEST_TEAM, api, userWithKey } from './helpers.ts';
import { kvmDevice } from './kvm-helpers.ts';
import { terminalDevice, tokenOf, viewer } from './terminal-helpers.ts';
import { freshIp, login, userWithPassword } from './auth-helpers.ts';
import { eventually, facts, keyPair } from './device-helpers.ts';

const CATALOGUE = [
  'login', 'login.failed', 'logout', 'password.change', 'password.reset',
  'user.create', 'user.update', 'user.disable',
  'role.create', 'role.update', 'role.delete',
  'api_key.create', 'api_key.revoke',
  '2fa.enrol', '2fa.enable', '2fa.disable', '2fa.reset', '2fa.recovery_used', '2fa.recovery_regenerate', '2fa.failed',
  'enrollment_token.create', 'enrollment_token.revoke',
  'device.enroll', 'device.create', 'device.rename', 'device.approve', 'device.reject', 'device.revoke', 'device.delete', 'device.move', 'device.tags',
  'tunnel.create', 'tunnel.update', 'tunnel.delete',
  'kvm.type', 'kvm.input',
  'terminal.open', 'terminal.handover', 'terminal.close',
  'process.signal', 'process.signal_refused',
  'tinypilot_key.create', 'tinypilot_key.revoke',
  'team.create', 'team.update', 'team.delete',
  'member.add', 'member.update', 'member.remove',
  'invitation.create', 'invitation.revoke', 'invitation.accept',
  'variable.create', 'variable.update', 'variable.delete', 'variables.reseal',
  'settings.refresh',
  'alert_rule.create', 'alert_rule.update', 'alert_rule.delete', 'alert.acknowledge',
];

/** Every secret the scenario handles; none may appear in the audit log. */
const secrets: string[] = [];

async function ok(what: string, res: Response | Promise<Response>, status = [200, 201, 204]): Promise<any> {
  const r = await res;
  const text = await r.text();
  expect(status, `${what}: ${r.status} ${text}`).toContain(r.status);
  return text ? JSON.parse(text) : null;
}

describe('the audit log', () => {
  it('records each kind of change with who, when, where and the team, and never a secret value', async () => {
    const admin = await userWithKey(['admin']);
    secrets.push(admin.key);
    const as = (key: string, path: string, opts: { method?: string; json?: unknown } = {}) => api(path, { key, headers: { 'cf-connecting-ip': '203.0.113.77' }, ...opts });
    const A = (path: string, opts: { method?: string; json?: unknown } = {}) => as(admin.key, path, opts);

    // Logins, a failed one, a password change, logout.
    const person = await userWithPassword(['operator']);
    secrets.push(person.password);
    await ok('failed login', login(person.username, 'not-the-password-123', freshIp()), [401]);
    const session = (await ok('login', login(person.username, person.password, freshIp()))).token as string;
    secrets.push(session);
    const newPassword = `pw-${randomId(8)}-new`;
    secrets.push(newPassword);
    await ok('password change', as(session, '/api/v1/auth/me/password', { method: 'PUT', json: { current_password: person.password, new_password: newPassword } }));

    // Two-factor login: enrol, confirm, a wrong code, new recovery codes, an admin's reset, and off with a recovery code.
    const { secret } = await ok('enrol', as(session, '/api/v1/auth/2fa/enrol', { method: 'POST', json: {} }));
    secrets.push(secret);
    const code = (d = 0) => totpCode(secret, timeStep(Date.now()) + d);
    await ok('confirm', as(session, '/api/v1/auth/2fa/confirm', { method: 'POST', json: { code: await code(-1) } }));
    await ok('wrong code', as(session, '/api/v1/auth/2fa/recovery-codes', { method: 'POST', json: { code: '000000' === (await code()) ? '111111' : '000000' } }), [403]);
    const { recovery_codes } = await ok('regenerate', as(session, '/api/v1/auth/2fa/recovery-codes', { method: 'POST', json: { code: await code(0) } }));
    secrets.push(...recovery_codes);
    await ok('reset by an admin', A(`/api/v1/users/${person.userId}/2fa`, { method: 'DELETE' }));
    const again = (await ok('enrol again', as(session, '/api/v1/auth/2fa/enrol', { method: 'POST', json: {} }))).secret as string;
    secrets.push(again);
    const codes2 = (await ok('confirm again', as(session, '/api/v1/auth/2fa/confirm', { method: 'POST', json: { code: await totpCode(again, timeStep(Date.now())) } }))).recovery_codes as string[];
    secrets.push(...codes2);
    await ok('disable with a recovery code', as(session, '/api/v1/auth/2fa/disable', { method: 'POST', json: { code: codes2[0] } }));
    await ok('logout', as(session, '/api/v1/auth/logout', { method: 'POST' }));

    // Users, roles, API keys.
    const userPassword = `pw-${randomId(8)}-user`;
    secrets.push(userPassword);
    const user = await ok('user.create', A('/api/v1/users', { json: { username: `cat-${randomId(3)}`, password: userPassword, roles: ['operator'] } }));
    await ok('user.update', A(`/api/v1/users/${user.id}`, { method: 'PUT', json: { name: 'Catalogue User' } }));
    const reset = `pw-${randomId(8)}-reset`;
    secrets.push(reset);
    await ok('password.reset', A(`/api/v1/users/${user.id}/password`, { method: 'PUT', json: { new_password: reset } }));
    const role = await ok('role.create', A('/api/v1/roles', { json: { name: `cat-role-${randomId(3)}`, permissions: ['devices:read'] } }));
    await ok('role.update', A(`/api/v1/roles/${role.id}`, { method: 'PUT', json: { description: 'changed' } }));
    await ok('role.delete', A(`/api/v1/roles/${role.id}`, { method: 'DELETE' }));
    const key = await ok('api_key.create', A('/api/v1/api-keys', { json: { name: 'catalogue' } }));
    secrets.push(key.key);
    await ok('api_key.revoke', A(`/api/v1/api-keys/${key.id}`, { method: 'DELETE' }));

    // A team with members and invitations; moves go into it.
    const team = await ok('team.create', A('/api/v1/teams', { json: { name: `Catalogue ${randomId(3)}` } }));
    await ok('team.update', A(`/api/v1/teams/${team.id}`, { method: 'PATCH', json: { name: `Catalogue ${randomId(3)}` } }));
    await ok('member.add', A(`/api/v1/teams/${team.id}/members`, { json: { user_id: user.id, role: 'member' } }));
    await ok('member.update', A(`/api/v1/teams/${team.id}/members/${user.id}`, { method: 'PATCH', json: { role: 'admin' } }));
    await ok('member.remove', A(`/api/v1/teams/${team.id}/members/${user.id}`, { method: 'DELETE' }));
    const invited = await userWithKey(['viewer'], `inv-${randomId(3)}`, null);
    secrets.push(invited.key);
    const inv1 = await ok('invitation.create', A(`/api/v1/teams/${team.id}/invitations`, { json: { invitee: invited.username, role: 'member' } }));
    secrets.push(inv1.token);
    await ok('invitation.revoke', A(`/api/v1/teams/${team.id}/invitations/${inv1.id}`, { method: 'DELETE' }));
    const inv2 = await ok('invitation.create', A(`/api/v1/teams/${team.id}/invitations`, { json: { invitee: invited.username, role: 'member' } }));
    secrets.push(inv2.token);
    await ok('invitation.accept', as(invited.key, '/api/v1/invitations/accept', { method: 'POST', json: { token: inv2.token } }));

    // Enrollment tokens and devices: enroll two, approve one, reject the other, and the rest of a device's life.
    const token = await ok('enrollment_token.create', A('/api/v1/enrollment-tokens', { json: { name: 'catalogue', team_id: TEST_TEAM } }));
    secrets.push(token.token);
    const enroll = async () => {
      const keys = await keyPair();
      return (await ok('enroll', api('/api/v1/enroll', { json: { token: token.token, public_key: keys.publicJwk, facts: facts(), agent_version: '0.1.0' } }))).device_id as string;
    };
    const one = await enroll();
    const two = await enroll();
    await ok('enrollment_token.revoke', A(`/api/v1/enrollment-tokens/${token.id}`, { method: 'DELETE' }));
    await ok('device.approve', A(`/api/v1/devices/${one}/approve`, { method: 'POST' }));
    await ok('device.reject', A(`/api/v1/devices/${two}/reject`, { method: 'POST' }));
    await ok('device.rename', A(`/api/v1/devices/${one}`, { method: 'PATCH', json: { name: 'catalogue-pi' } }));
    await ok('device.tags', A(`/api/v1/devices/${one}/tags`, { method: 'PUT', json: { tags: [{ name: 'prod', color: '#38bdf8' }] } }));
    const added = await ok('device.create', A('/api/v1/agents', { json: { id: `cat-${randomId(4)}`, team_id: TEST_TEAM } }));
    secrets.push(added.enrollment_token);

    // KVM: a type job (recorded with its layout and length, never the text) and live input opened.
    // The same fake device answers process signals: one sent, one the agent refuses.
    const kvm = await kvmDevice(admin.key, {
      onOpen: (s) => s.accept({}),
      rpc: (method, p) =>
        method !== 'process_signal'
          ? undefined
          : p.pid === 1
            ? { error: { code: 'PROCESS_PROTECTED', message: 'process 1 is init (pid 1): the agent will not signal it', details: { pid: 1, reason: 'init' } } }
            : { result: { pid: p.pid, signal: p.signal, name: 'SIGTERM', process: 'sleep' } },
    });
    const typed = `typed-secret-${randomId(6)}`;
    secrets.push(typed);
    await ok('kvm.type', A(`/api/v1/devices/${kvm.deviceId}/type`, { json: { text: typed, layout: 'en-US' } }), [202]);
    const input = await SELF.fetch(`${BASE}/api/v1/devices/${kvm.deviceId}/hid`, { headers: { upgrade: 'websocket', authorization: `Bearer ${admin.key}` } });
    expect(input.status).toBe(101);
    input.webSocket!.accept();
    input.webSocket!.close(1000);
    await ok('process.signal', A(`/api/v1/devices/${kvm.deviceId}/processes/4242/signal`, { json: { signal: 15 } }));
    await ok('process.signal_refused', A(`/api/v1/devices/${kvm.deviceId}/processes/1/signal`, { json: { signal: 15 } }), [403]);

    // A terminal: a link (its token is a secret), typing handed over on its socket (the hub records
    // that), the session closed.
    const term = await terminalDevice(admin.key);
    const link = await ok('terminal.open', A(`/api/v1/devices/${term.deviceId}/terminal`));
    secrets.push(tokenOf(link.terminal_url));
    const tv = await viewer(term.deviceId, tokenOf(link.terminal_url));
    const attached = await tv.ready();
    secrets.push(attached.resume);
    tv.send({ t: 'handover', to: attached.viewer });
    await eventually(async () => !!(await env.DB.prepare("SELECT 1 FROM audit_log WHERE action = 'terminal.handover'").first()), 'the handover recorded');
    tv.ws.close(1000);
    await ok('terminal.close', A(`/api/v1/devices/${term.deviceId}/terminal/sessions/${attached.session}`, { method: 'DELETE' }));

    // A tunnel, changed natively and through tunnel-control, then deleted.
    const tunnelPassword = `tunnel-${randomId(6)}`;
    secrets.push(tunnelPassword);
    const tunnel = await ok('tunnel.create', A(`/api/v1/devices/${one}/tunnels`, { json: { name: `cat-${randomId(3)}`, target: '127.0.0.1:8080', allow_clientless: true } }));
    await ok('tunnel.update', A(`/api/v1/devices/${one}/tunnels/${tunnel.id}`, { method: 'PATCH', json: { access: { mode: 'basic', username: 'u', password: tunnelPassword } } }));
    await ok('tunnel-control', api(`/tunnel-api/disconnect?device_id=${one}&tunnel=${tunnel.name}&api_key=${admin.key}`));
    await ok('tunnel.delete', A(`/api/v1/devices/${one}/tunnels/${tunnel.id}`, { method: 'DELETE' }));

    // A TinyPilot key, made (its key and base URL are secrets) and revoked.
    const tinypilot = await ok('tinypilot_key.create', A(`/api/v1/devices/${one}/tinypilot-keys`, { json: { name: 'catalogue' } }));
    secrets.push(tinypilot.key);
    await ok('tinypilot_key.revoke', A(`/api/v1/devices/${one}/tinypilot-keys/${tinypilot.id}`, { method: 'DELETE' }));

    // Variables, one a secret; then a reseal.
    const value = `s3cret-${randomId(8)}`;
    secrets.push(value);
    await ok('variable.create', A(`/api/v1/teams/${TEST_TEAM}/variables/DB_PASSWORD`, { method: 'PUT', json: { value, secret: true } }));
    const value2 = `s3cret-${randomId(8)}`;
    secrets.push(value2);
    await ok('variable.update', A(`/api/v1/teams/${TEST_TEAM}/variables/DB_PASSWORD`, { method: 'PUT', json: { value: value2 } }));
    await ok('variable.delete', A(`/api/v1/teams/${TEST_TEAM}/variables/DB_PASSWORD`, { method: 'DELETE' }));
    await ok('variables.reseal', A('/api/v1/admin/reseal', { method: 'POST' }));

    await ok('settings.refresh', A('/api/v1/settings/refresh', { json: { interval: 10 } }));
    // An alert rule (its webhook URL is a secret), changed and deleted; an alert of the device acknowledged.
    const hookSecret = `hook-${randomId(8)}`;
    secrets.push(hookSecret);
    const rule = await ok('alert_rule.create', A('/api/v1/alert-rules', { json: { name: 'cpu', metric: 'cpu', warning: 90, team_id: TEST_TEAM, channels: [{ type: 'webhook', url: `https://hooks.example.com/${hookSecret}` }] } }));
    await ok('alert_rule.update', A(`/api/v1/alert-rules/${rule.id}`, { method: 'PATCH', json: { warning: 80 } }));
    const alertId = crypto.randomUUID();
    await env.DB.prepare(`INSERT INTO alerts (id, rule_id, device_id, team_id, metric, level, message, cause, state, created_at) VALUES (?1, ?2, ?3, ?4, 'cpu', 'warning', 'CPU', '{}', 'firing', ?5)`)
      .bind(alertId, rule.id, one, TEST_TEAM, Date.now())
      .run();
    await ok('alert.acknowledge', A(`/api/v1/alerts/${alertId}/acknowledge`, { method: 'POST' }));
    await ok('alert_rule.delete', A(`/api/v1/alert-rules/${rule.id}`, { method: 'DELETE' }));

    // The ends of things.
    await ok('device.move', A(`/api/v1/devices/${one}/move`, { method: 'POST', json: { team_id: team.id } }));
    await ok('device.revoke', A(`/api/v1/devices/${one}/revoke`, { method: 'POST' }));
    await ok('device.delete', A(`/api/v1/devices/${one}`, { method: 'DELETE' }));
    await ok('user.disable', A(`/api/v1/users/${user.id}`, { method: 'DELETE' }));
    await ok('team.delete', A(`/api/v1/teams/${team.id}`, { method: 'DELETE' }));

    const rows = (await env.DB.prepare('SELECT * FROM audit_log ORDER BY id').all<Record<string, unknown>>()).results;
    const actions = new Set(rows.map((r) => r.action));
    expect(CATALOGUE.filter((a) => !actions.has(a)), 'actions never recorded').toEqual([]);
    expect([...actions].filter((a) => !CATALOGUE.includes(a as string)), 'actions outside the catalogue').toEqual([]);

    for (const r of rows) {
      expect(typeof r.at === 'number' && r.at > 0, `${r.action}: at`).toBe(true);
      expect(['session', 'api_key', 'none'], `${r.action}: credential`).toContain(r.credential);
      expect(String(r.ip), `${r.action}: ip`).not.toBe('');
    }
    // The admin's changes name the admin and the key they used, from the address they came from.
    const byAdmin = rows.filter((r) => r.action === 'role.create')[0]!;
    expect([byAdmin.actor_id, byAdmin.credential, byAdmin.ip]).toEqual([admin.userId, 'api_key', '203.0.113.77']);
    // What belongs to a team says which.
    for (const a of ['device.approve', 'device.rename', 'tunnel.create', 'variable.create', 'enrollment_token.create', 'tinypilot_key.create', 'tinypilot_key.revoke']) {
      expect(rows.find((r) => r.action === a)?.team_id, a).toBe(TEST_TEAM);
    }
    for (const a of ['team.update', 'member.add', 'invitation.accept', 'team.delete']) expect(rows.find((r) => r.action === a)?.team_id, a).toBe(team.id);
    const variable = rows.find((r) => r.action === 'variable.create')!;
    expect(JSON.parse(String(variable.details))).toMatchObject({ name: 'DB_PASSWORD', level: 'team', secret: true });

    const dump = JSON.stringify(rows);
    for (const s of secrets) {
      expect(dump.includes(s), `a secret (${s.slice(0, 4)}…) is in the audit log`).toBe(false);
      // Nor the part after a recognisable prefix (prk_, pre_, pri_ …).
      if (/^[a-z]{3}_/.test(s)) expect(dump.includes(s.slice(4)), `a secret's body (${s.slice(0, 4)}…) is in the audit log`).toBe(false);
    }
    // A long scenario (two password hashes, a dozen devices and sockets): on a loaded machine it takes
    // longer than the default 5 s.
  }, 30_000);
});
