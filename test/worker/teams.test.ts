import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import type { Team, TeamDetail, TeamMember } from '../../shared/api/teams.ts';
import { api, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { insertDevice } from './device-helpers.ts';

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
