// Pipetower's API at /api (shared/seeds/pipetower-api.txt): every example request of the seed
// for account, teams, servers and variables, sent as written (only the host changed) against
// rows shaped like the seed's own examples, checked against the documented shapes (strict zod)
// and values; Laravel's pagination and errors; and the team rule: a user of another team sees
// neither the team nor its servers, and gets the same 404 as for an id that does not exist.
// Secrets are sealed in D1 with the real secret box; no answer ever carries their plaintext.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { randomId, randomToken, sha256Hex } from '../../worker/auth/crypto.ts';
import { API_KEY_PREFIX } from '../../worker/auth/principal.ts';
import { seal } from '../../worker/auth/secret-box.ts';
import {
  PipetowerAccountSchema,
  PipetowerErrorSchema,
  PipetowerServerSchema,
  PipetowerStatusSchema,
  PipetowerTeamSchema,
  PipetowerVariableSchema,
  pipetowerList,
} from '../../shared/api/pipetower.ts';
import { SECRET_MASK } from '../../shared/api/variables.ts';
import { BASE, TEST_TEAM } from './helpers.ts';
import { sessionUser, withEnv } from './auth-helpers.ts';
import { insertDevice } from './device-helpers.ts';

const HOST = new URL(BASE).hostname;
const at = (iso: string) => Date.parse(iso);

/** Every body this file received, to show at the end that no secret's plaintext was ever in one. */
const bodies: string[] = [];
/** Plaintexts and sealed forms of the secrets seeded below. */
const secrets: string[] = [];

/** A request as the seed's curl examples send it: Bearer token and the two JSON headers. */
async function call(path: string, token?: string, init: { method?: string; base?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/json', ...init.headers };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await SELF.fetch(`${init.base ?? BASE}${path}`, { method: init.method ?? 'GET', headers });
  const text = await res.text();
  bodies.push(text);
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body };
}

async function insertUser(u: { id?: string; username: string; roles: string[]; name?: string; email?: string | null; timezone?: string; verified?: boolean; totp?: boolean; created?: number; updated?: number | null }) {
  const id = u.id ?? randomId(8);
  await env.DB.prepare(
    'INSERT INTO users (id, username, email, password_hash, roles, name, timezone, email_verified, totp_enabled_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)',
  )
    .bind(id, u.username, u.email ?? null, 'unusable', JSON.stringify(u.roles), u.name ?? '', u.timezone ?? 'UTC', u.verified ? 1 : 0, u.totp ? Date.now() : null, u.created ?? Date.now(), u.updated ?? null)
    .run();
  return id;
}

/** An API key of the user's; `permissions` narrows it. */
async function keyFor(userId: string, permissions: string[] | null = null) {
  const key = randomToken(API_KEY_PREFIX);
  await env.DB.prepare('INSERT INTO api_keys (id, user_id, name, prefix, key_hash, permissions, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)')
    .bind(randomId(8), userId, 'pipetower', key.slice(0, 8), await sha256Hex(key), permissions && JSON.stringify(permissions), Date.now())
    .run();
  return key;
}

async function insertTeam(id: string, name: string, opts: { created?: number; updated?: number; require2fa?: boolean } = {}) {
  await env.DB.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)')
    .bind(id, name, opts.require2fa ? 1 : 0, opts.created ?? Date.now(), opts.updated ?? Date.now())
    .run();
}

async function member(teamId: string, userId: string, role: 'owner' | 'admin' | 'member', joined = Date.now()) {
  await env.DB.prepare('INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)').bind(teamId, userId, role, joined).run();
}

async function server(opts: { id?: string; team: string; name?: string; online?: boolean; status?: string; registered?: number; updated?: number | null; tags?: [string, string][] }) {
  const id = await insertDevice({ id: opts.id, team: opts.team, name: opts.name, online: opts.online, status: opts.status ?? 'approved' });
  await env.DB.prepare('UPDATE devices SET registered_at = ?2, updated_at = ?3 WHERE id = ?1')
    .bind(id, opts.registered ?? Date.now(), opts.updated ?? null)
    .run();
  for (const [name, color] of opts.tags ?? []) await env.DB.prepare('INSERT INTO device_tags (device_id, name, color) VALUES (?1, ?2, ?3)').bind(id, name, color).run();
  return id;
}

let varClock = at('2023-01-01T00:00:00Z');
/** A variable at one level; a secret is sealed as the variables routes seal it ("variable:<id>"). */
async function variable(owner: { user?: string; team?: string; device?: string }, name: string, value: string, secret = false) {
  const id = randomId(8);
  const level = owner.user ? 'user' : owner.team ? 'team' : 'device';
  const sealed = secret ? await seal(env, value, `variable:${id}`) : null;
  if (sealed) secrets.push(value, sealed);
  varClock += 1000;
  await env.DB.prepare(
    'INSERT INTO variables (id, level, user_id, team_id, device_id, name, secret, value, sealed, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)',
  )
    .bind(id, level, owner.user ?? null, owner.team ?? null, owner.device ?? null, name, secret ? 1 : 0, secret ? null : value, sealed, varClock)
    .run();
}

// The seed's own example objects, with the seed's ids, names and dates.
const ACME = 'n80b40';
const JOE = 'e86bn6';
const PIPETOWER = 'r0em4n';
const OTHER_TEAM = 'globex';

let joe: string; // owner of Acme, the seed's account
let sarah: string; // admin of Acme
let bob: string; // a member of Globex only
let instanceAdmin: string;
let noPermissions: string; // a member of Acme whose role grants nothing
let narrowed: string; // Joe's key narrowed to devices:read
let globexServer: string;
let pendingServer: string;

beforeAll(async () => {
  await insertTeam(ACME, 'Acme', { created: at('2023-08-12T07:05:53Z'), updated: at('2023-09-10T13:10:02Z') });
  await insertTeam(OTHER_TEAM, 'Globex');
  await insertUser({
    id: JOE,
    username: 'jbloggs',
    roles: ['viewer'],
    name: 'Joe Bloggs',
    email: 'jbloggs@pipetower.com',
    timezone: 'UTC',
    verified: true,
    totp: true,
    created: at('2023-04-09T10:56:38Z'),
    updated: at('2023-07-29T13:24:11Z'),
  });
  const sarahId = await insertUser({ username: 'sjohnson', roles: ['operator'], name: 'Sarah Johnson', email: 'sjohnson@pipetower.com', totp: true });
  await member(ACME, JOE, 'owner', at('2023-08-12T07:05:53Z'));
  await member(ACME, sarahId, 'admin', at('2023-08-13T07:05:53Z'));
  joe = await keyFor(JOE);
  sarah = await keyFor(sarahId);
  narrowed = await keyFor(JOE, ['devices:read']);

  const bobId = await insertUser({ username: 'bob', roles: ['viewer'], email: 'bob@globex.test' });
  await member(OTHER_TEAM, bobId, 'owner');
  bob = await keyFor(bobId);
  const rootId = await insertUser({ username: 'root', roles: ['admin'] });
  instanceAdmin = await keyFor(rootId);
  const nobodyId = await insertUser({ username: 'nobody', roles: [] });
  await member(ACME, nobodyId, 'member');
  noPermissions = await keyFor(nobodyId);

  await server({
    id: PIPETOWER,
    team: ACME,
    name: 'Pipetower',
    online: true,
    registered: at('2023-03-16T09:21:59Z'),
    updated: at('2023-10-03T17:11:03Z'),
    tags: [['prod', '#38bdf8']],
  });
  pendingServer = await server({ team: ACME, status: 'pending' });
  globexServer = await server({ team: OTHER_TEAM, name: 'globex-1', tags: [['staging', '#aabbcc']] });

  // The seed's variables at each level of Acme's, and others of Globex's that Acme must never see.
  for (const owner of [{ user: JOE }, { team: ACME }, { device: PIPETOWER }]) {
    await variable(owner, 'SYSTEM_USER', 'morpheus');
    await variable(owner, 'APP_KEY', `acme-plaintext-${randomId(6)}`, true);
  }
  await variable({ team: OTHER_TEAM }, 'GLOBEX_ONLY', 'globex-team-value');
  await variable({ device: globexServer }, 'GLOBEX_SERVER', `globex-plaintext-${randomId(6)}`, true);
  await variable({ user: bobId }, 'BOB_ONLY', 'bob-value');
});

/** The seed's example objects, as the relay must answer them (host and port: the relay's). */
const seedAccount = {
  id: JOE,
  name: 'Joe Bloggs',
  email: 'jbloggs@pipetower.com',
  timezone: 'UTC',
  email_verified: true,
  '2fa_enabled': true,
  created_at: '2023-04-09T10:56:38+00:00',
  updated_at: '2023-07-29T13:24:11+00:00',
};
const seedServer = {
  id: PIPETOWER,
  team_id: ACME,
  name: 'Pipetower',
  connected: true,
  host: HOST,
  port: '80',
  tags: [{ name: 'prod', color: '#38bdf8' }],
  created_at: '2023-03-16T09:21:59+00:00',
  updated_at: '2023-10-03T17:11:03+00:00',
};
const seedTeam = {
  id: ACME,
  name: 'Acme',
  members: [
    { name: 'Joe Bloggs', email: 'jbloggs@pipetower.com', role: 'owner', '2fa_enabled': true },
    { name: 'Sarah Johnson', email: 'sjohnson@pipetower.com', role: 'admin', '2fa_enabled': true },
    // Acme's third member here; the seed shows two.
    { name: 'nobody', email: null, role: 'member', '2fa_enabled': false },
  ],
  created_at: '2023-08-12T07:05:53+00:00',
  updated_at: '2023-09-10T13:10:02+00:00',
};
const seedVars = [
  { secret: false, name: 'SYSTEM_USER', value: 'morpheus' },
  { secret: true, name: 'APP_KEY', value: '***' },
];
const oneMeta = (total: number) => ({ current_page: 1, from: total ? 1 : null, last_page: 1, per_page: 15, to: total || null, total });

describe('the seed\'s example requests', () => {
  // The seed's curl lines, in its order, with `:id` filled in: [path as written, schema, the seed's example answer].
  const examples: [string, z.ZodType, () => unknown][] = [
    ['/api/status', PipetowerStatusSchema, () => ({ status: 'ok', version: expect.any(String) })],
    ['/api/account', PipetowerAccountSchema, () => seedAccount],
    ['/api/account/vars', pipetowerList(PipetowerVariableSchema), () => ({ data: seedVars, meta: oneMeta(2) })],
    ['/api/servers', pipetowerList(PipetowerServerSchema), () => ({ data: [seedServer], meta: oneMeta(1) })],
    [`/api/servers/:id`, PipetowerServerSchema, () => seedServer],
    [`/api/servers/:id/vars`, pipetowerList(PipetowerVariableSchema), () => ({ data: seedVars, meta: oneMeta(2) })],
    ['/api/teams', pipetowerList(PipetowerTeamSchema), () => ({ data: [seedTeam], meta: oneMeta(1) })],
    [`/api/teams/:id`, PipetowerTeamSchema, () => seedTeam],
    [`/api/teams/:id/vars`, pipetowerList(PipetowerVariableSchema), () => ({ data: seedVars, meta: oneMeta(2) })],
  ];

  for (const [written, schema, expected] of examples) {
    it(`GET ${written} answers the documented shape and the seed's values`, async () => {
      const path = written.replace(':id', written.startsWith('/api/servers') ? PIPETOWER : ACME);
      const res = await call(path, joe);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.type).toMatch(/^application\/json/);
      expect(schema.safeParse(res.body).error).toBeUndefined();
      expect(res.body).toEqual(expected());
    });
  }

  it('accepts a session JWT as the Bearer token too', async () => {
    const user = await sessionUser(['viewer']);
    const res = await call('/api/account', user.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: user.username, email: `${user.username}@example.com`, '2fa_enabled': false, email_verified: false });
    expect(PipetowerAccountSchema.safeParse(res.body).success).toBe(true);
    expect((await call('/api/status', user.token)).status).toBe(200);
  });
});

describe('account', () => {
  it('falls back to the user name, a null e-mail and the creation time where the user has none', async () => {
    const id = await insertUser({ username: 'plain', roles: ['viewer'], created: at('2024-02-03T04:05:06.789Z') });
    const res = await call('/api/account', await keyFor(id));
    expect(res.body).toEqual({
      id,
      name: 'plain',
      email: null,
      timezone: 'UTC',
      email_verified: false,
      '2fa_enabled': false,
      created_at: '2024-02-03T04:05:06+00:00',
      updated_at: '2024-02-03T04:05:06+00:00',
    });
  });

  it('shows only the caller\'s own user variables', async () => {
    const res = await call('/api/account/vars', bob);
    expect(res.body).toEqual({ data: [{ secret: false, name: 'BOB_ONLY', value: 'bob-value' }], meta: oneMeta(1) });
  });
});

describe('servers', () => {
  it('host and port are the relay\'s, as the API was called: 443 for https without a port', async () => {
    expect((await call(`/api/servers/${PIPETOWER}`, joe, { base: 'https://relay.example.com' })).body).toMatchObject({ host: 'relay.example.com', port: '443' });
    expect((await call(`/api/servers/${PIPETOWER}`, joe, { base: 'https://relay.example.com:8443' })).body).toMatchObject({ host: 'relay.example.com', port: '8443' });
    expect((await call('/api/servers', joe, { base: 'http://127.0.0.1:8787' })).body.data[0]).toMatchObject({ host: '127.0.0.1', port: '8787' });
  });

  it('only approved devices are servers; a pending one is neither listed nor found', async () => {
    const ids = (await call('/api/servers', instanceAdmin)).body.data.map((s: { id: string }) => s.id);
    expect(ids).toContain(PIPETOWER);
    expect(ids).not.toContain(pendingServer);
    expect(await call(`/api/servers/${pendingServer}`, instanceAdmin)).toMatchObject({ status: 404, body: { message: 'Not found.' } });
    expect((await call(`/api/servers/${pendingServer}/vars`, instanceAdmin)).status).toBe(404);
  });

  it('lists tags by name, and updated_at falls back to the registration time', async () => {
    const id = await server({ team: OTHER_TEAM, name: 'tagged', registered: at('2024-05-06T07:08:09Z'), tags: [['zeta', '#000000'], ['alpha', '#ffffff']] });
    const res = await call(`/api/servers/${id}`, bob);
    expect(res.body).toMatchObject({
      tags: [
        { name: 'alpha', color: '#ffffff' },
        { name: 'zeta', color: '#000000' },
      ],
      connected: false,
      created_at: '2024-05-06T07:08:09+00:00',
      updated_at: '2024-05-06T07:08:09+00:00',
    });
    expect(PipetowerServerSchema.safeParse(res.body).success).toBe(true);
  });
});

describe('teams', () => {
  it('an instance admin sees every team and every server, and reads any team\'s variables', async () => {
    const teams = (await call('/api/teams', instanceAdmin)).body.data.map((t: { id: string }) => t.id);
    expect(teams).toEqual(expect.arrayContaining([ACME, OTHER_TEAM, TEST_TEAM]));
    const servers = (await call('/api/servers', instanceAdmin)).body.data.map((s: { id: string }) => s.id);
    expect(servers).toEqual(expect.arrayContaining([PIPETOWER, globexServer]));
    expect((await call(`/api/teams/${OTHER_TEAM}/vars`, instanceAdmin)).body.data).toEqual([{ secret: false, name: 'GLOBEX_ONLY', value: 'globex-team-value' }]);
    // Even an instance admin gets 404 for a team that does not exist.
    expect(await call('/api/teams/no-such-team', instanceAdmin)).toMatchObject({ status: 404, body: { message: 'Not found.' } });
    expect((await call('/api/teams/no-such-team/vars', instanceAdmin)).status).toBe(404);
  });

  it('a team that requires 2FA is left out of the lists of a member without it, and says why when asked directly', async () => {
    await insertTeam('strict', 'Strict', { require2fa: true });
    const userId = await insertUser({ username: 'no2fa', roles: ['viewer'] });
    await member('strict', userId, 'member');
    const strictServer = await server({ team: 'strict' });
    const key = await keyFor(userId);
    expect((await call('/api/teams', key)).body).toEqual({ data: [], meta: oneMeta(0) });
    expect((await call('/api/servers', key)).body).toEqual({ data: [], meta: oneMeta(0) });
    const direct = await call('/api/teams/strict', key);
    expect(direct.status).toBe(403);
    expect(direct.body.message).toMatch(/two-factor/);
    expect(PipetowerErrorSchema.safeParse(direct.body).success).toBe(true);
    expect((await call(`/api/servers/${strictServer}`, key)).status).toBe(403);
  });
});

describe('team isolation', () => {
  it('a user of another team does not see Acme or its servers in lists', async () => {
    const teams = await call('/api/teams', bob);
    expect(teams.body.data.map((t: { id: string }) => t.id)).toEqual([OTHER_TEAM]);
    expect(teams.body.meta.total).toBe(1);
    const servers = await call('/api/servers', bob);
    const ids = servers.body.data.map((s: { id: string }) => s.id);
    expect(ids).toContain(globexServer);
    expect(ids).not.toContain(PIPETOWER);
    expect(servers.body.data.every((s: { team_id: string }) => s.team_id === OTHER_TEAM)).toBe(true);
    expect(servers.body.meta.total).toBe(ids.length);
    // And Acme's member sees none of Globex's.
    const acme = (await call('/api/servers', joe)).body.data.map((s: { id: string }) => s.id);
    expect(acme).not.toContain(globexServer);
  });

  it('gets for Acme\'s team and server exactly the 404 of an id that does not exist', async () => {
    const missing = await call('/api/servers/0000000000000000000000000000000000000000', bob);
    expect(missing).toMatchObject({ status: 404, body: { message: 'Not found.' } });
    for (const path of [`/api/servers/${PIPETOWER}`, `/api/servers/${PIPETOWER}/vars`, `/api/teams/${ACME}`, `/api/teams/${ACME}/vars`]) {
      const res = await call(path, bob);
      expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 404, body: { message: 'Not found.' } });
    }
    // The other way round too.
    expect((await call(`/api/servers/${globexServer}/vars`, joe)).status).toBe(404);
    expect((await call(`/api/teams/${OTHER_TEAM}`, joe)).status).toBe(404);
  });
});

describe('secrets', () => {
  it('are "***" at every level, and neither their plaintext nor their sealed form is in any answer', async () => {
    for (const path of ['/api/account/vars', `/api/teams/${ACME}/vars`, `/api/servers/${PIPETOWER}/vars`]) {
      const res = await call(path, joe);
      expect(res.body.data.find((v: { name: string }) => v.name === 'APP_KEY')).toEqual({ secret: true, name: 'APP_KEY', value: SECRET_MASK });
    }
    const res = await call(`/api/servers/${globexServer}/vars`, instanceAdmin);
    expect(res.body.data).toEqual([{ secret: true, name: 'GLOBEX_SERVER', value: '***' }]);
    // The D1 rows do hold the secrets, sealed: the check below would catch a leak.
    const { results } = await env.DB.prepare('SELECT sealed FROM variables WHERE secret = 1').all<{ sealed: string }>();
    expect(results.length).toBe(4);
    expect(secrets.length).toBe(8);
  });
});

describe('pagination', () => {
  const PAGED = 'paged';
  let pagedKey: string;
  let order: string[];
  beforeAll(async () => {
    await insertTeam(PAGED, 'Paged');
    const userId = await insertUser({ username: 'pager', roles: ['viewer'] });
    await member(PAGED, userId, 'member');
    pagedKey = await keyFor(userId);
    order = [];
    // Registered out of insertion order, so the list's order is the registration time's.
    for (let i = 0; i < 17; i++) order.push(await server({ team: PAGED, name: `s${i}`, registered: at('2024-01-01T00:00:00Z') + ((i * 7) % 17) * 1000 }));
    order = order.map((id, i) => [id, (i * 7) % 17] as const).sort((a, b) => a[1] - b[1]).map(([id]) => id);
  });

  const ids = (body: { data: { id: string }[] }) => body.data.map((s) => s.id);

  it('pages 15 by default, with Laravel\'s meta; past the end is an empty page with the true meta', async () => {
    const first = await call('/api/servers', pagedKey);
    expect(first.body.meta).toEqual({ current_page: 1, from: 1, last_page: 2, per_page: 15, to: 15, total: 17 });
    expect(ids(first.body)).toEqual(order.slice(0, 15));
    const second = await call('/api/servers?page=2', pagedKey);
    expect(second.body.meta).toEqual({ current_page: 2, from: 16, last_page: 2, per_page: 15, to: 17, total: 17 });
    expect(ids(second.body)).toEqual(order.slice(15));
    const past = await call('/api/servers?page=3', pagedKey);
    expect(past).toMatchObject({ status: 200, body: { data: [], meta: { current_page: 3, from: null, last_page: 2, per_page: 15, to: null, total: 17 } } });
    const far = await call(`/api/servers?page=${Number.MAX_SAFE_INTEGER}&limit=100`, pagedKey);
    expect(far).toMatchObject({ status: 200, body: { data: [], meta: { current_page: Number.MAX_SAFE_INTEGER, total: 17, last_page: 1 } } });
  });

  it('limit 1 page 2 is the second item, and walking limit 4 visits each server once, in order', async () => {
    const one = await call('/api/servers?limit=1&page=2', pagedKey);
    expect(one.body).toEqual({ data: [expect.objectContaining({ id: order[1] })], meta: { current_page: 2, from: 2, last_page: 17, per_page: 1, to: 2, total: 17 } });
    const walked: string[] = [];
    for (let page = 1; page <= 5; page++) walked.push(...ids((await call(`/api/servers?limit=4&page=${page}`, pagedKey)).body));
    expect(walked).toEqual(order);
    const all = await call('/api/servers?limit=100', pagedKey);
    expect(all.body.meta).toEqual({ current_page: 1, from: 1, last_page: 1, per_page: 100, to: 17, total: 17 });
    // An empty value is the default, as Laravel turns it into null.
    expect((await call('/api/servers?limit=&page=', pagedKey)).body.meta).toMatchObject({ per_page: 15, current_page: 1 });
  });

  it('pages teams and variables the same way', async () => {
    for (let i = 0; i < 3; i++) await variable({ team: PAGED }, `VAR_${i}`, `v${i}`);
    const res = await call(`/api/teams/${PAGED}/vars?limit=2&page=2`, pagedKey);
    expect(res.body).toEqual({ data: [{ secret: false, name: 'VAR_2', value: 'v2' }], meta: { current_page: 2, from: 3, last_page: 2, per_page: 2, to: 3, total: 3 } });
    const teams = await call('/api/teams?limit=1&page=1', instanceAdmin);
    expect(teams.body.data).toHaveLength(1);
    expect(teams.body.meta.total).toBeGreaterThanOrEqual(4);
  });

  it('bad limit or page is 422 in Laravel\'s form, on every list route', async () => {
    const cases: [string, Record<string, string[]>][] = [
      ['limit=0', { limit: ['The limit field must be between 1 and 100.'] }],
      ['limit=101', { limit: ['The limit field must be between 1 and 100.'] }],
      ['limit=-5', { limit: ['The limit field must be between 1 and 100.'] }],
      ['limit=abc', { limit: ['The limit field must be an integer.'] }],
      ['limit=1.5', { limit: ['The limit field must be an integer.'] }],
      ['page=0', { page: ['The page field must be at least 1.'] }],
      ['page=x', { page: ['The page field must be an integer.'] }],
      ['page=99999999999999999999', { page: ['The page field must be an integer.'] }],
    ];
    const lists = ['/api/account/vars', '/api/teams', `/api/teams/${ACME}/vars`, '/api/servers', `/api/servers/${PIPETOWER}/vars`];
    for (const list of lists) {
      for (const [query, errors] of cases) {
        const res = await call(`${list}?${query}`, joe);
        expect({ list, query, status: res.status, body: res.body }).toEqual({ list, query, status: 422, body: { message: Object.values(errors)[0]![0], errors } });
        expect(PipetowerErrorSchema.safeParse(res.body).success).toBe(true);
      }
    }
    const both = await call('/api/servers?limit=0&page=abc', joe);
    expect(both).toMatchObject({
      status: 422,
      body: {
        message: 'The limit field must be between 1 and 100. (and 1 more error)',
        errors: { limit: ['The limit field must be between 1 and 100.'], page: ['The page field must be an integer.'] },
      },
    });
  });
});

describe('errors', () => {
  const ROUTES = [
    '/api/status',
    '/api/account',
    '/api/account/vars',
    '/api/teams',
    `/api/teams/${ACME}`,
    `/api/teams/${ACME}/vars`,
    '/api/servers',
    `/api/servers/${PIPETOWER}`,
    `/api/servers/${PIPETOWER}/vars`,
  ];

  it('401 {"message":"Unauthenticated."} without a token, with a bad one, or with a revoked key', async () => {
    const revokedUser = await insertUser({ username: 'revoked', roles: ['admin'] });
    const revoked = await keyFor(revokedUser);
    await env.DB.prepare('UPDATE api_keys SET revoked_at = 1 WHERE user_id = ?1').bind(revokedUser).run();
    for (const path of ROUTES) {
      for (const token of [undefined, 'not-a-token', 'prk_wrong', revoked, '']) {
        const res = await call(path, token);
        expect({ path, token, status: res.status, body: res.body }).toEqual({ path, token, status: 401, body: { message: 'Unauthenticated.' } });
      }
    }
  });

  it('403 {"message":"This action is unauthorized."} without the permission; the account and status need none', async () => {
    const refused = [
      ['/api/account/vars', noPermissions],
      ['/api/teams', noPermissions],
      [`/api/teams/${ACME}`, noPermissions],
      [`/api/teams/${ACME}/vars`, noPermissions],
      ['/api/servers', noPermissions],
      [`/api/servers/${PIPETOWER}`, noPermissions],
      [`/api/servers/${PIPETOWER}/vars`, noPermissions],
      // A key narrowed to devices:read reads servers, not variables or teams.
      ['/api/account/vars', narrowed],
      ['/api/teams', narrowed],
      [`/api/servers/${PIPETOWER}/vars`, narrowed],
    ] as const;
    for (const [path, key] of refused) {
      const res = await call(path, key);
      expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 403, body: { message: 'This action is unauthorized.' } });
    }
    for (const path of ['/api/status', '/api/account']) expect((await call(path, noPermissions)).status).toBe(200);
    expect((await call(`/api/servers/${PIPETOWER}`, narrowed)).status).toBe(200);
    expect((await call('/api/teams', sarah)).status).toBe(200);
  });

  it('any other path under /api/ is Pipetower\'s 404, whatever the credential; /api/v1 keeps its own', async () => {
    for (const [path, method] of [
      ['/api/nope', 'GET'],
      ['/api/actions', 'GET'],
      ['/api/runs/e0k229', 'GET'],
      ['/api/servers/', 'GET'],
      ['/api/teams', 'POST'],
      ['/api/servers', 'DELETE'],
      ['/api', 'GET'],
      ['/api/', 'GET'],
      ['/api/v1x', 'GET'],
    ] as const) {
      for (const token of [joe, undefined]) {
        const res = await call(path, token, { method });
        expect({ path, method, status: res.status, body: res.body }).toEqual({ path, method, status: 404, body: { message: 'Not found.' } });
      }
    }
    const native = await call('/api/v1/nope', joe);
    expect(native.status).toBe(404);
    expect(native.body).toMatchObject({ code: 'NOT_FOUND', error: expect.any(String) });
    expect((await call('/api/v1/auth/me', joe)).status).toBe(200);
  });
});

describe('everything this file received', () => {
  it('never held a secret\'s plaintext or sealed form', () => {
    expect(bodies.length).toBeGreaterThan(100);
    expect(secrets.length).toBe(8);
    for (const s of secrets) expect(bodies.filter((b) => b.includes(s))).toEqual([]);
  });
});

describe('the throttle', () => {
  it("answers 429 Too Many Attempts with Retry-After past the per-credential budget, and counts each credential apart", async () => {
    // Laravel's default is 60 a minute; this app runs with 3, in a window of its own.
    const limited = { PIPETOWER_CALLS_PER_MINUTE: '3' };
    const a = await keyFor(await insertUser({ username: `throttle-a-${randomId(3)}`, roles: ['viewer'] }));
    const b = await keyFor(await insertUser({ username: `throttle-b-${randomId(3)}`, roles: ['viewer'] }));
    const get = (key: string) => withEnv(limited, '/api/status', { headers: { authorization: `Bearer ${key}`, accept: 'application/json' } });
    for (let i = 0; i < 3; i++) expect((await get(a)).status).toBe(200);
    const refused = await get(a);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ message: 'Too Many Attempts.' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await get(b)).status).toBe(200);
    // No credential is not throttled here: it is refused as unauthenticated.
    expect((await withEnv(limited, '/api/status')).status).toBe(401);
  });
});
