// Team scope on every device-touching route: a user of team B meets team A's devices, tunnels and
// enrollment tokens nowhere (native, Tyto, PiTunnel, tunnel-control, tunnel ingress) and gets the
// answer an unknown id gets, never a 403 and never the device's data; in team A a member may not
// use "<resource>:admin" permissions, an admin may; a team that requires two-factor login admits
// only members who have it; an instance admin sees everything; a device moves between teams only
// for someone who administers both; tags are validated. The device or team is checked before the
// body, so a malformed body tells an outsider nothing either.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomId, randomToken, sha256Hex } from '../../worker/auth/crypto.ts';
import { API_KEY_PREFIX } from '../../worker/auth/principal.ts';
import { api, BASE, joinTeam, userWithKey } from './helpers.ts';
import { createToken, facts, insertDevice, keyPair } from './device-helpers.ts';
import { makeTunnel, tunnelName, visit, type TunnelView } from './tunnels-helpers.ts';

const TEAM_A = 'team-a';
const TEAM_B = 'team-b';
/** Requires two-factor login of its members. */
const TEAM_C = 'team-c';

async function team(id: string, require2fa = false) {
  await env.DB.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?2, ?3, 0, 0)').bind(id, `Team ${id}`, require2fa ? 1 : 0).run();
}

/** An operator (or `roles`) with these team roles; in no team but these. */
async function person(memberships: Record<string, 'owner' | 'admin' | 'member'>, roles = ['operator']) {
  const u = await userWithKey(roles, undefined, null);
  for (const [t, role] of Object.entries(memberships)) await joinTeam(u.userId, roles, t, role);
  return u;
}

/** Another API key of an existing user (a fresh credential is resolved anew, not from the principal cache). */
async function keyFor(userId: string) {
  const key = randomToken(API_KEY_PREFIX);
  await env.DB.prepare('INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)')
    .bind(randomId(8), userId, 'second', key.slice(0, 8), await sha256Hex(key), Date.now())
    .run();
  return key;
}

let aAdmin: string;
let aMember: string;
let bAdmin: string;
let bMember: string;
let instanceAdmin: string;
let bothAdmin: string;
let viewerA: string;
/** Team A's devices: approved, pending. */
let devA: string;
let pendingA: string;
let devB: string;
const NAME_A = 'secret-name-of-team-a';

beforeAll(async () => {
  await team(TEAM_A);
  await team(TEAM_B);
  await team(TEAM_C, true);
  aAdmin = (await person({ [TEAM_A]: 'admin' })).key;
  aMember = (await person({ [TEAM_A]: 'member' })).key;
  bAdmin = (await person({ [TEAM_B]: 'owner' })).key;
  bMember = (await person({ [TEAM_B]: 'member' })).key;
  instanceAdmin = (await person({}, ['admin'])).key;
  bothAdmin = (await person({ [TEAM_A]: 'admin', [TEAM_B]: 'admin' })).key;
  viewerA = (await person({ [TEAM_A]: 'member' }, ['viewer'])).key;
  devA = await insertDevice({ team: TEAM_A, name: NAME_A, hostname: 'host-of-team-a' });
  pendingA = await insertDevice({ team: TEAM_A, status: 'pending', name: `${NAME_A}-pending` });
  devB = await insertDevice({ team: TEAM_B });
});

const UNKNOWN = 'f'.repeat(40);
const status = async (id: string) => (await env.DB.prepare('SELECT status FROM devices WHERE id = ?1').bind(id).first<{ status: string }>())?.status;

/** The answer must be the one an unknown device gets: 404 NOT_FOUND, nothing of the device in it. */
async function expectHidden(res: Response, what: string, id = devA) {
  const text = await res.text();
  expect(res.status, `${what}: ${text}`).toBe(404);
  expect(JSON.parse(text), what).toEqual({ error: 'Device not found', code: 'NOT_FOUND', details: { device_id: id } });
  expect(text, what).not.toContain(NAME_A);
}

const ids = (list: { id: string }[]) => list.map((d) => d.id);

describe('a user of another team', () => {
  it('does not see team A in the native devices API: 404 like an unknown id, never 403', async () => {
    const list = (await (await api('/api/v1/devices', { key: bAdmin })).json()) as { devices: { id: string }[] };
    expect(ids(list.devices)).toContain(devB);
    expect(ids(list.devices)).not.toContain(devA);
    expect(ids(list.devices)).not.toContain(pendingA);
    // Asking for team A by id yields nothing, exactly as a made-up team does.
    for (const t of [TEAM_A, 'no-such-team']) {
      const res = await api(`/api/v1/devices?team_id=${t}`, { key: bAdmin });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ devices: [] });
    }
    expect(ids(((await (await api(`/api/v1/devices?team_id=${TEAM_B}`, { key: bAdmin })).json()) as { devices: { id: string }[] }).devices)).toEqual([devB]);

    // The unknown id's answer, for comparison.
    await expectHidden(await api(`/api/v1/devices/${UNKNOWN}`, { key: bAdmin }), 'unknown', UNKNOWN);
    await expectHidden(await api(`/api/v1/devices/${devA}`, { key: bAdmin }), 'get');
    await expectHidden(await api(`/api/v1/devices/${devA}`, { key: bAdmin, method: 'PATCH', json: { name: 'taken over' } }), 'rename');
    await expectHidden(await api(`/api/v1/devices/${devA}/info`, { key: bAdmin }), 'info');
    await expectHidden(await api(`/api/v1/devices/${devA}/processes`, { key: bAdmin }), 'processes');
    await expectHidden(await api(`/api/v1/devices/${devA}/tags`, { key: bAdmin, method: 'PUT', json: { tags: [{ name: 'mine', color: '#000000' }] } }), 'tags');
    await expectHidden(await api(`/api/v1/devices/${devA}/move`, { key: bAdmin, json: { team_id: TEAM_B } }), 'move');
    for (const action of ['approve', 'reject', 'revoke']) {
      await expectHidden(await api(`/api/v1/devices/${pendingA}/${action}`, { key: bAdmin, method: 'POST' }), action, pendingA);
    }
    await expectHidden(await api(`/api/v1/devices/${devA}`, { key: bAdmin, method: 'DELETE' }), 'delete');

    const row = await env.DB.prepare('SELECT name, team_id, status FROM devices WHERE id = ?1').bind(devA).first();
    expect(row).toEqual({ name: NAME_A, team_id: TEAM_A, status: 'approved' });
    expect(await status(pendingA)).toBe('pending');
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM device_tags WHERE device_id = ?1').bind(devA).first('n')).toBe(0);
  });

  it("does not see team A in Tyto's agents API", async () => {
    const all = (await (await api('/api/v1/agents', { key: bAdmin })).json()) as { agents: { id: string }[] };
    expect(ids(all.agents)).toContain(devB);
    expect(ids(all.agents)).not.toContain(devA);
    const pending = (await (await api('/api/v1/agents/pending', { key: bAdmin })).json()) as { agents: { id: string }[] };
    expect(ids(pending.agents)).not.toContain(pendingA);
    await expectHidden(await api(`/api/v1/agents/${devA}`, { key: bAdmin }), 'agent');
    await expectHidden(await api(`/api/v1/agents/pending/${pendingA}/approve`, { key: bAdmin, method: 'POST' }), 'approve', pendingA);
    await expectHidden(await api(`/api/v1/agents/pending/${pendingA}/reject`, { key: bAdmin, method: 'POST' }), 'reject', pendingA);
    await expectHidden(await api(`/api/v1/agents/${devA}/revoke`, { key: bAdmin, method: 'POST' }), 'revoke');
    await expectHidden(await api(`/api/v1/agents/${devA}`, { key: bAdmin, method: 'DELETE' }), 'delete');
    expect(await status(devA)).toBe('approved');
    expect(await status(pendingA)).toBe('pending');
  });

  it("neither lists nor revokes team A's enrollment tokens, nor makes one for team A", async () => {
    await createToken(aAdmin, { team_id: TEAM_A, name: 'team a token' });
    const aList = (await (await api('/api/v1/enrollment-tokens', { key: aAdmin })).json()) as { enrollment_tokens: { id: string; team_id: string; state: string }[] };
    const token = aList.enrollment_tokens.find((t) => t.team_id === TEAM_A)!;
    expect(aList.enrollment_tokens.every((t) => t.team_id === TEAM_A)).toBe(true);

    const bList = (await (await api('/api/v1/enrollment-tokens', { key: bAdmin })).json()) as { enrollment_tokens: { id: string }[] };
    expect(ids(bList.enrollment_tokens)).not.toContain(token.id);
    const revoke = await api(`/api/v1/enrollment-tokens/${token.id}`, { key: bAdmin, method: 'DELETE' });
    expect(revoke.status).toBe(404);
    expect(await revoke.json()).toEqual({ error: 'Enrollment token not found', code: 'NOT_FOUND', details: { id: token.id } });
    const made = await api('/api/v1/enrollment-tokens', { key: bAdmin, json: { team_id: TEAM_A } });
    expect(made.status).toBe(404);
    expect(await made.json()).toMatchObject({ code: 'NOT_FOUND', details: { team_id: TEAM_A } });

    // Team A's plain member is told they lack the role, and does not see the token either.
    const byMember = await api(`/api/v1/enrollment-tokens/${token.id}`, { key: aMember, method: 'DELETE' });
    expect(byMember.status).toBe(403);
    expect(await byMember.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED' });
    expect(await api('/api/v1/enrollment-tokens', { key: aMember }).then((r) => r.json())).toEqual({ enrollment_tokens: [] });
    expect(await env.DB.prepare('SELECT revoked_at FROM enrollment_tokens WHERE id = ?1').bind(token.id).first('revoked_at')).toBeNull();

    // Team A's admin revokes it.
    expect((await api(`/api/v1/enrollment-tokens/${token.id}`, { key: aAdmin, method: 'DELETE' })).status).toBe(200);
  });

  it("reaches none of team A's tunnels, by device, id, name or port", async () => {
    const tcp = await makeTunnel(aMember, devA, { name: tunnelName('a-tcp'), kind: 'tcp', target: '127.0.0.1:2222' });
    const http = await makeTunnel(aMember, devA, { name: tunnelName('a-http') });
    const own = await makeTunnel(bMember, devB, { name: tunnelName('b-http') });

    const listed = (await (await api('/api/v1/tunnels', { key: bMember })).json()) as { tunnels: TunnelView[] };
    expect(ids(listed.tunnels)).toContain(own.id);
    expect(ids(listed.tunnels)).not.toContain(tcp.id);
    expect(ids(listed.tunnels)).not.toContain(http.id);
    const aListed = (await (await api('/api/v1/tunnels', { key: aMember })).json()) as { tunnels: TunnelView[] };
    expect(ids(aListed.tunnels)).toEqual(expect.arrayContaining([tcp.id, http.id]));
    expect(ids(aListed.tunnels)).not.toContain(own.id);

    await expectHidden(await api(`/api/v1/devices/${devA}/tunnels`, { key: bMember }), 'list');
    await expectHidden(await api(`/api/v1/devices/${devA}/tunnels`, { key: bMember, json: { name: tunnelName('b-in-a'), target: '127.0.0.1:80' } }), 'create');
    for (const ref of [http.id, http.name]) {
      await expectHidden(await api(`/api/v1/devices/${devA}/tunnels/${ref}`, { key: bMember }), `get ${ref}`);
      await expectHidden(await api(`/api/v1/devices/${devA}/tunnels/${ref}`, { key: bMember, method: 'PATCH', json: { enabled: false } }), `patch ${ref}`);
      await expectHidden(await api(`/api/v1/devices/${devA}/tunnels/${ref}`, { key: bMember, method: 'DELETE' }), `delete ${ref}`);
    }
    // Naming team A's tunnel through team B's own device finds nothing either.
    expect((await api(`/api/v1/devices/${devB}/tunnels/${http.id}`, { key: bMember })).status).toBe(404);
    expect(await env.DB.prepare('SELECT enabled FROM tunnels WHERE id = ?1').bind(http.id).first('enabled')).toBe(1);

    // The TCP endpoints: another team's tunnel is "not found" like a made-up name; team A's member gets as far as the upgrade.
    const byName = await api(`/api/v1/tunnels/${tcp.name}/connect`, { key: bMember });
    expect(byName.status).toBe(404);
    expect(await byName.json()).toEqual({ error: 'Tunnel not found', code: 'NOT_FOUND', details: { tunnel: tcp.name } });
    expect(await (await api(`/api/v1/tunnels/${tcp.name}/connect`, { key: aMember })).json()).toMatchObject({ code: 'UPGRADE_REQUIRED' });
    expect(await (await api(`/api/v1/tunnels/${tcp.name}/connect?api_key=${bMember}`)).json()).toMatchObject({ code: 'NOT_FOUND' });
    for (const device of [devA, NAME_A]) {
      const byPort = await api(`/api/v1/devices/${device}/tcp/2222/connect`, { key: bMember });
      expect(byPort.status, device).toBe(404);
      expect(await byPort.json()).toEqual({ error: 'Device not found', code: 'NOT_FOUND', details: { device: device } });
      expect(await (await api(`/api/v1/devices/${device}/tcp/2222/connect`, { key: aMember })).json(), device).toMatchObject({ code: 'UPGRADE_REQUIRED' });
    }
  });

  it("another team's namesake device neither matches nor makes a name ambiguous", async () => {
    const shared = `shared-${randomId(3)}`;
    const inA = await insertDevice({ team: TEAM_A, name: shared });
    const inB = await insertDevice({ team: TEAM_B, name: shared });
    await makeTunnel(aMember, inA, { name: tunnelName('sa'), kind: 'tcp', target: '127.0.0.1:22' });
    await makeTunnel(bMember, inB, { name: tunnelName('sb'), kind: 'tcp', target: '127.0.0.1:22' });
    for (const key of [aMember, bMember]) {
      expect(await (await api(`/api/v1/devices/${shared}/tcp/22/connect`, { key })).json()).toMatchObject({ code: 'UPGRADE_REQUIRED' });
    }
    // Someone who sees both teams is told the name is ambiguous.
    expect(await (await api(`/api/v1/devices/${shared}/tcp/22/connect`, { key: instanceAdmin })).json()).toMatchObject({ code: 'AMBIGUOUS_DEVICE' });
  });

  it("is refused at a pirelay tunnel of team A's device exactly like a visitor without credentials", async () => {
    const t = await makeTunnel(aMember, devA, { name: tunnelName('a-pr'), access: { mode: 'pirelay' } });
    const nothing = await visit(t.name);
    const nothingText = await nothing.text();
    expect(nothing.status).toBe(401);
    for (const key of [bAdmin, bMember]) {
      const res = await visit(t.name, '/', { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('x-pirelay-error')).toBe(nothing.headers.get('x-pirelay-error'));
      expect(res.headers.get('www-authenticate')).toBe(nothing.headers.get('www-authenticate'));
      expect(await res.text()).toBe(nothingText);
    }
    // Team A's member gets past the relay (to the hub, whose device is offline).
    const member = await visit(t.name, '/', { headers: { authorization: `Bearer ${aMember}` } });
    expect([401, 403, 404]).not.toContain(member.status);
    await member.body?.cancel();
  });

  it('finds nothing of team A through PiTunnel', async () => {
    const basic = (key: string) => ({ authorization: `Basic ${btoa(`${key}:`)}` });
    const list = (await (await SELF.fetch(`${BASE}/devices`, { headers: basic(bAdmin) })).json()) as { devices: { id: string }[] };
    expect(ids(list.devices)).toContain(devB);
    expect(ids(list.devices)).not.toContain(devA);
    for (const path of ['/device_info', '/process_list', '/tunnels']) {
      const unknown = await SELF.fetch(`${BASE}${path}?device_id=${UNKNOWN}`, { headers: basic(bAdmin) });
      await expectHidden(unknown, `${path} unknown`, UNKNOWN);
      await expectHidden(await SELF.fetch(`${BASE}${path}?device_id=${devA}`, { headers: basic(bAdmin) }), path);
      await expectHidden(await SELF.fetch(`${BASE}${path}`, { method: 'POST', headers: { ...basic(bAdmin), 'content-type': 'application/x-www-form-urlencoded' }, body: `device_id=${devA}` }), `POST ${path}`);
    }
    const own = (await (await SELF.fetch(`${BASE}/devices`, { headers: basic(aMember) })).json()) as { devices: { id: string }[] };
    expect(ids(own.devices)).toContain(devA);
    expect(ids(own.devices)).not.toContain(devB);
  });

  it("is told team A's device does not exist by tunnel-control, in its own shape", async () => {
    const t = await makeTunnel(aMember, devA, { name: tunnelName('a-ctl') });
    await env.DB.prepare('UPDATE tunnels SET connected = 0 WHERE id = ?1').bind(t.id).run();
    const call = async (name: string, params: Record<string, string>, key: string) => {
      const res = await SELF.fetch(`${BASE}/tunnel-api/${name}?${new URLSearchParams({ ...params, api_key: key })}`);
      return { status: res.status, body: await res.json() };
    };
    const unknown = await call('client_status', { device_id: UNKNOWN }, bMember);
    expect(unknown).toEqual({ status: 200, body: { message: `Wrong data: no device ${UNKNOWN}`, error_code: 31, success: false } });
    for (const [name, params] of [
      ['client_status', {}],
      ['connect', { tunnel: t.name }],
      ['disconnect', { tunnel: t.name }],
      ['set_allow_clientless', { tunnel: t.name, allow: 'true' }],
      ['set_allow_clientless', { allow: 'true' }],
    ] as const) {
      expect(await call(name, { device_id: devA, ...params }, bAdmin), name).toEqual({ status: 200, body: { message: `Wrong data: no device ${devA}`, error_code: 31, success: false } });
    }
    expect(await env.DB.prepare('SELECT connected, allow_clientless FROM tunnels WHERE id = ?1').bind(t.id).first()).toEqual({ connected: 0, allow_clientless: 0 });
    // Team A's member is answered about the device (offline: 24, success).
    expect((await call('client_status', { device_id: devA }, aMember)).body).toMatchObject({ error_code: 24, success: true, message: 'offline' });
  });
});

describe('the device or team a route acts in is checked before its body', () => {
  // A body no schema accepts: were it validated first, the 400 would tell an outsider the id is worth trying.
  const MALFORMED = [] as unknown;

  it('an outsider sending a malformed body gets the unknown id\'s 404, not 400', async () => {
    const deviceRoutes: [string, string][] = [
      ['PATCH', `/api/v1/devices/${devA}`],
      ['PUT', `/api/v1/devices/${devA}/tags`],
      ['POST', `/api/v1/devices/${devA}/move`],
      ['POST', `/api/v1/devices/${devA}/tunnels`],
      ['PATCH', `/api/v1/devices/${devA}/tunnels/no-such-tunnel`],
      ['PUT', `/api/v1/devices/${devA}/variables/SOME_NAME`],
    ];
    for (const [method, path] of deviceRoutes) {
      await expectHidden(await api(path, { key: bAdmin, method, json: MALFORMED }), `${method} ${path}`);
    }
    // The same answer as a device that does not exist, whose route is the same.
    await expectHidden(await api(`/api/v1/devices/${UNKNOWN}/move`, { key: bAdmin, json: MALFORMED }), 'unknown', UNKNOWN);
    const teamRoutes: [string, string][] = [
      ['PATCH', `/api/v1/teams/${TEAM_A}`],
      ['POST', `/api/v1/teams/${TEAM_A}/members`],
      ['PATCH', `/api/v1/teams/${TEAM_A}/members/someone`],
      ['POST', `/api/v1/teams/${TEAM_A}/invitations`],
      ['PUT', `/api/v1/teams/${TEAM_A}/variables/SOME_NAME`],
    ];
    for (const [method, path] of teamRoutes) {
      const res = await api(path, { key: bAdmin, method, json: MALFORMED });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(await res.json(), `${method} ${path}`).toEqual({ error: 'Team not found', code: 'NOT_FOUND', details: { team_id: TEAM_A } });
    }
  });

  it('a member lacking the team role gets 403 TEAM_ROLE_REQUIRED before validation; its admin gets the 400', async () => {
    const move = (key: string) => api(`/api/v1/devices/${devA}/move`, { key, json: MALFORMED });
    const byMember = await move(aMember);
    expect(byMember.status).toBe(403);
    expect(await byMember.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED', details: { team_id: TEAM_A, role: 'member', required: 'admin' } });
    const byAdmin = await move(aAdmin);
    expect(byAdmin.status).toBe(400);
    expect(await byAdmin.json()).toMatchObject({ code: 'VALIDATION_ERROR', details: { target: 'json' } });

    const rename = (key: string) => api(`/api/v1/teams/${TEAM_A}`, { key, method: 'PATCH', json: MALFORMED });
    const renameByMember = await rename(aMember);
    expect(renameByMember.status).toBe(403);
    expect(await renameByMember.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED', details: { team_id: TEAM_A, required: 'admin' } });
    expect((await rename(aAdmin)).status).toBe(400);
    expect(await env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(devA).first('team_id')).toBe(TEAM_A);
  });

  it('a malformed id is still the 400 of the route\'s own validation, whoever asks', async () => {
    for (const key of [bAdmin, aMember]) {
      const res = await api(`/api/v1/devices/${'a'.repeat(65)}/move`, { key, json: { team_id: TEAM_B } });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'VALIDATION_ERROR', details: { target: 'param', issues: [{ path: 'id' }] } });
    }
  });
});

describe('roles within the team', () => {
  it('a member may not use devices:admin in the team (403 TEAM_ROLE_REQUIRED); its admin may', async () => {
    const pending = await insertDevice({ team: TEAM_A, status: 'pending' });
    const doomed = await insertDevice({ team: TEAM_A });
    const refusals: [string, string, string][] = [
      ['POST', `/api/v1/devices/${pending}/approve`, ''],
      ['POST', `/api/v1/devices/${pending}/reject`, ''],
      ['POST', `/api/v1/devices/${pending}/revoke`, ''],
      ['DELETE', `/api/v1/devices/${doomed}`, ''],
      ['POST', `/api/v1/devices/${doomed}/move`, TEAM_A],
      ['POST', `/api/v1/agents/pending/${pending}/approve`, ''],
      ['POST', `/api/v1/agents/pending/${pending}/reject`, ''],
      ['POST', `/api/v1/agents/${pending}/revoke`, ''],
      ['DELETE', `/api/v1/agents/${doomed}`, ''],
    ];
    for (const [method, path, teamId] of refusals) {
      const res = await api(path, { key: aMember, method, json: teamId ? { team_id: teamId } : undefined });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED', details: { team_id: TEAM_A, role: 'member', required: 'admin' } });
    }
    expect(await status(pending)).toBe('pending');
    expect(await status(doomed)).toBe('approved');
    // What a member may do: read, rename, tag.
    expect((await api(`/api/v1/devices/${pending}`, { key: aMember })).status).toBe(200);
    expect((await api(`/api/v1/devices/${pending}`, { key: aMember, method: 'PATCH', json: { name: 'renamed by a member' } })).status).toBe(200);

    expect((await api(`/api/v1/devices/${pending}/approve`, { key: aAdmin, method: 'POST' })).status).toBe(200);
    expect((await api(`/api/v1/devices/${doomed}`, { key: aAdmin, method: 'DELETE' })).status).toBe(204);
    expect(await status(pending)).toBe('approved');
    expect(await status(doomed)).toBeUndefined();
  });

  it('a team that requires 2FA admits a member only once they have it', async () => {
    const devC = await insertDevice({ team: TEAM_C });
    const member = await person({ [TEAM_C]: 'admin' });
    const refused = await api(`/api/v1/devices/${devC}`, { key: member.key });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: 'TWO_FACTOR_REQUIRED', details: { team_id: TEAM_C } });
    for (const path of [`/api/v1/devices/${devC}/info`, `/api/v1/agents/${devC}`, `/api/v1/devices/${devC}/tunnels`, `/device_info?device_id=${devC}`]) {
      const res = await api(path, { key: member.key });
      expect(res.status, path).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'TWO_FACTOR_REQUIRED' });
    }
    const control = await SELF.fetch(`${BASE}/tunnel-api/client_status?${new URLSearchParams({ device_id: devC, api_key: member.key })}`);
    expect(control.status).toBe(403);
    expect(await control.json()).toMatchObject({ error_code: 31, success: false, message: expect.stringContaining('two-factor') });
    // Left out of lists.
    const listed = (await (await api('/api/v1/devices', { key: member.key })).json()) as { devices: { id: string }[] };
    expect(ids(listed.devices)).not.toContain(devC);

    await env.DB.prepare('UPDATE users SET totp_enabled_at = ?1 WHERE id = ?2').bind(Date.now(), member.userId).run();
    const withTwoFactor = await keyFor(member.userId);
    expect((await api(`/api/v1/devices/${devC}`, { key: withTwoFactor })).status).toBe(200);
    expect(ids(((await (await api('/api/v1/devices', { key: withTwoFactor })).json()) as { devices: { id: string }[] }).devices)).toContain(devC);
  });

  it('an instance admin sees and acts in every team without being a member', async () => {
    const devices = (await (await api('/api/v1/devices', { key: instanceAdmin })).json()) as { devices: { id: string; team_id: string }[] };
    expect(ids(devices.devices)).toEqual(expect.arrayContaining([devA, devB, pendingA]));
    expect(devices.devices.find((d) => d.id === devA)!.team_id).toBe(TEAM_A);
    const agents = (await (await api('/api/v1/agents', { key: instanceAdmin })).json()) as { agents: { id: string }[] };
    expect(ids(agents.agents)).toEqual(expect.arrayContaining([devA, devB]));
    expect((await api(`/api/v1/devices/${devA}`, { key: instanceAdmin })).status).toBe(200);
    expect((await api(`/api/v1/devices/${devB}/tunnels`, { key: instanceAdmin })).status).toBe(200);
    const tokens = (await (await api('/api/v1/enrollment-tokens', { key: instanceAdmin })).json()) as { enrollment_tokens: { team_id: string }[] };
    expect(tokens.enrollment_tokens.some((t) => t.team_id === TEAM_A)).toBe(true);
    const pending = await insertDevice({ team: TEAM_B, status: 'pending' });
    expect((await api(`/api/v1/devices/${pending}/approve`, { key: instanceAdmin, method: 'POST' })).status).toBe(200);
  });
});

describe('moving a device between teams', () => {
  it('needs the admin role in both teams; afterwards only the new team sees it', async () => {
    const id = await insertDevice({ team: TEAM_A });
    const t = await makeTunnel(aMember, id, { name: tunnelName('mv'), access: { mode: 'pirelay' } });
    // Team A's member passes the tunnel's pirelay access now; the ingress remembers the row.
    const before = await visit(t.name, '/', { headers: { authorization: `Bearer ${aMember}` } });
    expect([401, 403, 404]).not.toContain(before.status);
    await before.body?.cancel();

    // Admin of A only: team B does not exist for them.
    const aOnly = await api(`/api/v1/devices/${id}/move`, { key: aAdmin, json: { team_id: TEAM_B } });
    expect(aOnly.status).toBe(404);
    expect(await aOnly.json()).toEqual({ error: 'Team not found', code: 'NOT_FOUND', details: { team_id: TEAM_B } });
    // Admin of A and a plain member of B.
    const adminAmemberB = await person({ [TEAM_A]: 'admin', [TEAM_B]: 'member' });
    const halfway = await api(`/api/v1/devices/${id}/move`, { key: adminAmemberB.key, json: { team_id: TEAM_B } });
    expect(halfway.status).toBe(403);
    expect(await halfway.json()).toMatchObject({ code: 'TEAM_ROLE_REQUIRED', details: { team_id: TEAM_B } });
    // Admin of B only: the device does not exist for them.
    await expectHidden(await api(`/api/v1/devices/${id}/move`, { key: bAdmin, json: { team_id: TEAM_B } }), 'b admin', id);
    // Even an instance admin cannot move it into a team that does not exist.
    expect(await (await api(`/api/v1/devices/${id}/move`, { key: instanceAdmin, json: { team_id: 'no-such-team' } })).json()).toMatchObject({ code: 'NOT_FOUND', details: { team_id: 'no-such-team' } });
    for (const body of [{}, { team_id: '' }, { team_id: 5 }, { team_id: TEAM_B, extra: 1 }]) {
      expect((await api(`/api/v1/devices/${id}/move`, { key: bothAdmin, json: body })).status, JSON.stringify(body)).toBe(400);
    }
    expect(await env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(id).first('team_id')).toBe(TEAM_A);
    // Seen, so the device-team cache holds team A for it.
    expect((await api(`/api/v1/devices/${id}`, { key: aMember })).status).toBe(200);

    const moved = await api(`/api/v1/devices/${id}/move`, { key: bothAdmin, json: { team_id: TEAM_B } });
    expect(moved.status).toBe(200);
    const body = (await moved.json()) as { team_id: string };
    expect(body.team_id).toBe(TEAM_B);
    const row = await env.DB.prepare('SELECT team_id, updated_at FROM devices WHERE id = ?1').bind(id).first<{ team_id: string; updated_at: number }>();
    expect(row!.team_id).toBe(TEAM_B);
    expect(row!.updated_at).toBeGreaterThan(Date.now() - 60_000);

    await expectHidden(await api(`/api/v1/devices/${id}`, { key: aMember }), 'old team', id);
    await expectHidden(await api(`/api/v1/devices/${id}/tunnels`, { key: aMember }), 'old team tunnels', id);
    expect((await api(`/api/v1/devices/${id}`, { key: bMember })).status).toBe(200);
    expect((await api(`/api/v1/devices/${id}/tunnels/${t.id}`, { key: bMember })).status).toBe(200);
    // The ingress forgot the old team at once.
    const after = await visit(t.name, '/', { headers: { authorization: `Bearer ${aMember}` } });
    expect(after.status).toBe(401);
    await after.body?.cancel();
    const newTeam = await visit(t.name, '/', { headers: { authorization: `Bearer ${bMember}` } });
    expect([401, 403, 404]).not.toContain(newTeam.status);
    await newTeam.body?.cancel();

    // One entry for each team, so both teams' admins see the move.
    const entries = (await env.DB.prepare("SELECT team_id, details FROM audit_log WHERE action = 'device.move' AND target_id = ?1 ORDER BY team_id").bind(id).all<{ team_id: string; details: string }>()).results;
    expect(entries.map((e) => e.team_id).sort()).toEqual([TEAM_A, TEAM_B].sort());
    for (const e of entries) expect(JSON.parse(e.details)).toEqual({ from: TEAM_A, to: TEAM_B });
  });

  it('a device added by hand under an id looked up before is seen at once', async () => {
    const id = `early-${randomId(3)}`;
    // The lookup is remembered (as "no such device") for a few seconds.
    expect((await api(`/api/v1/agents/${id}`, { key: aMember })).status).toBe(404);
    expect((await api('/api/v1/agents', { key: aAdmin, json: { id, team_id: TEAM_A } })).status).toBe(201);
    expect((await api(`/api/v1/agents/${id}`, { key: aMember })).status).toBe(200);
  });

  it('takes the token a hand-added agent waits to claim with it', async () => {
    const id = `moved-${randomId(3)}`;
    expect((await api('/api/v1/agents', { key: bothAdmin, json: { id, team_id: TEAM_A } })).status).toBe(201);
    expect((await api(`/api/v1/devices/${id}/move`, { key: bothAdmin, json: { team_id: TEAM_B } })).status).toBe(200);
    const tokenOf = async (key: string) =>
      ((await (await api('/api/v1/enrollment-tokens', { key })).json()) as { enrollment_tokens: { device_id: string | null }[] }).enrollment_tokens.find((t) => t.device_id === id);
    expect(await tokenOf(aAdmin)).toBeUndefined();
    expect(await tokenOf(bAdmin)).toMatchObject({ device_id: id, team_id: TEAM_B });
  });
});

describe('tags', () => {
  it('replaces the set for a team member, sorted by name, colours in lower case', async () => {
    const id = await insertDevice({ team: TEAM_A });
    const res = await api(`/api/v1/devices/${id}/tags`, {
      key: aMember,
      method: 'PUT',
      json: { tags: [{ name: 'web', color: '#FF00aa' }, { name: '  Basement ', color: '#000000' }] },
    });
    expect(res.status).toBe(200);
    const expected = [{ name: 'Basement', color: '#000000' }, { name: 'web', color: '#ff00aa' }];
    expect(((await res.json()) as { tags: unknown }).tags).toEqual(expected);
    expect(((await (await api(`/api/v1/devices/${id}`, { key: aMember })).json()) as { tags: unknown }).tags).toEqual(expected);
    const listed = (await (await api('/api/v1/devices', { key: aMember })).json()) as { devices: { id: string; tags: unknown }[] };
    expect(listed.devices.find((d) => d.id === id)!.tags).toEqual(expected);
    expect(await env.DB.prepare('SELECT updated_at FROM devices WHERE id = ?1').bind(id).first('updated_at')).not.toBeNull();

    const replaced = await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: { tags: [{ name: 'only', color: '#123456' }] } });
    expect(((await replaced.json()) as { tags: unknown }).tags).toEqual([{ name: 'only', color: '#123456' }]);
    const cleared = await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: { tags: [] } });
    expect(((await cleared.json()) as { tags: unknown }).tags).toEqual([]);
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM device_tags WHERE device_id = ?1').bind(id).first('n')).toBe(0);
  });

  it('refuses bad tags (400) and callers without devices:write (403)', async () => {
    const id = await insertDevice({ team: TEAM_A });
    await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: { tags: [{ name: 'kept', color: '#abcdef' }] } });
    const tag = (name: string, color = '#000000') => ({ name, color });
    const bad: unknown[] = [
      {},
      { tags: 'web' },
      { tags: [tag('')] },
      { tags: [tag('   ')] },
      { tags: [tag('x'.repeat(33))] },
      { tags: [tag('a\nb')] },
      { tags: [tag('a\u0007b')] },
      { tags: [tag('web', '#abc')] },
      { tags: [tag('web', 'red')] },
      { tags: [tag('web', '#GGGGGG')] },
      { tags: [tag('web', 'ff00aa')] },
      { tags: [{ name: 'web' }] },
      { tags: [{ ...tag('web'), extra: 1 }] },
      { tags: [tag('web'), tag('web', '#ffffff')] },
      { tags: Array.from({ length: 21 }, (_, i) => tag(`t${i}`)) },
      { tags: [], extra: true },
    ];
    for (const body of bad) {
      const res = await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    expect((await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: { tags: Array.from({ length: 20 }, (_, i) => tag(`t${i}`)) } })).status).toBe(200);
    expect((await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: { tags: [tag('x'.repeat(32))] } })).status).toBe(200);
    const byViewer = await api(`/api/v1/devices/${id}/tags`, { key: viewerA, method: 'PUT', json: { tags: [] } });
    expect(byViewer.status).toBe(403);
    expect(await byViewer.json()).toMatchObject({ code: 'FORBIDDEN', details: { required: ['devices:write'] } });
    expect(await env.DB.prepare('SELECT name FROM device_tags WHERE device_id = ?1').bind(id).first('name')).toBe('x'.repeat(32));
  });
});

describe('the audit log', () => {
  it("records each device and tunnel change with the device's team", async () => {
    const id = await insertDevice({ team: TEAM_A, status: 'pending' });
    const since = (await env.DB.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM audit_log').first<{ n: number }>())!.n;
    await api(`/api/v1/devices/${id}`, { key: aMember, method: 'PATCH', json: { name: 'audited' } });
    await api(`/api/v1/devices/${id}/tags`, { key: aMember, method: 'PUT', json: { tags: [{ name: 'a', color: '#000000' }] } });
    await api(`/api/v1/devices/${id}/approve`, { key: aAdmin, method: 'POST' });
    const t = await makeTunnel(aMember, id, { name: tunnelName('au') });
    await api(`/api/v1/devices/${id}/tunnels/${t.id}`, { key: aMember, method: 'PATCH', json: { access: { mode: 'basic', username: 'u', password: 'a-password-never-logged' } } });
    await SELF.fetch(`${BASE}/tunnel-api/set_allow_clientless?${new URLSearchParams({ device_id: id, tunnel: t.name, allow: 'true', api_key: aMember })}`);
    await api(`/api/v1/devices/${id}/tunnels/${t.id}`, { key: aMember, method: 'DELETE' });
    await api(`/api/v1/devices/${id}/revoke`, { key: aAdmin, method: 'POST' });
    await api(`/api/v1/devices/${id}`, { key: aAdmin, method: 'DELETE' });
    // A refused call records nothing.
    await api(`/api/v1/devices/${devA}`, { key: bAdmin, method: 'PATCH', json: { name: 'refused' } });

    const { results } = await env.DB.prepare('SELECT action, team_id, credential, target_type, details FROM audit_log WHERE id > ?1 ORDER BY id').bind(since).all<{
      action: string;
      team_id: string;
      credential: string;
      target_type: string;
      details: string | null;
    }>();
    expect(results.map((r) => r.action)).toEqual(['device.rename', 'device.tags', 'device.approve', 'tunnel.create', 'tunnel.update', 'tunnel.update', 'tunnel.delete', 'device.revoke', 'device.delete']);
    expect(results.every((r) => r.team_id === TEAM_A && r.credential === 'api_key')).toBe(true);
    expect(JSON.parse(results[5]!.details!)).toMatchObject({ call: 'set_allow_clientless', allow: true });
    expect(JSON.stringify(results)).not.toContain('a-password-never-logged');
  });

  it('records enrollment tokens, enrollments (with no actor) and hand-added agents with their team', async () => {
    const since = (await env.DB.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM audit_log').first<{ n: number }>())!.n;
    const secret = await createToken(aAdmin, { name: 'audited token' });
    const token = ((await (await api('/api/v1/enrollment-tokens', { key: aAdmin })).json()) as { enrollment_tokens: { id: string; prefix: string }[] }).enrollment_tokens.find((t) => secret.startsWith(t.prefix))!;
    const keys = await keyPair();
    const enrolled = await api('/api/v1/enroll', { json: { token: secret, public_key: keys.publicJwk, facts: facts(), agent_version: '0.1.0' } });
    const deviceId = ((await enrolled.json()) as { device_id: string }).device_id;
    expect(await env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(deviceId).first('team_id')).toBe(TEAM_A);
    await api(`/api/v1/enrollment-tokens/${token.id}`, { key: aAdmin, method: 'DELETE' });
    const agentId = `audited-${randomId(3)}`;
    await api('/api/v1/agents', { key: aAdmin, json: { id: agentId } });

    const { results } = await env.DB.prepare('SELECT action, team_id, credential, actor_id, target_id, details FROM audit_log WHERE id > ?1 ORDER BY id').bind(since).all<{
      action: string;
      team_id: string;
      credential: string;
      actor_id: string | null;
      target_id: string;
      details: string | null;
    }>();
    expect(results.map((r) => [r.action, r.target_id, r.team_id, r.credential])).toEqual([
      ['enrollment_token.create', token.id, TEAM_A, 'api_key'],
      ['device.enroll', deviceId, TEAM_A, 'none'],
      ['enrollment_token.revoke', token.id, TEAM_A, 'api_key'],
      ['device.create', agentId, TEAM_A, 'api_key'],
    ]);
    expect(results[1]!.actor_id).toBeNull();
    expect(JSON.parse(results[1]!.details!)).toMatchObject({ enrollment_token_id: token.id, status: 'pending' });
    expect(JSON.stringify(results)).not.toContain(secret);
  });
});
