// The audit log: what role and API key changes record (who, with which credential, from where),
// that no key secret ever lands in it, how the writer batches and bounds a request's entries, and
// GET /api/v1/audit — who sees which entries (the team rule), its filters and its paging.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { randomId, sha256Hex } from '../../worker/auth/crypto.ts';
import { audit, writeAudit, AUDIT_MAX_ENTRIES, AUDIT_STRING_MAX } from '../../worker/audit.ts';
import { newApp } from '../../worker/openapi.ts';
import type { AuditEntry, AuditPage } from '../../shared/api/audit.ts';
import { BASE, TEST_TEAM, api, joinTeam, userWithKey } from './helpers.ts';
import { expectError, sessionUser } from './auth-helpers.ts';

const IP = '203.0.113.9';
/** wrangler.toml trusts CF-Connecting-IP (TRUST_CF_CONNECTING_IP), so this is the address the relay sees. */
const from = { 'cf-connecting-ip': IP };

async function keyIdOf(userId: string): Promise<string> {
  return (await env.DB.prepare('SELECT id FROM api_keys WHERE user_id = ?1').bind(userId).first<string>('id'))!;
}

async function page(key: string, query: Record<string, string | number> = {}): Promise<AuditPage> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const res = await api(`/api/v1/audit?${qs}`, { key });
  expect(res.status).toBe(200);
  return (await res.json()) as AuditPage;
}

/** Every entry a query matches, following next_before to the end. */
async function all(key: string, query: Record<string, string | number> = {}): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  let before: number | null | undefined;
  do {
    const p = await page(key, { ...query, ...(before ? { before } : {}) });
    out.push(...p.entries);
    before = p.next_before;
  } while (before);
  return out;
}

async function makeTeam(name: string, require2fa = false): Promise<string> {
  const id = `t-${randomId(4)}`;
  await env.DB.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?2, ?3, 0, 0)').bind(id, `${name} ${id}`, require2fa ? 1 : 0).run();
  return id;
}

/** A user with an API key who holds `roles` globally and `teamRoles` in the given teams (and no other team). */
async function member(roles: string[], teamRoles: Record<string, 'owner' | 'admin' | 'member'>) {
  const u = await userWithKey(roles, undefined, null);
  for (const [team, role] of Object.entries(teamRoles)) await joinTeam(u.userId, roles, team, role);
  return u;
}

interface Seed {
  action?: string;
  team_id?: string | null;
  actor_id?: string | null;
  target_type: string;
  target_id?: string;
  at?: number;
}

/** Entries other teams' routes would write, straight into D1 (one batch). */
async function seed(entries: Seed[]) {
  const stmt = env.DB.prepare(
    "INSERT INTO audit_log (at, actor_id, actor_name, credential, credential_id, action, target_type, target_id, team_id, ip, details) VALUES (?1, ?2, 'seed', 'none', NULL, ?3, ?4, ?5, ?6, '', NULL)",
  );
  await env.DB.batch(entries.map((e) => stmt.bind(e.at ?? Date.now(), e.actor_id ?? null, e.action ?? 'device.rename', e.target_type, e.target_id ?? randomId(4), e.team_id ?? null)));
}

describe('what role and API key changes record', () => {
  it('role.create, role.update and role.delete: the actor, their API key, the address, no team', async () => {
    const admin = await userWithKey(['admin']);
    const keyId = await keyIdOf(admin.userId);
    const created = await api('/api/v1/roles', { key: admin.key, json: { name: `Audited ${randomId(3)}`, permissions: ['devices:read'] }, headers: from });
    expect(created.status).toBe(201);
    const role = (await created.json()) as { id: string; name: string };
    expect((await api(`/api/v1/roles/${role.id}`, { key: admin.key, method: 'PUT', json: { permissions: ['devices:read', 'tunnels:read'] }, headers: from })).status).toBe(200);
    expect((await api(`/api/v1/roles/${role.id}`, { key: admin.key, method: 'DELETE', headers: from })).status).toBe(204);

    const entries = await all(admin.key, { target_type: 'role', target_id: role.id });
    expect(entries.map((e) => e.action)).toEqual(['role.delete', 'role.update', 'role.create']);
    for (const e of entries) {
      expect(e).toMatchObject({
        actor: { id: admin.userId, name: admin.username },
        credential: 'api_key',
        credential_id: keyId,
        target_type: 'role',
        target_id: role.id,
        team_id: null,
        ip: IP,
      });
      expect(Date.parse(e.at)).toBeGreaterThan(Date.now() - 60_000);
    }
    const [deleted, updated, createdEntry] = entries;
    expect(createdEntry!.details).toEqual({ name: role.name, permissions: ['devices:read'] });
    expect(updated!.details).toEqual({ permissions: { from: ['devices:read'], to: ['devices:read', 'tunnels:read'] } });
    expect(deleted!.details).toEqual({ name: role.name, permissions: ['devices:read', 'tunnels:read'] });
  });

  it('a session names the session as the credential', async () => {
    const s = await sessionUser(['admin']);
    const sessionId = await env.DB.prepare('SELECT id FROM sessions WHERE user_id = ?1').bind(s.userId).first<string>('id');
    const res = await api('/api/v1/roles', { key: s.token, json: { name: `Session ${randomId(3)}`, permissions: [] }, headers: from });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const [entry] = await all(s.token, { target_id: id });
    expect(entry).toMatchObject({ action: 'role.create', actor: { id: s.userId, name: s.username }, credential: 'session', credential_id: sessionId, ip: IP });
  });

  it('a refused change records nothing', async () => {
    const admin = await userWithKey(['admin']);
    const name = `Twice ${randomId(3)}`;
    expect((await api('/api/v1/roles', { key: admin.key, json: { name, permissions: [] } })).status).toBe(201);
    await expectError(await api('/api/v1/roles', { key: admin.key, json: { name, permissions: [] } }), 409, 'CONFLICT');
    await expectError(await api('/api/v1/roles/viewer', { key: admin.key, method: 'DELETE' }), 403, 'SYSTEM_ROLE');
    expect((await all(admin.key, { actor_id: admin.userId })).map((e) => e.action)).toEqual(['role.create']);
  });

  it('api_key.create and api_key.revoke name the key by id, name and prefix; the key itself is nowhere in the log', async () => {
    const admin = await userWithKey(['admin']);
    const keyId = await keyIdOf(admin.userId);
    const res = await api('/api/v1/api-keys', { key: admin.key, json: { name: 'deploy', permissions: ['devices:read'] }, headers: from });
    expect(res.status).toBe(201);
    const made = (await res.json()) as { id: string; key: string; prefix: string };
    expect((await api(`/api/v1/api-keys/${made.id}`, { key: admin.key, method: 'DELETE', headers: from })).status).toBe(204);
    // Revoking it again changes nothing and records nothing.
    expect((await api(`/api/v1/api-keys/${made.id}`, { key: admin.key, method: 'DELETE', headers: from })).status).toBe(204);

    const entries = await all(admin.key, { target_type: 'api_key', target_id: made.id });
    expect(entries.map((e) => e.action)).toEqual(['api_key.revoke', 'api_key.create']);
    for (const e of entries) expect(e).toMatchObject({ actor: { id: admin.userId }, credential: 'api_key', credential_id: keyId, team_id: null, ip: IP });
    expect(entries[1]!.details).toEqual({ name: 'deploy', prefix: made.prefix, permissions: ['devices:read'], expires_at: null });
    expect(entries[0]!.details).toEqual({ name: 'deploy', prefix: made.prefix, user_id: admin.userId });

    // Neither the key, nor its hash, nor any part past the listed prefix, in any column of any row.
    const rows = (await env.DB.prepare('SELECT * FROM audit_log').all()).results;
    const dump = JSON.stringify(rows);
    expect(dump).toContain(made.prefix);
    for (const secret of [made.key, await sha256Hex(made.key), made.key.slice(made.prefix.length, made.prefix.length + 12), admin.key, admin.key.slice(8, 20)]) {
      expect(dump).not.toContain(secret);
    }
  });

  it("revoking another user's key records whose key it was", async () => {
    const admin = await userWithKey(['admin']);
    const owner = await sessionUser(['viewer']);
    const res = await api('/api/v1/api-keys', { key: owner.token, json: { name: 'theirs' } });
    const made = (await res.json()) as { id: string; prefix: string };
    expect((await api(`/api/v1/api-keys/${made.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    const [revoke, create] = await all(admin.key, { target_id: made.id });
    expect(create).toMatchObject({ action: 'api_key.create', actor: { id: owner.userId }, credential: 'session' });
    expect(revoke).toMatchObject({ action: 'api_key.revoke', actor: { id: admin.userId }, details: { user_id: owner.userId, name: 'theirs', prefix: made.prefix } });
  });
});

describe('the writer (worker/audit.ts)', () => {
  afterEach(() => vi.restoreAllMocks());

  /** An app with one route that records what `record` says, through the real writer and D1. */
  async function call(record: (c: Parameters<typeof audit>[0]) => void, fail = false) {
    const app = newApp();
    app.use('*', writeAudit);
    app.onError((_e, c) => c.json({ error: 'refused' }, 400));
    app.get('/x', (c) => {
      record(c);
      if (fail) throw new Error('refused');
      return c.json({ ok: true });
    });
    const ctx = createExecutionContext();
    const res = await app.request(`${BASE}/x`, { headers: from }, env, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }
  const rowsOf = async (targetType: string) =>
    (await env.DB.prepare('SELECT * FROM audit_log WHERE target_type = ?1 ORDER BY id').bind(targetType).all<Record<string, unknown>>()).results;

  it("writes a request's entries together: in order, with one time and one address", async () => {
    const t = `multi_${randomId(3)}`;
    const res = await call((c) => {
      for (const action of ['team.create', 'member.add', 'member.add', 'invitation.create']) audit(c, { action, targetType: t, teamId: 'some-team', actor: { id: 'u1', name: 'ann' } });
    });
    expect(res.status).toBe(200);
    const rows = await rowsOf(t);
    expect(rows.map((r) => r.action)).toEqual(['team.create', 'member.add', 'member.add', 'invitation.create']);
    expect(new Set(rows.map((r) => r.at)).size).toBe(1);
    expect(rows.every((r) => r.ip === IP && r.team_id === 'some-team' && r.actor_id === 'u1' && r.credential === 'none')).toBe(true);
  });

  it('records the entries of a request that ends in an error', async () => {
    const t = `failed_${randomId(3)}`;
    expect((await call((c) => audit(c, { action: 'login.failed', targetType: t, actor: { id: null, name: 'mallory' } }), true)).status).toBe(400);
    expect((await rowsOf(t)).map((r) => [r.action, r.actor_id, r.actor_name])).toEqual([['login.failed', null, 'mallory']]);
  });

  it(`keeps at most ${AUDIT_MAX_ENTRIES} entries of one request, says so in the log, and still answers`, async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const t = `many_${randomId(3)}`;
    const res = await call((c) => {
      for (let i = 0; i < AUDIT_MAX_ENTRIES + 20; i++) audit(c, { action: 'device.tags', targetType: t, targetId: String(i) });
    });
    expect(res.status).toBe(200);
    const rows = await rowsOf(t);
    expect(rows.map((r) => r.target_id)).toEqual(Array.from({ length: AUDIT_MAX_ENTRIES }, (_, i) => String(i)));
    expect(new Set(rows.map((r) => r.at)).size).toBe(1);
    expect(errors).toHaveBeenCalledTimes(20);
  });

  it('cuts long strings and oversized details, so a request stays within one bounded statement', async () => {
    const t = `long_${randomId(3)}`;
    await call((c) => {
      audit(c, { action: 'tunnel.update', targetType: t, targetId: 'x'.repeat(5000), details: { call: 'y'.repeat(5000), n: 3, list: Array.from({ length: 80 }, (_, i) => i) } });
      audit(c, { action: 'tunnel.update', targetType: t, details: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'z'.repeat(200)])) });
    });
    const [first, second] = await rowsOf(t);
    expect((first!.target_id as string).length).toBe(AUDIT_STRING_MAX);
    const details = JSON.parse(first!.details as string) as { call: string; n: number; list: number[] };
    expect(details.call).toBe(`${'y'.repeat(AUDIT_STRING_MAX - 1)}…`);
    expect(details.n).toBe(3);
    expect(details.list).toHaveLength(50);
    expect(JSON.parse(second!.details as string)).toEqual({ truncated: true });
  });

  it('a write that fails is logged without the entries and never turns the answer into a 500', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const t = `broken_${randomId(3)}`;
    const res = await call((c) => {
      audit(c, { action: 'variable.update', targetType: t, details: { name: 'DB_PASSWORD', level: 'team', secret: true, note: 'hunter2-not-a-value' } });
      // An entry the writer cannot store (no action): the whole write fails.
      audit(c, { action: undefined as unknown as string, targetType: t });
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(await rowsOf(t)).toEqual([]);
    expect(errors).toHaveBeenCalledTimes(1);
    const logged = JSON.stringify(errors.mock.calls);
    expect(logged).toContain('audit log write failed');
    expect(logged).not.toContain('hunter2');
    expect(logged).not.toContain('DB_PASSWORD');
  });
});

describe('GET /api/v1/audit: who sees which entries', () => {
  it('instance admins see every entry; a team admin only their teams\'; a plain member none; team-less entries only instance admins', async () => {
    const teamA = await makeTeam('A');
    const teamB = await makeTeam('B');
    const t = `vis_${randomId(3)}`;
    await seed([
      { team_id: teamA, target_type: t, target_id: 'a1' },
      { team_id: teamB, target_type: t, target_id: 'b1' },
      { team_id: null, target_type: t, target_id: 'none1', action: 'login' },
      { team_id: teamA, target_type: t, target_id: 'a2' },
      { team_id: TEST_TEAM, target_type: t, target_id: 'test1' },
    ]);
    const ids = async (key: string, q: Record<string, string> = {}) => (await all(key, { target_type: t, ...q })).map((e) => e.target_id);

    const root = await userWithKey(['admin']);
    expect(await ids(root.key)).toEqual(['test1', 'a2', 'none1', 'b1', 'a1']);
    expect(await ids(root.key, { team_id: teamB })).toEqual(['b1']);
    // Entries of a team that is gone stay readable by id; an unknown id is simply empty.
    expect(await ids(root.key, { team_id: 'no-such-team' })).toEqual([]);

    // An operator (audit:read) who administers A, and is a plain member of TEST_TEAM.
    const adminA = await member(['operator'], { [teamA]: 'admin', [TEST_TEAM]: 'member' });
    expect(await ids(adminA.key)).toEqual(['a2', 'a1']);
    expect(await ids(adminA.key, { team_id: teamA })).toEqual(['a2', 'a1']);
    // Another team is not there for them (404 Team, as everywhere); their member team is 403.
    const hidden = await expectError(await api(`/api/v1/audit?team_id=${teamB}`, { key: adminA.key }), 404, 'NOT_FOUND');
    expect(hidden.error).toBe('Team not found');
    const role = await expectError(await api(`/api/v1/audit?team_id=${TEST_TEAM}`, { key: adminA.key }), 403, 'TEAM_ROLE_REQUIRED');
    expect(role.details).toMatchObject({ team_id: TEST_TEAM, role: 'member', required: 'admin' });

    // An owner counts as an admin.
    const ownerB = await member(['operator'], { [teamB]: 'owner' });
    expect(await ids(ownerB.key)).toEqual(['b1']);

    // A plain member of A: an empty page without team_id, 403 with it.
    const memberA = await member(['operator'], { [teamA]: 'member' });
    expect(await page(memberA.key, { target_type: t })).toEqual({ entries: [], next_before: null });
    await expectError(await api(`/api/v1/audit?team_id=${teamA}`, { key: memberA.key }), 403, 'TEAM_ROLE_REQUIRED');
  });

  it('a team admin without the second factor their team requires sees none of its entries', async () => {
    const strict = await makeTeam('Strict', true);
    const t = `2fa_${randomId(3)}`;
    await seed([{ team_id: strict, target_type: t }]);
    const admin = await member(['operator'], { [strict]: 'admin' });
    expect(await page(admin.key, { target_type: t })).toEqual({ entries: [], next_before: null });
    await expectError(await api(`/api/v1/audit?team_id=${strict}`, { key: admin.key }), 403, 'TWO_FACTOR_REQUIRED');
  });

  it('needs audit:read: a viewer who administers a team gets 403, no credential 401', async () => {
    const teamA = await makeTeam('V');
    const viewer = await member(['viewer'], { [teamA]: 'owner' });
    const body = await expectError(await api('/api/v1/audit', { key: viewer.key }), 403, 'FORBIDDEN');
    expect(body.details.required).toEqual(['audit:read']);
    await expectError(await api('/api/v1/audit'), 401, 'UNAUTHORIZED');
  });
});

describe('GET /api/v1/audit: filters', () => {
  it('action exact or by prefix, actor_id, target_type and target_id, from (inclusive) and to (exclusive)', async () => {
    const root = await userWithKey(['admin']);
    const t = `flt_${randomId(3)}`;
    const T1 = Date.parse('2024-03-01T00:00:00Z');
    const T2 = Date.parse('2024-03-02T00:00:00Z');
    const T3 = Date.parse('2024-03-03T00:00:00Z');
    await seed([
      { action: 'role.create', actor_id: 'ann', target_type: t, target_id: 'r1', at: T1 },
      { action: 'role.update', actor_id: 'bob', target_type: t, target_id: 'r1', at: T2 },
      { action: 'roles.sync', actor_id: 'ann', target_type: t, target_id: 'r2', at: T2 },
      { action: 'api_key.create', actor_id: 'ann', target_type: t, target_id: 'k1', at: T3 },
      { action: 'apiXkey.create', actor_id: 'ann', target_type: t, target_id: 'k2', at: T3 },
    ]);
    const ids = async (q: Record<string, string>) => (await all(root.key, { target_type: t, ...q })).map((e) => e.target_id);

    expect(await ids({ action: 'role.update' })).toEqual(['r1']);
    // "role." is whole segments: not roles.sync; "_" is a character, not a wildcard.
    expect((await all(root.key, { target_type: t, action: 'role.' })).map((e) => e.action)).toEqual(['role.update', 'role.create']);
    expect(await ids({ action: 'api_key.' })).toEqual(['k1']);
    expect(await ids({ action: 'role' })).toEqual([]);
    expect(await ids({ actor_id: 'bob' })).toEqual(['r1']);
    expect(await ids({ actor_id: 'ann', target_id: 'r1' })).toEqual(['r1']);
    expect(await ids({ from: '2024-03-02T00:00:00Z' })).toEqual(['k2', 'k1', 'r2', 'r1']);
    expect(await ids({ to: '2024-03-02T00:00:00Z' })).toEqual(['r1']);
    expect(await ids({ from: '2024-03-02T00:00:00+00:00', to: '2024-03-03T00:00:00Z' })).toEqual(['r2', 'r1']);
    expect(await ids({ from: '2024-03-02T01:00:00+01:00', to: '2024-03-02T01:00:00+01:00' })).toEqual([]);
    expect((await all(root.key, { target_type: t, action: 'role.create' }))[0]!.at).toBe('2024-03-01T00:00:00.000Z');
  });

  it('refuses bad filter values with 400 and says which', async () => {
    const root = await userWithKey(['admin']);
    const bad: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['limit=1e1', 'limit'],
      ['limit=2.5', 'limit'],
      ['before=0', 'before'],
      ['before=-5', 'before'],
      ['action=Role.Create', 'action'],
      ['action=role.%25', 'action'],
      ['action=.role', 'action'],
      ['from=yesterday', 'from'],
      ['to=2024-13-01T00:00:00Z', 'to'],
      ['from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z', 'from'],
      [`target_id=${'x'.repeat(300)}`, 'target_id'],
      ['team_id=', 'team_id'],
    ];
    for (const [query, field] of bad) {
      const body = await expectError(await api(`/api/v1/audit?${query}`, { key: root.key }), 400, 'VALIDATION_ERROR');
      expect({ query, paths: (body.details.issues as { path: string }[]).map((i) => i.path) }).toEqual({ query, paths: [field] });
    }
  });
});

describe('GET /api/v1/audit: paging', () => {
  it('newest first, limit per page, before = the last page\'s next_before, null at the end', async () => {
    const root = await userWithKey(['admin']);
    const t = `pg_${randomId(3)}`;
    await seed(Array.from({ length: 7 }, (_, i) => ({ target_type: t, target_id: `e${i}` })));
    const p1 = await page(root.key, { target_type: t, limit: 3 });
    expect(p1.entries.map((e) => e.target_id)).toEqual(['e6', 'e5', 'e4']);
    expect(p1.next_before).toBe(p1.entries[2]!.id);
    const p2 = await page(root.key, { target_type: t, limit: 3, before: p1.next_before! });
    expect(p2.entries.map((e) => e.target_id)).toEqual(['e3', 'e2', 'e1']);
    const p3 = await page(root.key, { target_type: t, limit: 3, before: p2.next_before! });
    expect(p3).toEqual({ entries: [expect.objectContaining({ target_id: 'e0' })], next_before: null });
    // A page that ends exactly at the last entry says so too.
    const exact = await page(root.key, { target_type: t, limit: 4, before: p1.next_before! });
    expect(exact.entries).toHaveLength(4);
    expect(exact.next_before).toBeNull();
    const ids = [...p1.entries, ...p2.entries, ...p3.entries].map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
  });

  it('pages 50 by default and 100 at most', async () => {
    const root = await userWithKey(['admin']);
    const t = `big_${randomId(3)}`;
    await seed(Array.from({ length: 120 }, (_, i) => ({ target_type: t, target_id: `e${i}` })));
    const first = await page(root.key, { target_type: t });
    expect(first.entries).toHaveLength(50);
    expect(first.entries[0]!.target_id).toBe('e119');
    const most = await page(root.key, { target_type: t, limit: 100 });
    expect(most.entries).toHaveLength(100);
    expect((await page(root.key, { target_type: t, limit: 100, before: most.next_before! })).entries).toHaveLength(20);
  });

  it('a team admin pages through their own teams only', async () => {
    const teamA = await makeTeam('PA');
    const teamB = await makeTeam('PB');
    const t = `pgt_${randomId(3)}`;
    await seed(Array.from({ length: 9 }, (_, i) => ({ target_type: t, target_id: `e${i}`, team_id: i % 3 === 0 ? teamB : i % 3 === 1 ? teamA : null })));
    const adminA = await member(['operator'], { [teamA]: 'admin' });
    const p1 = await page(adminA.key, { target_type: t, limit: 2 });
    expect(p1.entries.map((e) => e.target_id)).toEqual(['e7', 'e4']);
    const p2 = await page(adminA.key, { target_type: t, limit: 2, before: p1.next_before! });
    expect(p2).toEqual({ entries: [expect.objectContaining({ target_id: 'e1', team_id: teamA })], next_before: null });
  });
});
