import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import type { Team, TeamDetail, TeamMember } from '../../shared/api/teams.ts';
import { api, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { deleteTeam, removeMember as removeMemberRow, setMemberRole } from '../../worker/teams/queries.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const uniqueName = (base = 'Team') => `${base} ${randomId(4)}`;

/** A team made through the API by `key`'s user, who becomes its owner. */
async function newTeam(key: string, name = uniqueName()): Promise<Team> {
  const res = await api('/api/v1/teams', { key, json: { name } });
  expect(res.status).toBe(201);
  return (await res.json()) as Team;
}

async function addMember(key: string, teamId: string, body: Record<string, unknown>) {
  return api(`/api/v1/teams/${teamId}/members`, { key, json: body });
}

describe('teams: create, list, get', () => {
  it('an operator creates a team and owns it; it is listed and read with its members', async () => {
    const op = await userWithKey(['operator'], `op_${randomId(3)}`, null);
    const name = uniqueName('Ops');
    const team = await newTeam(op.key, `  ${name}  `);
    expect(team).toEqual({
      id: expect.any(String),
      name,
      require_2fa: false,
      role: 'owner',
      member_count: 1,
      device_count: 0,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });

    const list = (await (await api('/api/v1/teams', { key: op.key })).json()) as { teams: Team[] };
    expect(list.teams).toEqual([team]);

    const res = await api(`/api/v1/teams/${team.id}`, { key: op.key });
    expect(res.status).toBe(200);
    const detail = (await res.json()) as TeamDetail;
    expect(detail).toEqual({
      ...team,
      members: [{ user_id: op.userId, username: op.username, name: '', email: null, role: 'owner', two_factor_enabled: false, joined_at: expect.stringMatching(ISO) }],
    });
  });

  it('a team admin adds members by id or user name; they see the team with their role', async () => {
    const owner = await userWithKey(['operator'], undefined, null);
    const team = await newTeam(owner.key);
    const alice = await userWithKey(['viewer'], `alice_${randomId(3)}`, null);
    const bob = await userWithKey(['operator'], `bob_${randomId(3)}`, null);

    const added = await addMember(owner.key, team.id, { user_id: alice.userId, role: 'member' });
    expect(added.status).toBe(201);
    expect((await added.json()) as TeamMember).toEqual({
      user_id: alice.userId,
      username: alice.username,
      name: '',
      email: null,
      role: 'member',
      two_factor_enabled: false,
      joined_at: expect.stringMatching(ISO),
    });
    const byName = await addMember(owner.key, team.id, { username: bob.username, role: 'admin' });
    expect(byName.status).toBe(201);

    const seen = (await (await api(`/api/v1/teams/${team.id}`, { key: alice.key })).json()) as TeamDetail;
    expect(seen.role).toBe('member');
    expect(seen.member_count).toBe(3);
    expect(seen.members.map((m) => [m.username, m.role])).toEqual([
      [owner.username, 'owner'],
      [bob.username, 'admin'],
      [alice.username, 'member'],
    ]);
    const aliceList = (await (await api('/api/v1/teams', { key: alice.key })).json()) as { teams: Team[] };
    expect(aliceList.teams.map((t) => [t.id, t.role])).toEqual([[team.id, 'member']]);
  });

  it('an instance admin lists every team (role null where not a member) and reads any', async () => {
    const op = await userWithKey(['operator'], undefined, null);
    const team = await newTeam(op.key);
    const admin = await userWithKey(['admin'], undefined, null);
    const { teams } = (await (await api('/api/v1/teams', { key: admin.key })).json()) as { teams: Team[] };
    expect(teams.find((t) => t.id === team.id)?.role).toBeNull();
    expect(teams.find((t) => t.id === 'test-team')).toBeDefined();
    expect((await api(`/api/v1/teams/${team.id}`, { key: admin.key })).status).toBe(200);
    await expectError(await api('/api/v1/teams/no-such-team', { key: admin.key }), 404, 'NOT_FOUND');
  });

  it('counts devices', async () => {
    const op = await userWithKey(['operator'], undefined, null);
    const team = await newTeam(op.key);
    await insertDevice({ team: team.id });
    await insertDevice({ team: team.id });
    const got = (await (await api(`/api/v1/teams/${team.id}`, { key: op.key })).json()) as Team;
    expect(got.device_count).toBe(2);
    // Untouched by it: the test team's own count.
    const row = await env.DB.prepare('SELECT count(*) AS n FROM devices WHERE team_id = ?1').bind(team.id).first<number>('n');
    expect(row).toBe(2);
  });
});

/** A team owned by a fresh operator, with a team admin and a plain member (both operators, so the team role is what differs). */
async function staffedTeam() {
  const owner = await userWithKey(['operator'], `own_${randomId(3)}`, null);
  const team = await newTeam(owner.key);
  const admin = await userWithKey(['operator'], `adm_${randomId(3)}`, null);
  const member = await userWithKey(['operator'], `mem_${randomId(3)}`, null);
  expect((await addMember(owner.key, team.id, { user_id: admin.userId, role: 'admin' })).status).toBe(201);
  expect((await addMember(owner.key, team.id, { user_id: member.userId, role: 'member' })).status).toBe(201);
  return { team, owner, admin, member };
}

const patchTeam = (key: string, id: string, body: unknown) => api(`/api/v1/teams/${id}`, { key, method: 'PATCH', json: body });
const patchMember = (key: string, id: string, userId: string, role: string) => api(`/api/v1/teams/${id}/members/${userId}`, { key, method: 'PATCH', json: { role } });
const removeMember = (key: string, id: string, userId: string) => api(`/api/v1/teams/${id}/members/${userId}`, { key, method: 'DELETE' });

async function roleOf(teamId: string, userId: string) {
  return env.DB.prepare('SELECT role FROM team_members WHERE team_id = ?1 AND user_id = ?2').bind(teamId, userId).first<string>('role');
}

describe('team names', () => {
  it('refuses empty, too long and control-character names with 400', async () => {
    const { key } = await userWithKey(['operator'], undefined, null);
    for (const name of ['', '   ', 'x'.repeat(65), 'two\nlines', 'tab\there', 'bell\u0007', 'rtl\u202eevil', 'nul\u0000']) {
      const body = await expectError(await api('/api/v1/teams', { key, json: { name } }), 400, 'VALIDATION_ERROR');
      expect(body.details.issues).toEqual([expect.objectContaining({ path: 'name' })]);
    }
    expect((await api('/api/v1/teams', { key, json: { name: 'x'.repeat(64) + randomId(0) } })).status).toBe(201);
    await expectError(await api('/api/v1/teams', { key, json: { name: 'ok', extra: 1 } }), 400, 'VALIDATION_ERROR');
    await expectError(await api('/api/v1/teams', { key, json: [] }), 400, 'VALIDATION_ERROR');
  });

  it('names are unique case-insensitively, on create and on rename (409 TEAM_NAME_TAKEN)', async () => {
    const { key } = await userWithKey(['operator'], undefined, null);
    const name = uniqueName('Blue');
    const first = await newTeam(key, name);
    const dup = await expectError(await api('/api/v1/teams', { key, json: { name: name.toUpperCase() } }), 409, 'TEAM_NAME_TAKEN');
    expect(dup.details).toEqual({ name: name.toUpperCase() });
    const other = await newTeam(key);
    await expectError(await patchTeam(key, other.id, { name: ` ${name.toLowerCase()} ` }), 409, 'TEAM_NAME_TAKEN');
    // Its own name in another case is no clash.
    const res = await patchTeam(key, first.id, { name: name.toLowerCase() });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Team).name).toBe(name.toLowerCase());
  });

  it('two creates of one name racing: one 201, one 409, one row', async () => {
    const a = await userWithKey(['operator'], undefined, null);
    const b = await userWithKey(['operator'], undefined, null);
    const name = uniqueName('Race');
    const [x, y] = await Promise.all([api('/api/v1/teams', { key: a.key, json: { name } }), api('/api/v1/teams', { key: b.key, json: { name: name.toLowerCase() } })]);
    expect([x.status, y.status].sort()).toEqual([201, 409]);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM teams WHERE lower(name) = lower(?1)').bind(name).first<number>('n')).toBe(1);
  });
});

describe('team settings and deletion', () => {
  it('a team admin renames the team and switches require_2fa; a member gets 403 TEAM_ROLE_REQUIRED', async () => {
    const { team, admin, member } = await staffedTeam();
    const refused = await expectError(await patchTeam(member.key, team.id, { name: uniqueName() }), 403, 'TEAM_ROLE_REQUIRED');
    expect(refused.details).toEqual({ team_id: team.id, role: 'member', required: 'admin' });
    const name = uniqueName('Renamed');
    const res = await patchTeam(admin.key, team.id, { name });
    expect(res.status).toBe(200);
    const after = (await res.json()) as Team;
    expect(after).toMatchObject({ id: team.id, name, role: 'admin', member_count: 3 });
    expect(Date.parse(after.updated_at)).toBeGreaterThanOrEqual(Date.parse(team.updated_at));
    await expectError(await patchTeam(admin.key, team.id, {}), 400, 'VALIDATION_ERROR');
    await expectError(await patchTeam(admin.key, team.id, { require_2fa: 'yes' }), 400, 'VALIDATION_ERROR');
  });

  it('the global role stays the ceiling: a team owner who is a viewer cannot rename or delete (403 FORBIDDEN)', async () => {
    const op = await userWithKey(['operator'], undefined, null);
    const team = await newTeam(op.key);
    const viewer = await userWithKey(['viewer'], undefined, null);
    expect((await addMember(op.key, team.id, { user_id: viewer.userId, role: 'owner' })).status).toBe(201);
    const body = await expectError(await patchTeam(viewer.key, team.id, { name: uniqueName() }), 403, 'FORBIDDEN');
    expect(body.details.required).toEqual(['teams:write']);
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: viewer.key, method: 'DELETE' }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/teams', { key: viewer.key, json: { name: uniqueName() } }), 403, 'FORBIDDEN');
    // Reading is within a viewer's role.
    expect((await api(`/api/v1/teams/${team.id}`, { key: viewer.key })).status).toBe(200);
  });

  it('require_2fa: an admin without 2FA may not switch it on; once on, members without 2FA are shut out but may leave', async () => {
    const { team, owner, admin, member } = await staffedTeam();
    const own = await expectError(await patchTeam(admin.key, team.id, { require_2fa: true }), 403, 'TWO_FACTOR_REQUIRED');
    expect(own.details).toEqual({ team_id: team.id });
    await env.DB.prepare('UPDATE users SET totp_enabled_at = ?2 WHERE id = ?1').bind(owner.userId, Date.now()).run();
    const res = await patchTeam(owner.key, team.id, { require_2fa: true });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Team).require_2fa).toBe(true);

    await expectError(await api(`/api/v1/teams/${team.id}`, { key: admin.key }), 403, 'TWO_FACTOR_REQUIRED');
    const listed = (await (await api('/api/v1/teams', { key: admin.key })).json()) as { teams: Team[] };
    expect(listed.teams).toEqual([]);
    const detail = (await (await api(`/api/v1/teams/${team.id}`, { key: owner.key })).json()) as TeamDetail;
    expect(detail.members.find((m) => m.user_id === owner.userId)?.two_factor_enabled).toBe(true);

    expect((await removeMember(member.key, team.id, member.userId)).status).toBe(204);
    expect(await roleOf(team.id, member.userId)).toBeNull();
    // An instance admin is not held to it.
    const root = await userWithKey(['admin'], undefined, null);
    expect((await api(`/api/v1/teams/${team.id}`, { key: root.key })).status).toBe(200);
    expect((await patchTeam(root.key, team.id, { require_2fa: false })).status).toBe(200);
  });

  it('a team with devices is not deleted: 409 TEAM_HAS_DEVICES with the count; only an owner deletes', async () => {
    const { team, owner, admin } = await staffedTeam();
    await insertDevice({ team: team.id });
    await insertDevice({ team: team.id, status: 'revoked' });
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: admin.key, method: 'DELETE' }), 403, 'TEAM_ROLE_REQUIRED');
    const body = await expectError(await api(`/api/v1/teams/${team.id}`, { key: owner.key, method: 'DELETE' }), 409, 'TEAM_HAS_DEVICES');
    expect(body.details).toEqual({ team_id: team.id, device_count: 2 });
    expect(await env.DB.prepare('SELECT count(*) AS n FROM teams WHERE id = ?1').bind(team.id).first<number>('n')).toBe(1);
  });

  it('deleting a team takes its members, invitations, enrollment tokens and variables with it', async () => {
    const { team, owner, member } = await staffedTeam();
    const now = Date.now();
    await env.DB.prepare(
      "INSERT INTO enrollment_tokens (id, name, token_hash, prefix, auto_approve, created_at, team_id) VALUES (?1, 't', ?2, 'pre_x', 0, ?3, ?4)",
    )
      .bind(randomId(8), randomId(16), now, team.id)
      .run();
    await env.DB.prepare(
      "INSERT INTO variables (id, level, team_id, name, secret, value, created_at, updated_at) VALUES (?1, 'team', ?2, 'FOO', 0, 'bar', ?3, ?3)",
    )
      .bind(randomId(8), team.id, now)
      .run();
    expect((await api(`/api/v1/teams/${team.id}/invitations`, { key: owner.key, json: { invitee: 'someone@example.com', role: 'member' } })).status).toBe(201);

    expect((await api(`/api/v1/teams/${team.id}`, { key: owner.key, method: 'DELETE' })).status).toBe(204);
    for (const table of ['teams', 'team_members', 'team_invitations', 'enrollment_tokens', 'variables']) {
      const column = table === 'teams' ? 'id' : 'team_id';
      expect(await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${column} = ?1`).bind(team.id).first<number>('n'), table).toBe(0);
    }
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: owner.key }), 404, 'NOT_FOUND');
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: member.key }), 404, 'NOT_FOUND');
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: owner.key, method: 'DELETE' }), 404, 'NOT_FOUND');
  });
});

describe('who may touch a team', () => {
  it('an outsider gets 404 on every team route, even with "everything" in their global role short of *', async () => {
    const { team, owner, member } = await staffedTeam();
    const invited = await api(`/api/v1/teams/${team.id}/invitations`, { key: owner.key, json: { invitee: 'x@example.com', role: 'member' } });
    const invitationId = ((await invited.json()) as { id: string }).id;
    const outsider = await userWithKey(['operator'], undefined, null);
    await newTeam(outsider.key); // an owner elsewhere is still nobody here
    const base = `/api/v1/teams/${team.id}`;
    const calls: [string, string, unknown?][] = [
      ['GET', base],
      ['PATCH', base, { name: uniqueName() }],
      ['PATCH', base, { require_2fa: true }],
      ['DELETE', base],
      ['POST', `${base}/members`, { user_id: outsider.userId, role: 'member' }],
      ['POST', `${base}/members`, { user_id: outsider.userId, role: 'owner' }],
      ['PATCH', `${base}/members/${member.userId}`, { role: 'admin' }],
      ['PATCH', `${base}/members/${outsider.userId}`, { role: 'owner' }],
      ['DELETE', `${base}/members/${member.userId}`],
      ['DELETE', `${base}/members/${owner.userId}`],
      ['DELETE', `${base}/members/${outsider.userId}`],
      ['DELETE', `${base}/members/no-such-user`],
      ['PATCH', `${base}/members/no-such-user`, { role: 'member' }],
      ['GET', `${base}/invitations`],
      ['POST', `${base}/invitations`, { invitee: outsider.username, role: 'member' }],
      ['DELETE', `${base}/invitations/${invitationId}`],
    ];
    for (const [method, path, json] of calls) {
      const body = await expectError(await api(path, { key: outsider.key, method, json }), 404, 'NOT_FOUND');
      expect(body.error, `${method} ${path}`).toBe('Team not found');
    }
    const list = (await (await api('/api/v1/teams', { key: outsider.key })).json()) as { teams: Team[] };
    expect(list.teams.map((t) => t.id)).not.toContain(team.id);
    // Nothing changed.
    expect(await roleOf(team.id, member.userId)).toBe('member');
    expect(await roleOf(team.id, outsider.userId)).toBeNull();
  });

  it('a member cannot manage members (403 TEAM_ROLE_REQUIRED) but reads the team', async () => {
    const { team, admin, member } = await staffedTeam();
    const stranger = await userWithKey(['operator'], undefined, null);
    await expectError(await addMember(member.key, team.id, { user_id: stranger.userId, role: 'member' }), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await patchMember(member.key, team.id, member.userId, 'admin'), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await patchMember(member.key, team.id, admin.userId, 'member'), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await removeMember(member.key, team.id, admin.userId), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: member.key }), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: member.key, json: { invitee: stranger.username, role: 'member' } }), 403, 'TEAM_ROLE_REQUIRED');
    expect(await roleOf(team.id, admin.userId)).toBe('admin');
    expect(await roleOf(team.id, stranger.userId)).toBeNull();
  });

  it('a team admin manages members and admins but cannot make, change or remove an owner', async () => {
    const { team, owner, admin, member } = await staffedTeam();
    const other = await userWithKey(['viewer'], undefined, null);
    await expectError(await addMember(admin.key, team.id, { user_id: other.userId, role: 'owner' }), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await patchMember(admin.key, team.id, member.userId, 'owner'), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await patchMember(admin.key, team.id, admin.userId, 'owner'), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await patchMember(admin.key, team.id, owner.userId, 'member'), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await removeMember(admin.key, team.id, owner.userId), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: admin.key, json: { invitee: other.username, role: 'owner' } }), 403, 'TEAM_ROLE_REQUIRED');
    expect(await roleOf(team.id, owner.userId)).toBe('owner');
    expect(await roleOf(team.id, member.userId)).toBe('member');

    // What an admin may do.
    expect((await addMember(admin.key, team.id, { user_id: other.userId, role: 'admin' })).status).toBe(201);
    const promoted = await patchMember(admin.key, team.id, member.userId, 'admin');
    expect(promoted.status).toBe(200);
    expect(((await promoted.json()) as TeamMember).role).toBe('admin');
    expect((await removeMember(admin.key, team.id, other.userId)).status).toBe(204);

    // And an owner may do the rest.
    expect((await patchMember(owner.key, team.id, member.userId, 'owner')).status).toBe(200);
    expect((await patchMember(owner.key, team.id, member.userId, 'member')).status).toBe(200);
    expect(await roleOf(team.id, member.userId)).toBe('member');
  });

  it('an instance admin manages any team, member or not', async () => {
    const { team, member } = await staffedTeam();
    const root = await userWithKey(['admin'], undefined, null);
    expect((await patchMember(root.key, team.id, member.userId, 'owner')).status).toBe(200);
    expect((await patchTeam(root.key, team.id, { name: uniqueName('Root') })).status).toBe(200);
    expect((await addMember(root.key, team.id, { user_id: root.userId, role: 'member' })).status).toBe(201);
  });

  it('adding a member: unknown user 404, disabled user 422, existing member 409 ALREADY_MEMBER, both ids 400', async () => {
    const { team, owner, member } = await staffedTeam();
    await expectError(await addMember(owner.key, team.id, { user_id: 'nobody', role: 'member' }), 404, 'NOT_FOUND');
    await expectError(await addMember(owner.key, team.id, { username: 'nobody-here', role: 'member' }), 404, 'NOT_FOUND');
    const gone = await userWithKey(['viewer'], undefined, null);
    await env.DB.prepare('UPDATE users SET disabled = 1 WHERE id = ?1').bind(gone.userId).run();
    await expectError(await addMember(owner.key, team.id, { user_id: gone.userId, role: 'member' }), 422, 'USER_DISABLED');
    const dup = await expectError(await addMember(owner.key, team.id, { username: member.username, role: 'admin' }), 409, 'ALREADY_MEMBER');
    expect(dup.details).toEqual({ team_id: team.id, user_id: member.userId });
    expect(await roleOf(team.id, member.userId)).toBe('member');
    await expectError(await addMember(owner.key, team.id, { user_id: gone.userId, username: gone.username, role: 'member' }), 400, 'VALIDATION_ERROR');
    await expectError(await addMember(owner.key, team.id, { role: 'member' }), 400, 'VALIDATION_ERROR');
    await expectError(await addMember(owner.key, team.id, { user_id: gone.userId, role: 'boss' }), 400, 'VALIDATION_ERROR');
    await expectError(await patchMember(owner.key, team.id, 'nobody', 'admin'), 404, 'NOT_FOUND');
    await expectError(await removeMember(owner.key, team.id, 'nobody'), 404, 'NOT_FOUND');
  });
});

describe('the last owner', () => {
  it('cannot be demoted, removed or leave (409 LAST_OWNER); with a second owner they can', async () => {
    const { team, owner, member } = await staffedTeam();
    const demote = await expectError(await patchMember(owner.key, team.id, owner.userId, 'admin'), 409, 'LAST_OWNER');
    expect(demote.details).toEqual({ team_id: team.id, user_id: owner.userId });
    await expectError(await removeMember(owner.key, team.id, owner.userId), 409, 'LAST_OWNER');
    const root = await userWithKey(['admin'], undefined, null);
    await expectError(await removeMember(root.key, team.id, owner.userId), 409, 'LAST_OWNER');
    await expectError(await patchMember(root.key, team.id, owner.userId, 'member'), 409, 'LAST_OWNER');
    expect(await roleOf(team.id, owner.userId)).toBe('owner');
    // Owner to owner is no change and no refusal.
    expect((await patchMember(owner.key, team.id, owner.userId, 'owner')).status).toBe(200);

    expect((await patchMember(owner.key, team.id, member.userId, 'owner')).status).toBe(200);
    expect((await removeMember(owner.key, team.id, owner.userId)).status).toBe(204);
    await expectError(await removeMember(member.key, team.id, member.userId), 409, 'LAST_OWNER');
    expect(await roleOf(team.id, member.userId)).toBe('owner');
  });

  it('two owners demoting each other at once: one wins, the team keeps an owner', async () => {
    const { team, owner, member } = await staffedTeam();
    expect((await patchMember(owner.key, team.id, member.userId, 'owner')).status).toBe(200);
    const [a, b] = await Promise.all([patchMember(owner.key, team.id, member.userId, 'admin'), patchMember(member.key, team.id, owner.userId, 'admin')]);
    // The loser is refused by the statement (409) or, had the winner's write landed before its
    // check, as an admin who may not change an owner (403).
    expect([a.status, b.status].filter((s) => s === 200)).toEqual([200]);
    expect([a.status, b.status].filter((s) => s !== 200)).toEqual([expect.toBeOneOf([403, 409])]);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM team_members WHERE team_id = ?1 AND role = 'owner'").bind(team.id).first<number>('n')).toBe(1);
  });

  it('the guards live in the writing statements themselves, not in a read before them', async () => {
    const { team, owner } = await staffedTeam();
    expect(await setMemberRole(env.DB, team.id, owner.userId, 'member')).toBe('last_owner');
    expect(await removeMemberRow(env.DB, team.id, owner.userId)).toBe('last_owner');
    expect(await roleOf(team.id, owner.userId)).toBe('owner');
    await insertDevice({ team: team.id });
    expect(await deleteTeam(env.DB, team.id)).toEqual({ deleted: false, deviceCount: 1 });
    expect(await deleteTeam(env.DB, 'no-such-team')).toEqual({ deleted: false, deviceCount: null });
  });

  it('two owners leaving at once: one goes, one stays', async () => {
    const { team, owner, member } = await staffedTeam();
    expect((await patchMember(owner.key, team.id, member.userId, 'owner')).status).toBe(200);
    const [a, b] = await Promise.all([removeMember(owner.key, team.id, owner.userId), removeMember(member.key, team.id, member.userId)]);
    expect([a.status, b.status].sort()).toEqual([204, 409]);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM team_members WHERE team_id = ?1 AND role = 'owner'").bind(team.id).first<number>('n')).toBe(1);
  });
});

describe('leaving and removal', () => {
  it('a member leaves; a removed member is refused on their very next request (no cached access)', async () => {
    const { team, owner, admin, member } = await staffedTeam();
    // Both have just been seen, so their principals are cached with the membership.
    expect((await api(`/api/v1/teams/${team.id}`, { key: member.key })).status).toBe(200);
    expect((await api(`/api/v1/teams/${team.id}`, { key: admin.key })).status).toBe(200);

    expect((await removeMember(owner.key, team.id, admin.userId)).status).toBe(204);
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: admin.key }), 404, 'NOT_FOUND');
    await expectError(await addMember(admin.key, team.id, { user_id: admin.userId, role: 'admin' }), 404, 'NOT_FOUND');

    expect((await removeMember(member.key, team.id, member.userId)).status).toBe(204);
    await expectError(await api(`/api/v1/teams/${team.id}`, { key: member.key }), 404, 'NOT_FOUND');
    const left = (await (await api('/api/v1/teams', { key: member.key })).json()) as { teams: Team[] };
    expect(left.teams).toEqual([]);
  });

  it('a demoted admin loses admin rights at once', async () => {
    const { team, owner, admin, member } = await staffedTeam();
    expect((await patchMember(admin.key, team.id, member.userId, 'member')).status).toBe(200);
    expect((await patchMember(owner.key, team.id, admin.userId, 'member')).status).toBe(200);
    await expectError(await patchMember(admin.key, team.id, member.userId, 'admin'), 403, 'TEAM_ROLE_REQUIRED');
  });
});

interface AuditRow {
  actor_id: string | null;
  credential: string;
  action: string;
  target_type: string;
  target_id: string | null;
  team_id: string | null;
  details: string | null;
}

describe('audit', () => {
  it('records every team and membership change with the team id', async () => {
    const owner = await userWithKey(['operator'], undefined, null);
    const team = await newTeam(owner.key);
    const other = await userWithKey(['viewer'], undefined, null);
    expect((await addMember(owner.key, team.id, { user_id: other.userId, role: 'member' })).status).toBe(201);
    expect((await patchMember(owner.key, team.id, other.userId, 'admin')).status).toBe(200);
    expect((await patchTeam(owner.key, team.id, { name: `${team.name} 2` })).status).toBe(200);
    expect((await removeMember(owner.key, team.id, other.userId)).status).toBe(204);
    // Refusals and no-ops change nothing and are not recorded as changes.
    await expectError(await removeMember(owner.key, team.id, owner.userId), 409, 'LAST_OWNER');
    expect((await patchTeam(owner.key, team.id, { name: `${team.name} 2`, require_2fa: false })).status).toBe(200);
    expect((await patchMember(owner.key, team.id, owner.userId, 'owner')).status).toBe(200);
    expect((await api(`/api/v1/teams/${team.id}`, { key: owner.key, method: 'DELETE' })).status).toBe(204);

    const { results } = await env.DB.prepare('SELECT * FROM audit_log WHERE team_id = ?1 ORDER BY id').bind(team.id).all<AuditRow>();
    expect(results.map((r) => [r.action, r.target_type, r.target_id, r.actor_id, r.credential])).toEqual([
      ['team.create', 'team', team.id, owner.userId, 'api_key'],
      ['member.add', 'user', other.userId, owner.userId, 'api_key'],
      ['member.update', 'user', other.userId, owner.userId, 'api_key'],
      ['team.update', 'team', team.id, owner.userId, 'api_key'],
      ['member.remove', 'user', other.userId, owner.userId, 'api_key'],
      ['team.delete', 'team', team.id, owner.userId, 'api_key'],
    ]);
    expect(results.map((r) => JSON.parse(r.details ?? 'null'))).toEqual([
      { name: team.name },
      { role: 'member' },
      { from: 'member', to: 'admin' },
      { name: { from: team.name, to: `${team.name} 2` } },
      { role: 'admin' },
      { name: `${team.name} 2` },
    ]);
  });
});
