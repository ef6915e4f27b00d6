// The permission matrix: every route the relay serves, from its own OpenAPI document plus the
// routes of worker/auth/raw-routes.ts (PiTunnel's and tunnel-control's at the relay root,
// Pipetower's under /api, the agents' dial-in), called with every kind of credential, from none and forged ones to an admin's
// session, in the Authorization header and as ?api_key= where a route takes that. What each
// answer must be follows from the route's declaration alone: a bad credential gets 401, a good
// one 403 unless its permissions cover the route's, and nothing gets a 5xx. An operation that
// declares nothing fails the test. The relay runs in workerd with a real agent, so
// the device RPC routes reach a device and their 2xx is real.
//
// Calls are made harmless rather than undone: writes carry a body no schema accepts (a JSON array),
// so an allowed caller gets 400 and a refused one 401/403, both decided before anything changes;
// routes without a body (deletes, approvals) name ids that do not exist, so an allowed caller gets
// 404. Reads use the real device, tunnel, user and role, so their 200 is reachable.
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

/** A credential as the Authorization header it sends, and the principal it stands for, if valid. */
interface Credential {
  name: string;
  header?: string;
  /** The raw token, for tunnel-control's api_key parameter. */
  token?: string;
  /** null: not a valid credential. */
  permissions: string[] | null;
  narrowed?: boolean;
}
const credentials: Credential[] = [];

/** Real objects for path parameters. */
const ids = { user: '', role: 'viewer', tunnel: 'matrix-tcp', tunnelPort: 22, team: '' };
/** Ids no object has (hex, so every id schema accepts them), for calls that would change state. */
const MISSING_DEVICE = 'f'.repeat(40);
const MISSING = 'no-such-thing';

interface Operation {
  'x-permissions'?: string[];
  'x-self-service'?: boolean;
  'x-public'?: boolean;
  requestBody?: unknown;
  parameters?: { name: string; in: string }[];
}

/** One row of the matrix: a request, and which declaration it answers to. */
interface Case {
  route: string;
  method: string;
  path: string;
  body?: string;
  contentType?: string;
  access: { permissions: string[]; selfService: boolean } | 'public' | 'device' | 'undeclared';
  errors: RawRoute['errors'];
  /** Use the credential as tunnel-control's api_key parameter rather than a header. */
  asParam?: boolean;
}

/** The permission rule, written out independently of worker/auth/permissions.ts. */
function holds(granted: readonly string[], required: string): boolean {
  return granted.some((g) => g === '*' || g === required || (g.endsWith(':*') && required.startsWith(g.slice(0, -1))));
}

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
  const user = async (role: string) => {
    const username = `matrix-${role}`;
    const password = `pw-${role}-matrix-1234`;
    const u = await created('user', json('/api/v1/users', { json: { username, password, roles: [role] } }));
    return { id: u.id as string, username, password };
  };
  const viewer = await user('viewer');
  const operator = await user('operator');
  const admin = await user('admin');
  ids.user = viewer.id;

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

  const add = (name: string, token: string | undefined, header: string | undefined, permissions: string[] | null, narrowedKey = false) =>
    credentials.push({ name, token, header: header ?? (token ? bearer(token) : undefined), permissions, narrowed: narrowedKey });
  add('no credential', undefined, undefined, null);
  add('garbage bearer', 'not-a-credential', undefined, null);
  add('garbage Basic user', 'prk_garbage', `Basic ${Buffer.from('prk_garbage:').toString('base64')}`, null);
  add('forged JWT (alg: none)', await jwt({ ...live, exp: future }, null), undefined, null);
  add('forged JWT (wrong key)', await jwt({ ...live, exp: future }, 'another-secret-of-at-least-32-characters!'), undefined, null);
  add('expired session', await jwt({ ...live, exp: Math.floor(Date.now() / 1000) - 60 }, secret), undefined, null);
  add('logged-out session', loggedOut, undefined, null);
  add('revoked key', revoked.key, undefined, null);
  add('expired key', expiring.key, undefined, null);
  add('narrowed key (devices:read)', narrowed.key, undefined, ['devices:read'], true);
  add('viewer', await session(viewer.username, viewer.password), undefined, perms('viewer'));
  add('operator', await session(operator.username, operator.password), undefined, perms('operator'));
  add('admin', adminSession, undefined, perms('admin'));

  await waitFor('the short-lived key to expire', async () => (await json('/api/v1/auth/me', { key: expiring.key })).status === 401, 10_000);
}

/** Fills path parameters: real objects for reads, missing ones where the call would change state. */
function fill(path: string, method: string): string {
  return path
    .replace('{id}', () => {
      // Pipetower's reads: the device's team and the device itself.
      if (path.startsWith('/api/teams')) return ids.team;
      if (path.startsWith('/api/servers')) return deviceId;
      if (path.startsWith('/api/v1/users')) return method === 'DELETE' ? MISSING : ids.user;
      if (path.startsWith('/api/v1/roles')) return method === 'DELETE' ? MISSING : ids.role;
      if (path.startsWith('/api/v1/api-keys')) return MISSING;
      if (path.startsWith('/api/v1/enrollment-tokens')) return MISSING_DEVICE;
      // Devices and agents: approve, reject, revoke and delete go to a device that does not exist.
      return method === 'DELETE' || method === 'POST' ? MISSING_DEVICE : deviceId;
    })
    .replace('{tunnelId}', method === 'DELETE' ? MISSING : ids.tunnel)
    .replace('{name}', ids.tunnel)
    .replace('{port}', String(ids.tunnelPort));
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
      const c: Case = { route: `${M} ${path}`, method: M, path: fill(path, M), body: op.requestBody ? '[]' : undefined, contentType: 'application/json', access, errors: 'native' };
      cases.push(c);
      // Routes that take the credential as ?api_key= too (WebSocket clients) are tried both ways.
      if (op.parameters?.some((p) => p.in === 'query' && p.name === 'api_key')) cases.push({ ...c, route: `${c.route} (api_key=)`, asParam: true });
    }
  }
  return cases;
}

function rawCases(): Case[] {
  const cases: Case[] = [];
  const accessOf = (r: RawRoute): Case['access'] => ('permissions' in r.access ? { permissions: [...r.access.permissions], selfService: false } : 'public' in r.access ? 'public' : 'device');
  for (const r of RAW_ROUTES) {
    for (const method of r.methods) {
      // tunnel-control calls without tunnel= or allow= only say "wrong data" (31): harmless once allowed.
      const query = r.deviceParam ? `device_id=${deviceId}` : '';
      const base = { route: `${method} ${r.path}`, method, access: accessOf(r), errors: r.errors } as const;
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

interface Outcome {
  route: string;
  credential: string;
  expected: string;
  got: string;
  ok: boolean;
}

/** Pipetower's (Laravel's) words for our refusals. */
const PIPETOWER_MESSAGES: Record<string, string> = { UNAUTHORIZED: 'Unauthenticated.', FORBIDDEN: 'This action is unauthorized.' };

/** The answer a credential must get from a case, and whether `status`/`body` is it. */
function judge(c: Case, cred: Credential, status: number, body: any): Outcome {
  const detail = c.errors === 'tunnel-control' ? ` error_code ${body?.error_code}` : status < 300 ? '' : ` ${c.errors === 'native' ? body?.code : body?.message}`;
  const row = (expected: string, ok: boolean): Outcome => ({ route: c.route, credential: cred.name, expected, got: `${status}${detail}`, ok: ok && status < 500 });
  // tunnel-control's seed has no code for the caller's credentials; it answers 401/403 with "wrong data" (31).
  const shaped = (code: string) =>
    c.errors === 'native' ? body?.code === code : c.errors === 'pipetower' ? body?.message === PIPETOWER_MESSAGES[code] : body?.error_code === 31 && body?.success === false;
  if (c.access === 'undeclared') return row('a declaration (x-permissions, x-self-service or x-public)', false);
  if (c.access === 'public') return row('any non-5xx', true);
  // No user credential opens the agents' dial-in; the relay's own 401 names why (e.g. "Unknown device").
  if (c.access === 'device') return row('401', status === 401 && typeof body?.code === 'string');
  if (cred.permissions === null) return row('401', status === 401 && shaped('UNAUTHORIZED'));
  const { permissions, selfService } = c.access;
  const allowed = permissions.every((p) => holds(cred.permissions!, p)) && !(selfService && cred.narrowed);
  if (!allowed) return row('403', status === 403 && shaped(selfService && cred.narrowed ? 'NARROWED_API_KEY' : 'FORBIDDEN'));
  const refused =
    status === 401 ||
    (status === 403 &&
      (c.errors === 'tunnel-control' ? body?.error_code === 31 : c.errors === 'pipetower' ? shaped('FORBIDDEN') : ['FORBIDDEN', 'NARROWED_API_KEY'].includes(body?.code)));
  return row('allowed (2xx or a 4xx other than 401/403)', !refused);
}

async function call(c: Case, cred: Credential): Promise<Outcome> {
  const headers: Record<string, string> = {};
  let path = c.path;
  if (c.asParam) {
    if (cred.token) path += `${path.includes('?') ? '&' : '?'}api_key=${encodeURIComponent(cred.token)}`;
  } else if (cred.header) headers.authorization = cred.header;
  if (c.body !== undefined) headers['content-type'] = c.contentType!;
  const r = await http(`${url}${path}`, { method: c.method, headers, body: c.body });
  return judge(c, cred, r.status, r.body);
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
  it('answers every route × credential as the route declares: 401, 403 or allowed, never 5xx', async () => {
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
  });
});
