import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId, randomToken, sha256Hex } from '../../worker/auth/crypto.ts';
import { API_KEY_PREFIX } from '../../worker/auth/principal.ts';
import type { CreatedInvitation, Invitation, Membership, Team } from '../../shared/api/teams.ts';
import { api, userWithKey } from './helpers.ts';
import { expectError, login, userWithPassword } from './auth-helpers.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const HOUR = 3_600_000;

/** A team owned by an operator, with a team admin and a plain member. */
async function staffedTeam() {
  const owner = await userWithKey(['operator'], `own_${randomId(3)}`, null);
  const res = await api('/api/v1/teams', { key: owner.key, json: { name: `Team ${randomId(4)}` } });
  expect(res.status).toBe(201);
  const team = (await res.json()) as Team;
  const admin = await userWithKey(['operator'], `adm_${randomId(3)}`, null);
  const member = await userWithKey(['operator'], `mem_${randomId(3)}`, null);
  for (const [u, role] of [[admin, 'admin'], [member, 'member']] as const) {
    expect((await api(`/api/v1/teams/${team.id}/members`, { key: owner.key, json: { user_id: u.userId, role } })).status).toBe(201);
  }
  return { team, owner, admin, member };
}

async function invite(key: string, teamId: string, body: Record<string, unknown>): Promise<CreatedInvitation> {
  const res = await api(`/api/v1/teams/${teamId}/invitations`, { key, json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as CreatedInvitation;
}

const accept = (key: string, token: string) => api('/api/v1/invitations/accept', { key, json: { token } });

async function isMember(teamId: string, userId: string) {
  return env.DB.prepare('SELECT role FROM team_members WHERE team_id = ?1 AND user_id = ?2').bind(teamId, userId).first<string>('role');
}

describe('inviting', () => {
  it('a team admin invites by user name; the token is shown once, stored only as its SHA-256', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], `Carol_${randomId(3)}`, null);
    const before = Date.now();
    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'admin' });
    expect(created).toEqual({
      id: expect.any(String),
      team_id: team.id,
      team_name: team.name,
      invitee: invitee.username.toLowerCase(),
      role: 'admin',
      prefix: created.token.slice(0, 12),
      invited_by: admin.userId,
      created_at: expect.stringMatching(ISO),
      expires_at: expect.stringMatching(ISO),
      state: 'pending',
      token: expect.stringMatching(/^pri_[A-Za-z0-9_-]{43}$/),
    });
    // Seven days by default.
    const ttl = Date.parse(created.expires_at) - Date.parse(created.created_at);
    expect(ttl).toBe(7 * 24 * HOUR);
    expect(Date.parse(created.created_at)).toBeGreaterThanOrEqual(before - 1000);

    const row = await env.DB.prepare('SELECT * FROM team_invitations WHERE id = ?1').bind(created.id).first<Record<string, unknown>>();
    expect(row!.token_hash).toBe(await sha256Hex(created.token));
    expect(Object.values(row!).some((v) => typeof v === 'string' && v.includes(created.token))).toBe(false);

    const list = await api(`/api/v1/teams/${team.id}/invitations`, { key: admin.key });
    expect(list.status).toBe(200);
    const { invitations } = (await list.json()) as { invitations: Invitation[] };
    const { token: _token, ...shown } = created;
    expect(invitations).toEqual([shown]);
    expect(JSON.stringify(invitations)).not.toContain(created.token);
  });

  it('takes an e-mail address, lower-cased; expiry up to 30 days; refuses bad input with 400', async () => {
    const { team, owner } = await staffedTeam();
    const created = await invite(owner.key, team.id, { invitee: '  Dave@Example.COM ', role: 'member', expires_in_hours: 720 });
    expect(created.invitee).toBe('dave@example.com');
    expect(Date.parse(created.expires_at) - Date.parse(created.created_at)).toBe(720 * HOUR);
    expect((await invite(owner.key, team.id, { invitee: 'someone', role: 'owner', expires_in_hours: 1 })).role).toBe('owner');
    for (const body of [
      { invitee: 'x@example.com', role: 'member', expires_in_hours: 721 },
      { invitee: 'x@example.com', role: 'member', expires_in_hours: 0 },
      { invitee: 'x@example.com', role: 'member', expires_in_hours: 1.5 },
      { invitee: 'no spaces allowed', role: 'member' },
      { invitee: 'ab', role: 'member' },
      { invitee: 'x@example.com', role: 'chief' },
      { invitee: 'x@example.com' },
      { invitee: 'x@example.com', role: 'member', token: 'pri_mine' },
    ]) {
      await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: owner.key, json: body }), 400, 'VALIDATION_ERROR');
    }
  });

  it('a member cannot invite or list; an admin cannot invite an owner or revoke an owner invitation', async () => {
    const { team, owner, admin, member } = await staffedTeam();
    await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: member.key, json: { invitee: 'x@example.com', role: 'member' } }), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: member.key }), 403, 'TEAM_ROLE_REQUIRED');
    await expectError(await api(`/api/v1/teams/${team.id}/invitations`, { key: admin.key, json: { invitee: 'x@example.com', role: 'owner' } }), 403, 'TEAM_ROLE_REQUIRED');
    const ownerInvite = await invite(owner.key, team.id, { invitee: 'boss@example.com', role: 'owner' });
    await expectError(await api(`/api/v1/teams/${team.id}/invitations/${ownerInvite.id}`, { key: admin.key, method: 'DELETE' }), 403, 'TEAM_ROLE_REQUIRED');
    const memberInvite = await invite(admin.key, team.id, { invitee: 'crew@example.com', role: 'member' });
    await expectError(await api(`/api/v1/teams/${team.id}/invitations/${memberInvite.id}`, { key: member.key, method: 'DELETE' }), 403, 'TEAM_ROLE_REQUIRED');
    const { results } = await env.DB.prepare('SELECT revoked_at FROM team_invitations WHERE team_id = ?1').bind(team.id).all<{ revoked_at: number | null }>();
    expect(results.every((r) => r.revoked_at === null)).toBe(true);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM team_invitations WHERE team_id = ?1').bind(team.id).first<number>('n')).toBe(2);
  });

  it("another team's invitation id is 404 in this team", async () => {
    const a = await staffedTeam();
    const b = await staffedTeam();
    const theirs = await invite(b.owner.key, b.team.id, { invitee: 'x@example.com', role: 'member' });
    await expectError(await api(`/api/v1/teams/${a.team.id}/invitations/${theirs.id}`, { key: a.owner.key, method: 'DELETE' }), 404, 'NOT_FOUND');
    expect(await env.DB.prepare('SELECT revoked_at FROM team_invitations WHERE id = ?1').bind(theirs.id).first<number | null>('revoked_at')).toBeNull();
  });
});

describe('accepting', () => {
  it('the invitee sees the invitation (by user name or e-mail, any case) and accepts it into the team with its role', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithPassword(['viewer'], { team: null, username: `Erin_${randomId(3)}` });
    const byName = await invite(admin.key, team.id, { invitee: invitee.username.toUpperCase(), role: 'admin' });
    const byMail = await invite(admin.key, team.id, { invitee: `${invitee.username}@EXAMPLE.com`, role: 'member' });
    const session = ((await (await login(invitee.username, invitee.password)).json()) as { token: string }).token;

    const mine = await api('/api/v1/invitations', { key: session });
    expect(mine.status).toBe(200);
    const { invitations } = (await mine.json()) as { invitations: Invitation[] };
    expect(invitations.map((i) => i.id).sort()).toEqual([byName.id, byMail.id].sort());
    expect(JSON.stringify(invitations)).not.toContain(byName.token);
    expect(JSON.stringify(invitations)).not.toContain(byMail.token);
    // Nobody else sees them.
    const other = await userWithKey(['viewer'], undefined, null);
    expect(((await (await api('/api/v1/invitations', { key: other.key })).json()) as { invitations: Invitation[] }).invitations).toEqual([]);

    const res = await accept(session, byName.token);
    expect(res.status).toBe(200);
    const membership = (await res.json()) as Membership;
    expect(membership.team).toMatchObject({ id: team.id, name: team.name, role: 'admin', member_count: 4 });
    expect(membership.member).toMatchObject({ user_id: invitee.userId, username: invitee.username, role: 'admin', joined_at: expect.stringMatching(ISO) });
    expect(await isMember(team.id, invitee.userId)).toBe('admin');
    // Access follows at once.
    expect((await api(`/api/v1/teams/${team.id}`, { key: session })).status).toBe(200);

    const listed = (await (await api(`/api/v1/teams/${team.id}/invitations`, { key: admin.key })).json()) as { invitations: Invitation[] };
    expect(listed.invitations.find((i) => i.id === byName.id)?.state).toBe('accepted');
    // The other invitation is to a team they are now in: no longer offered, and 409 if used.
    expect(((await (await api('/api/v1/invitations', { key: session })).json()) as { invitations: Invitation[] }).invitations).toEqual([]);
    await expectError(await accept(session, byMail.token), 409, 'ALREADY_MEMBER');
    expect(await isMember(team.id, invitee.userId)).toBe('admin');
  });

  it('someone else holding the token is refused (403 NOT_INVITEE), even an instance admin', async () => {
    const { team, admin, member } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], `fay_${randomId(3)}`, null);
    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'admin' });
    const thief = await userWithKey(['operator'], `fay_${randomId(3)}x`, null);
    const body = await expectError(await accept(thief.key, created.token), 403, 'NOT_INVITEE');
    expect(JSON.stringify(body)).not.toContain(invitee.username.toLowerCase());
    const root = await userWithKey(['admin'], undefined, null);
    await expectError(await accept(root.key, created.token), 403, 'NOT_INVITEE');
    // A member using it to promote themselves gets the same answer.
    await expectError(await accept(member.key, created.token), 403, 'NOT_INVITEE');
    expect(await isMember(team.id, thief.userId)).toBeNull();
    expect(await isMember(team.id, member.userId)).toBe('member');
    // Still good for the invitee.
    expect((await accept(invitee.key, created.token)).status).toBe(200);
  });

  it('a token works once: a second accept is 409 INVITATION_USED', async () => {
    const { team, admin } = await staffedTeam();
    // An operator, whose teams:write lets them leave.
    const invitee = await userWithKey(['operator'], undefined, null);
    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'member' });
    expect((await accept(invitee.key, created.token)).status).toBe(200);
    // Leave, then try to come back with the spent token.
    expect((await api(`/api/v1/teams/${team.id}/members/${invitee.userId}`, { key: invitee.key, method: 'DELETE' })).status).toBe(204);
    await expectError(await accept(invitee.key, created.token), 409, 'INVITATION_USED');
    expect(await isMember(team.id, invitee.userId)).toBeNull();
  });

  it('two accepts racing: one membership, one refusal', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], undefined, null);
    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'member' });
    const [a, b] = await Promise.all([accept(invitee.key, created.token), accept(invitee.key, created.token)]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM team_members WHERE team_id = ?1 AND user_id = ?2').bind(team.id, invitee.userId).first<number>('n')).toBe(1);
  });

  it('a revoked invitation is 410 INVITATION_REVOKED; an accepted one cannot be revoked (409)', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], undefined, null);
    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'member' });
    expect((await api(`/api/v1/teams/${team.id}/invitations/${created.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    // Again: nothing more to do.
    expect((await api(`/api/v1/teams/${team.id}/invitations/${created.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    await expectError(await accept(invitee.key, created.token), 410, 'INVITATION_REVOKED');
    expect(await isMember(team.id, invitee.userId)).toBeNull();
    expect(((await (await api('/api/v1/invitations', { key: invitee.key })).json()) as { invitations: Invitation[] }).invitations).toEqual([]);

    const second = await invite(admin.key, team.id, { invitee: invitee.username, role: 'member' });
    expect((await accept(invitee.key, second.token)).status).toBe(200);
    await expectError(await api(`/api/v1/teams/${team.id}/invitations/${second.id}`, { key: admin.key, method: 'DELETE' }), 409, 'INVITATION_USED');
    const states = (await (await api(`/api/v1/teams/${team.id}/invitations`, { key: admin.key })).json()) as { invitations: Invitation[] };
    expect(states.invitations.map((i) => [i.id, i.state])).toEqual([
      [second.id, 'accepted'],
      [created.id, 'revoked'],
    ]);
  });

  it('an expired invitation is 410 INVITATION_EXPIRED', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], undefined, null);
    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'member', expires_in_hours: 1 });
    await env.DB.prepare('UPDATE team_invitations SET expires_at = ?2 WHERE id = ?1').bind(created.id, Date.now() - 1).run();
    await expectError(await accept(invitee.key, created.token), 410, 'INVITATION_EXPIRED');
    expect(await isMember(team.id, invitee.userId)).toBeNull();
    expect(((await (await api('/api/v1/invitations', { key: invitee.key })).json()) as { invitations: Invitation[] }).invitations).toEqual([]);
    const listed = (await (await api(`/api/v1/teams/${team.id}/invitations`, { key: admin.key })).json()) as { invitations: Invitation[] };
    expect(listed.invitations[0]?.state).toBe('expired');
  });

  it('an unknown token is 404; a narrowed API key cannot accept (403 NARROWED_API_KEY); no credential 401', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], undefined, null);
    await expectError(await accept(invitee.key, randomToken('pri_')), 404, 'NOT_FOUND');
    await expectError(await api('/api/v1/invitations/accept', { key: invitee.key, json: {} }), 400, 'VALIDATION_ERROR');

    const created = await invite(admin.key, team.id, { invitee: invitee.username, role: 'member' });
    const narrow = randomToken(API_KEY_PREFIX);
    await env.DB.prepare("INSERT INTO api_keys (id, user_id, name, prefix, key_hash, permissions, created_at) VALUES (?1, ?2, 'ci', ?3, ?4, '[\"devices:read\"]', ?5)")
      .bind(randomId(8), invitee.userId, narrow.slice(0, 8), await sha256Hex(narrow), Date.now())
      .run();
    await expectError(await accept(narrow, created.token), 403, 'NARROWED_API_KEY');
    await expectError(await api('/api/v1/invitations/accept', { json: { token: created.token } }), 401, 'UNAUTHORIZED');
    expect(await isMember(team.id, invitee.userId)).toBeNull();
    // The narrowed key may still list.
    expect((await api('/api/v1/invitations', { key: narrow })).status).toBe(200);
  });
});

describe('audit', () => {
  it('records invitation.create, .revoke and .accept with the team id, never the token', async () => {
    const { team, admin } = await staffedTeam();
    const invitee = await userWithKey(['viewer'], undefined, null);
    const revoked = await invite(admin.key, team.id, { invitee: 'gone@example.com', role: 'member' });
    expect((await api(`/api/v1/teams/${team.id}/invitations/${revoked.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    const used = await invite(admin.key, team.id, { invitee: invitee.username, role: 'admin' });
    expect((await accept(invitee.key, used.token)).status).toBe(200);
    // A refused accept records nothing.
    await expectError(await accept(invitee.key, used.token), 409, 'INVITATION_USED');

    const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE team_id = ?1 AND action LIKE 'invitation.%' ORDER BY id")
      .bind(team.id)
      .all<{ action: string; actor_id: string; target_type: string; target_id: string; details: string }>();
    expect(results.map((r) => [r.action, r.actor_id, r.target_type, r.target_id])).toEqual([
      ['invitation.create', admin.userId, 'invitation', revoked.id],
      ['invitation.revoke', admin.userId, 'invitation', revoked.id],
      ['invitation.create', admin.userId, 'invitation', used.id],
      ['invitation.accept', invitee.userId, 'invitation', used.id],
    ]);
    expect(JSON.parse(results[0]!.details)).toEqual({ invitee: 'gone@example.com', role: 'member', expires_at: revoked.expires_at });
    const everything = JSON.stringify((await env.DB.prepare('SELECT * FROM audit_log').all()).results);
    for (const token of [revoked.token, used.token]) {
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(token.slice(4));
    }
  });
});
