// The permission matrix: every route the relay serves, from its own OpenAPI document plus the
// routes of worker/auth/raw-routes.ts (PiTunnel's and tunnel-control's at the relay root,
// Pipetower's under /api, TinyPilot's under /tinypilot/<key>/api/v1, the agents' dial-in), called with every kind of credential, from none
// and forged ones to an admin's session, in the Authorization header and as ?api_key= where a
// route takes that, including users of the matrix device's team in each team role and a user of
// another team. What each answer must be follows from the route's declaration alone: a bad
// credential gets 401, a good one 403 unless its permissions cover the route's; on a route that
// acts in one device or team (x-scope, or a compat route naming the device or team), a user of
// another team gets that layer's "not found" (never 403, so ids cannot be probed), a member whose
// team role is below the route's x-team-role 403 TEAM_ROLE_REQUIRED, everyone else through; and
// nothing gets a 5xx. An operation that declares nothing fails the test. The relay runs in
// workerd with a real agent, so the device RPC routes reach a device and their 2xx is real.
//
// Calls are made harmless rather than undone: writes carry a body no schema accepts (a JSON
// array), so an allowed caller gets 400 and a refused one 401/403/404, all decided before
// anything changes (the device or team is checked before the body). Routes without a body
// (deletes, approvals) name what they act on by an id that does not exist when the caller is
// expected to get through (404), and the real device or team when the caller is expected to be
// refused, so that refusal is the real one. Reads use the real device, tunnel, user, role and
// team, so their 200 is reachable.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, base64url } from 'jose';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { RAW_ROUTES, type RawRoute } from '../../worker/auth/raw-routes.ts';
import { freePort, http, tempDir } from './harness.ts';

let env: DevEnv;
let url: string;
let adminKey: string;
let deviceId: string;

type TeamRole = 'owner' | 'admin' | 'member';

/** A credential as the Authorization header it sends, and the principal it stands for, if valid. */
interface Credential {
  name: string;
  header?: string;
  /** The raw token, for tunnel-control's api_key parameter. */
  token?: string;
  /** null: not a valid credential. */
  permissions: string[] | null;
  narrowed?: boolean;
  /** Its user's role in the matrix device's team; null: not a member (of another team, or of none). */
  teamRole?: TeamRole | null;
}
const credentials: Credential[] = [];

/** Real objects for path parameters. */
const ids = { user: '', role: 'viewer', tunnel: 'matrix-tcp', tunnelPort: 22, team: '' };
/** Ids no object has (hex, so every id schema accepts them), for calls that would change state. */
const MISSING_DEVICE = 'f'.repeat(40);
const MISSING = 'no-such-thing';
const MISSING_VARIABLE = 'MATRIX_NO_SUCH_VARIABLE';
/** A well-formed TinyPilot key no device has, so the relay looks it up (worker/compat/tinypilot.ts). */
const MISSING_TINYPILOT_KEY = `ptp_${'A'.repeat(43)}`;

interface Operation {
  'x-permissions'?: string[];
  'x-self-service'?: boolean;
  'x-public'?: boolean;
  'x-scope'?: string;
  'x-team-role'?: TeamRole;
  requestBody?: unknown;
  parameters?: { name: string; in: string }[];
}

/** The device or team a route acts in (the matrix device or its team), and the team role it needs there. */
interface Scope {
  kind: 'device' | 'team';
  role: TeamRole;
}

/** One row of the matrix: a request, and which declaration it answers to. */
interface Case {
  route: string;
  method: string;
  path: string;
  /** The path naming a device or team that does not exist, for a caller expected to get through a body-less change to it. */
  missingPath?: string;
  body?: string;
  contentType?: string;
  access: { permissions: string[]; selfService: boolean } | 'public' | 'device' | 'path-key' | 'undeclared';
  scope?: Scope;
  errors: RawRoute['errors'];
  /** Use the credential as tunnel-control's api_key parameter rather than a header. */
  asParam?: boolean;
}

/** The permission rule, written out independently of worker/auth/permissions.ts. */
function holds(granted: readonly string[], required: string): boolean {
  return granted.some((g) => g === '*' || g === required || (g.endsWith(':*') && required.startsWith(g.slice(0, -1))));
}

/** The team rule, likewise written out independently of worker/auth/scope.ts. */
const RANK: Record<TeamRole, number> = { member: 1, admin: 2, owner: 3 };
/** What a compat route (which publishes no x-team-role) needs in the team: admin for a "<resource>:admin" permission. */
const teamRoleOf = (permissions: readonly string[]): TeamRole => (permissions.some((p) => p === '*' || /:(admin|\*)$/.test(p)) ? 'admin' : 'member');

const json = (u: string, init: Parameters<typeof http>[1] = {}) => http(`${url}${u}`, { key: adminKey, ...init });

async function created<T = any>(what: string, p: Promise<{ status: number; body: any }>, status = 201): Promise<T> {
  const r = await p;
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as T;
}

async function session(username: string, password: string): Promise<string> {
  return (await created('login', json('/api/v1/auth/login', { key: undefined, json: { username, password } }), 200)).token;
}

/** A session JWT with these claims, signed with `secret` (or not at all, for alg: none). */
async function jwt(claims: { sub: string; jti: string; exp: number }, secret: string | null): Promise<string> {
  if (secret === null) {
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ ...claims, iss: 'pirelay', aud: 'pirelay-api', iat: Math.floor(Date.now() / 1000) })}.`;
  }
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setJti(claims.jti)
    .setIssuer('pirelay')
    .setAudience('pirelay-api')
    .setIssuedAt()
    .setExpirationTime(claims.exp)
    .sign(new TextEncoder().encode(secret));
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; jti: string };

async function setUpCredentials() {
  const roles = (await created<{ roles: { id: string; permissions: string[] }[] }>('roles', json('/api/v1/roles'), 200)).roles;
  const perms = (role: string) => roles.find((r) => r.id === role)!.permissions;
  const secret = JSON.parse(readFileSync(join(env.dir, 'secrets.json'), 'utf8')).SESSION_SECRET as string;
  const bearer = (t: string) => `Bearer ${t}`;
  const user = async (role: string, name = role) => {
    const username = `matrix-${name}`;
    const password = `pw-${name}-matrix-1234`;
    const u = await created('user', json('/api/v1/users', { json: { username, password, roles: [role] } }));
    return { id: u.id as string, username, password };
  };
  /** Made a member of the matrix device's team by its owner (the bootstrap admin), through the teams API. */
  const joinTeam = (username: string, role: TeamRole) => created('member', json(`/api/v1/teams/${ids.team}/members`, { json: { username, role } }));
  /** An API key of the user's own, made with their session. */
  const keyOf = async (u: { username: string; password: string }) =>
    (await created('api key', json('/api/v1/api-keys', { key: await session(u.username, u.password), json: { name: `matrix ${u.username}` } }))).key as string;

  const viewer = await user('viewer');
  const operator = await user('operator');
  const admin = await user('admin');
  ids.user = viewer.id;
  await joinTeam(viewer.username, 'member');
  await joinTeam(operator.username, 'member');
  // Operators, whose global role grants devices:admin and teams:write: the team role decides.
  const member = await user('operator', 'team-member');
  const teamAdmin = await user('operator', 'team-admin');
  const owner = await user('operator', 'team-owner');
  await joinTeam(member.username, 'member');
  await joinTeam(teamAdmin.username, 'admin');
  await joinTeam(owner.username, 'owner');
  // The outsider makes a team of their own and owns it: they administer a team, just not this one.
  const outsider = await user('operator', 'outsider');
  const outsiderKey = await keyOf(outsider);
  await created('team', json('/api/v1/teams', { key: outsiderKey, json: { name: 'Matrix outsiders' } }));

  // An expired key is made the ordinary way, with an expiry a moment from now; it is waited out below.
  const expiring = await created('expiring key', json('/api/v1/api-keys', { json: { name: 'expiring', expires_at: new Date(Date.now() + 1500).toISOString() } }));
  const revoked = await created('key', json('/api/v1/api-keys', { json: { name: 'revoked' } }));
  await created('revoke', json(`/api/v1/api-keys/${revoked.id}`, { method: 'DELETE' }), 204);
  const narrowed = await created('narrowed key', json('/api/v1/api-keys', { json: { name: 'narrowed', permissions: ['devices:read'] } }));

  const adminSession = await session(admin.username, admin.password);
  const loggedOut = await session(admin.username, admin.password);
  await created('logout', json('/api/v1/auth/logout', { key: loggedOut, method: 'POST' }), 204);
  // Claims of a live admin session: only the signature (or its absence) or the expiry is wrong.
  const live = claimsOf(adminSession);
  const future = Math.floor(Date.now() / 1000) + 3600;

  const add = (name: string, token: string | undefined, header: string | undefined, permissions: string[] | null, extra: Partial<Credential> = {}) =>
    credentials.push({ name, token, header: header ?? (token ? bearer(token) : undefined), permissions, ...extra });
  add('no credential', undefined, undefined, null);
  add('garbage bearer', 'not-a-credential', undefined, null);
  add('garbage Basic user', 'prk_garbage', `Basic ${Buffer.from('prk_garbage:').toString('base64')}`, null);
  add('forged JWT (alg: none)', await jwt({ ...live, exp: future }, null), undefined, null);
  add('forged JWT (wrong key)', await jwt({ ...live, exp: future }, 'another-secret-of-at-least-32-characters!'), undefined, null);
  add('expired session', await jwt({ ...live, exp: Math.floor(Date.now() / 1000) - 60 }, secret), undefined, null);
  add('logged-out session', loggedOut, undefined, null);
  add('revoked key', revoked.key, undefined, null);
  add('expired key', expiring.key, undefined, null);
  // The bootstrap admin's key, narrowed: no longer "*", so it acts as what its user is in the team, its owner.
  add('narrowed key (devices:read)', narrowed.key, undefined, ['devices:read'], { narrowed: true, teamRole: 'owner' });
  add('viewer', await session(viewer.username, viewer.password), undefined, perms('viewer'), { teamRole: 'member' });
  add('operator', await session(operator.username, operator.password), undefined, perms('operator'), { teamRole: 'member' });
  // An instance admin ("*"), in no team: acts in every team all the same.
  add('admin', adminSession, undefined, perms('admin'), { teamRole: null });
  add('team member (key)', await keyOf(member), undefined, perms('operator'), { teamRole: 'member' });
  add('team admin (key)', await keyOf(teamAdmin), undefined, perms('operator'), { teamRole: 'admin' });
  add('team owner (key)', await keyOf(owner), undefined, perms('operator'), { teamRole: 'owner' });
  add('other team (key)', outsiderKey, undefined, perms('operator'), { teamRole: null });

  await waitFor('the short-lived key to expire', async () => (await json('/api/v1/auth/me', { key: expiring.key })).status === 401, 10_000);
}

/**
 * Fills path parameters with real objects; `scoped` is what fills the parameter naming the
 * route's device or team (the real one, or one that does not exist).
 */
function fill(path: string, method: string, scoped?: { param: string; value: string }): string {
  return path
    .replace(/\{(\w+)\}/g, (whole, param: string) => {
      if (scoped?.param === param) return scoped.value;
      if (param === 'id') {
        // Pipetower's reads: the device's team and the device itself.
        if (path.startsWith('/api/teams')) return ids.team;
        if (path.startsWith('/api/servers')) return deviceId;
        if (path.startsWith('/api/v1/teams')) return ids.team;
        if (path.startsWith('/api/v1/users')) return method === 'DELETE' ? MISSING : ids.user;
        if (path.startsWith('/api/v1/roles')) return method === 'DELETE' ? MISSING : ids.role;
        if (path.startsWith('/api/v1/api-keys')) return MISSING;
        if (path.startsWith('/api/v1/enrollment-tokens')) return MISSING_DEVICE;
        return deviceId;
      }
      if (param === 'tunnelId') return method === 'DELETE' ? MISSING : ids.tunnel;
      if (param === 'user_id') return method === 'DELETE' ? MISSING : ids.user;
      if (param === 'invitation_id') return MISSING;
      if (param === 'name') return path.includes('/variables/') ? MISSING_VARIABLE : ids.tunnel;
      if (param === 'port') return String(ids.tunnelPort);
      if (param === 'key') return MISSING_TINYPILOT_KEY;
      if (param === 'key_id') return 'f'.repeat(32);
      return whole;
    });
}

function nativeCases(doc: { paths: Record<string, Record<string, Operation>> }): Case[] {
  const cases: Case[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const perms = op['x-permissions'];
      const access: Case['access'] = op['x-public'] === true ? 'public' : Array.isArray(perms) ? { permissions: perms, selfService: op['x-self-service'] === true } : 'undeclared';
      const M = method.toUpperCase();
      // x-scope "device:id": the route acts in the device named by path parameter id, with x-team-role.
      const [kind, param = ''] = (op['x-scope'] ?? '').split(':') as [Scope['kind'] | '', string?];
      const scope: Scope | undefined = kind ? { kind, role: op['x-team-role']! } : undefined;
      const c: Case = { route: `${M} ${path}`, method: M, path: fill(path, M), body: op.requestBody ? '[]' : undefined, contentType: 'application/json', access, scope, errors: 'native' };
      // A body-less change to the device or team itself (approve, delete…), not to something in it
      // named by a later parameter (a tunnel, a member), goes to a missing one for callers let through.
      const lastParam = [...path.matchAll(/\{(\w+)\}/g)].pop()?.[1];
      if (scope && M !== 'GET' && !op.requestBody && lastParam === param) {
        c.missingPath = fill(path, M, { param, value: kind === 'device' ? MISSING_DEVICE : MISSING });
      }
      cases.push(c);
      // Routes that take the credential as ?api_key= too (WebSocket clients) are tried both ways.
      if (op.parameters?.some((p) => p.in === 'query' && p.name === 'api_key')) cases.push({ ...c, route: `${c.route} (api_key=)`, asParam: true });
    }
  }
  return cases;
}
/**
 * The device or team a compat route acts in, from its RAW_ROUTES entry: a deviceParam route names
 * the device; Pipetower's {id} is a team under /api/teams and a server (a device) under
 * /api/servers, as its seed has it.
 */
function rawScope(r: RawRoute): Scope | undefined {
  if (!('permissions' in r.access)) return undefined;
  const role = teamRoleOf(r.access.permissions);
  if (r.deviceParam) return { kind: 'device', role };
  if (r.errors === 'pipetower' && r.path.includes('{id}')) return { kind: r.path.startsWith('/api/teams') ? 'team' : 'device', role };
  return undefined;
}

function rawCases(): Case[] {
  const cases: Case[] = [];
  const accessOf = (r: RawRoute): Case['access'] =>
    'permissions' in r.access ? { permissions: [...r.access.permissions], selfService: false } : 'public' in r.access ? 'public' : 'pathKey' in r.access ? 'path-key' : 'device';
  for (const r of RAW_ROUTES) {
    for (const method of r.methods) {
      // tunnel-control calls without tunnel= or allow= only say "wrong data" (31): harmless once allowed.
      const query = r.deviceParam ? `device_id=${deviceId}` : '';
      const base = { route: `${method} ${r.path}`, method, access: accessOf(r), scope: rawScope(r), errors: r.errors } as const;
      const path = fill(r.path, method);
      if (method === 'GET') cases.push({ ...base, path: query ? `${path}?${query}` : path });
      else cases.push({ ...base, path, body: query, contentType: 'application/x-www-form-urlencoded' });
      if (r.errors === 'tunnel-control' && 'permissions' in r.access) {
        cases.push({ ...base, route: `${base.route} (api_key=)`, path: `${r.path}?${query}`, asParam: true });
      }
    }
  }
  return cases;
}

/** What the declaration says a credential gets from a case. */
type Expected =
  | { kind: 'undeclared' | 'any' | 'device-only' | 'key-only' | 'unauthenticated' | 'allowed' }
  | { kind: 'forbidden'; code: 'FORBIDDEN' | 'NARROWED_API_KEY' }
  /** Not a member of the device's or team's team: the layer's "not found", as for an id that does not exist. */
  | { kind: 'hidden' }
  /** A member below the route's x-team-role. */
  | { kind: 'team-role' };

function expectation(c: Case, cred: Credential): Expected {
  if (c.access === 'undeclared') return { kind: 'undeclared' };
  if (c.access === 'public') return { kind: 'any' };
  if (c.access === 'device') return { kind: 'device-only' };
  if (c.access === 'path-key') return { kind: 'key-only' };
  if (cred.permissions === null) return { kind: 'unauthenticated' };
  const { permissions, selfService } = c.access;
  if (selfService && cred.narrowed) return { kind: 'forbidden', code: 'NARROWED_API_KEY' };
  if (!permissions.every((p) => holds(cred.permissions!, p))) return { kind: 'forbidden', code: 'FORBIDDEN' };
  // Every scoped case names the matrix device or its team; an instance admin ("*") acts in every team.
  if (c.scope && !cred.permissions.includes('*')) {
    if (!cred.teamRole) return { kind: 'hidden' };
    if (RANK[cred.teamRole] < RANK[c.scope.role]) return { kind: 'team-role' };
  }
  return { kind: 'allowed' };
}

interface Outcome {
  route: string;
  credential: string;
  expected: string;
  got: string;
  ok: boolean;
  kind: Expected['kind'];
  status: number;
  case: Case;
  cred: Credential;
}

/** Pipetower's (Laravel's) words for our refusals. */
const PIPETOWER_MESSAGES: Record<string, string> = { UNAUTHORIZED: 'Unauthenticated.', FORBIDDEN: 'This action is unauthorized.', NOT_FOUND: 'Not found.' };
/** Native refusals of a caller (as opposed to answers about the request). */
const REFUSALS = ['FORBIDDEN', 'NARROWED_API_KEY', 'TEAM_ROLE_REQUIRED', 'TWO_FACTOR_REQUIRED'];

/** Whether `status`/`body` is the answer a case's layer gives for a device or team that does not exist. */
function hiddenAnswer(c: Case, status: number, body: any): boolean {
  if (c.errors === 'tunnel-control') return body?.error_code === 31 && body?.success === false && /no device/.test(body?.message);
  if (c.errors === 'pipetower') return status === 404 && body?.message === PIPETOWER_MESSAGES.NOT_FOUND;
  return status === 404 && body?.code === 'NOT_FOUND' && ['Device not found', 'Team not found'].includes(body?.error);
}

/** Whether `status`/`body` is the answer `expected`, in the case's layer. */
function judge(c: Case, cred: Credential, expected: Expected, realPath: boolean, status: number, body: any): Outcome {
  const detail = c.errors === 'tunnel-control' ? ` error_code ${body?.error_code}` : status < 300 ? '' : ` ${c.errors === 'native' ? body?.code : c.errors === 'tinypilot' ? body : body?.message}`;
  const row = (text: string, ok: boolean): Outcome => ({ route: c.route, credential: cred.name, expected: text, got: `${status}${detail}`, ok: ok && status < 500, kind: expected.kind, status, case: c, cred });
  // tunnel-control's seed has no code for the caller's credentials; it answers 401/403 with "wrong data" (31).
  const shaped = (code: string) =>
    c.errors === 'native' ? body?.code === code : c.errors === 'pipetower' ? body?.message === PIPETOWER_MESSAGES[code] : body?.error_code === 31 && body?.success === false;
  switch (expected.kind) {
    case 'undeclared':
      return row('a declaration (x-permissions, x-self-service or x-public)', false);
    case 'any':
      return row('any non-5xx', true);
    // No user credential opens the agents' dial-in; the relay's own 401 names why (e.g. "Unknown device").
    case 'device-only':
      return row('401', status === 401 && typeof body?.code === 'string');
    // No user credential is a TinyPilot key or token: the unknown key's 404 (429 once one address has guessed too often).
    case 'key-only':
      return row('404 Not Found (or 429)', (status === 404 && body === 'Not Found') || status === 429);
    case 'unauthenticated':
      return row('401', status === 401 && shaped('UNAUTHORIZED'));
    case 'forbidden':
      return row('403', status === 403 && shaped(expected.code));
    case 'hidden':
      return row('not found (an unknown id\'s answer)', hiddenAnswer(c, status, body));
    case 'team-role':
      return row('403 TEAM_ROLE_REQUIRED', status === 403 && (c.errors === 'native' ? body?.code === 'TEAM_ROLE_REQUIRED' : shaped('FORBIDDEN')));
    case 'allowed': {
      const refused =
        status === 401 ||
        (status === 403 && (c.errors === 'tunnel-control' ? body?.error_code === 31 : c.errors === 'pipetower' ? shaped('FORBIDDEN') : REFUSALS.includes(body?.code))) ||
        // The real device or team, to a caller let through, is not "not found".
        (c.scope !== undefined && realPath && hiddenAnswer(c, status, body));
      // A caller outside the matrix device's team finds it nowhere, not even in a list.
      const leaked = !cred.teamRole && !cred.permissions?.includes('*') && status < 300 && JSON.stringify(body ?? '').includes(deviceId);
      return row(leaked ? 'nothing of the matrix device' : 'allowed (2xx or a 4xx other than a refusal)', !refused && !leaked);
    }
  }
}

async function call(c: Case, cred: Credential): Promise<Outcome> {
  const expected = expectation(c, cred);
  // A body-less change goes to the real device or team only for a caller who must be refused before it happens.
  const realPath = !(expected.kind === 'allowed' && c.missingPath);
  const headers: Record<string, string> = {};
  let path = realPath ? c.path : c.missingPath!;
  if (c.asParam) {
    if (cred.token) path += `${path.includes('?') ? '&' : '?'}api_key=${encodeURIComponent(cred.token)}`;
  } else if (cred.header) headers.authorization = cred.header;
  if (c.body !== undefined) headers['content-type'] = c.contentType!;
  const r = await http(`${url}${path}`, { method: c.method, headers, body: c.body });
  return judge(c, cred, expected, realPath, r.status, r.body);
}

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const table = (rows: Outcome[]) => rows.map((r) => `${r.route.padEnd(52)} ${r.credential.padEnd(28)} expected ${r.expected.padEnd(44)} got ${r.got}`).join('\n');

beforeAll(async () => {
  env = await startDevEnv({ dir: await tempDir('matrix'), port: await freePort(), demoDevices: ['matrix-pi'] });
  await waitOnline(env);
  url = env.state.url;
  adminKey = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
  ids.team = (await created<{ team_id: string }>('server', json(`/api/servers/${deviceId}`), 200)).team_id;
  await created('tunnel', json(`/api/v1/devices/${deviceId}/tunnels`, { json: { name: ids.tunnel, kind: 'tcp', target: `127.0.0.1:${ids.tunnelPort}`, access: { mode: 'pirelay' } } }));
  await setUpCredentials();
}, 90_000);

afterAll(async () => {
  await env?.stop();
});

describe('permission matrix', () => {
  it('answers every route × credential as the route declares: 401, 403, not found or allowed, never 5xx', async () => {
    const doc = (await json('/api/v1/openapi.json')).body;
    const cases = [...nativeCases(doc), ...rawCases()];
    // Logging out ends the session the other rows use, so it goes last.
    const isLogout = (c: Case) => c.route === 'POST /api/v1/auth/logout';
    const pairs = (list: Case[]) => list.flatMap((c) => credentials.map((cred) => [c, cred] as const));
    const results = [
      ...(await pool(pairs(cases.filter((c) => !isLogout(c))), 8, ([c, cred]) => call(c, cred))),
      ...(await pool(pairs(cases.filter(isLogout)), 1, ([c, cred]) => call(c, cred))),
    ];
    const failed = results.filter((r) => !r.ok);
    // MATRIX_DUMP=1 prints every row, not only the failed ones.
    if (process.env.MATRIX_DUMP) console.log(table(results));
    expect(failed.length, `\n${table(failed)}\n`).toBe(0);
    // The matrix covered what it claims: every declared route, and allowed answers that are 2xx.
    expect(cases.filter((c) => c.access === 'undeclared')).toEqual([]);
    expect(results.length).toBeGreaterThan(60 * credentials.length);
    const twoHundreds = new Set(results.filter((r) => /^2/.test(r.got)).map((r) => r.route));
    for (const route of ['GET /api/v1/devices/{id}/info', 'GET /api/v1/devices/{id}/processes', 'GET /device_info', 'POST /process_list', 'GET /api/v1/users/{id}', 'GET /api/v1/roles/{id}', 'GET /api/v1/devices/{id}/tunnels/{tunnelId}', 'GET /api/servers/{id}', 'GET /api/teams/{id}/vars']) {
      expect(twoHundreds, route).toContain(route);
    }

    // And the team rows are not vacuous: the declarations name scopes, and each kind of answer was given.
    expect(cases.filter((c) => c.errors === 'native' && c.scope?.kind === 'device').length).toBeGreaterThan(20);
    expect(cases.filter((c) => c.errors === 'native' && c.scope?.kind === 'team').length).toBeGreaterThan(10);
    const rows = (kind: Expected['kind'], cred: string) => results.filter((r) => r.kind === kind && r.credential === cred);
    const hidden = rows('hidden', 'other team (key)');
    expect(hidden.length).toBeGreaterThan(40);
    const hiddenRoutes = new Set(hidden.map((r) => r.route));
    for (const route of ['POST /api/v1/devices/{id}/move', 'DELETE /api/v1/devices/{id}', 'POST /api/v1/agents/pending/{id}/approve', 'PATCH /api/v1/teams/{id}', 'DELETE /api/v1/teams/{id}', 'PUT /api/v1/teams/{id}/variables/{name}', 'GET /api/v1/devices/{id}/tcp/{port}/connect', 'GET /device_info', 'POST /tunnels', 'GET /tunnel-api/client_status', 'GET /api/teams/{id}', 'GET /api/servers/{id}', 'GET /api/servers/{id}/vars']) {
      expect(hiddenRoutes, route).toContain(route);
    }
    expect(rows('team-role', 'team member (key)').length).toBeGreaterThan(15);
    expect(rows('team-role', 'operator').length).toBeGreaterThan(15);
    // A team admin is below the owner role that deleting the team and managing its owners needs.
    expect(rows('team-role', 'team admin (key)').map((r) => r.route)).toContain('DELETE /api/v1/teams/{id}');
    for (const cred of ['team admin (key)', 'team owner (key)']) {
      const devicesAdmin = rows('allowed', cred).filter((r) => r.case.scope && (r.case.access as { permissions: string[] }).permissions.includes('devices:admin'));
      expect(devicesAdmin.length, cred).toBeGreaterThan(8);
      // At least one reached the body check with the real device (a move with a malformed body: 400).
      expect(devicesAdmin.filter((r) => r.status === 400).map((r) => r.route), cred).toContain('POST /api/v1/devices/{id}/move');
    }
  });
});
