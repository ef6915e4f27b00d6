// Pipetower's API (shared/seeds/pipetower-api.txt) at /api, so scripts written for
// app.pipetower.com work by changing the host: `curl https://relay/api/servers -H "Authorization:
// Bearer $API_TOKEN"` with a relay API key (a session JWT works too). Pipetower's servers are our
// devices, its teams ours, its user, team and server variables ours (secrets always "***"; their
// sealed values are never even read here). Lists page as Pipetower documents (pipetower-page.ts);
// errors are Laravel's (pipetower-errors.ts); any other path under /api/ but the native /api/v1
// is Pipetower's 404.
//
// Who sees what is the team rule (worker/auth/scope.ts): lists hold only the caller's visible
// teams and their devices; a team or server of another team is 404, like one that does not exist.
//
// Choices where the seed is silent: only approved devices are servers (a pending or revoked one
// cannot be worked on, as PiTunnel's /devices lists them too); a server's host and port are the
// relay's own, from the URL the API was called on, since a relay device is reached through the
// relay and not at an address of its own; an account or member without an e-mail address has
// `email: null`; items are listed oldest first.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { guardOf } from '../auth/access.ts';
import { authenticate, principalOf } from '../auth/middleware.ts';
import { credentialIdOf } from '../auth/principal.ts';
import { RateWindow } from '../tunnels/rate-window.ts';
import { ErrorCode } from '../../shared/codes.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { assertInTeam, assertTeamExists, authorizeTeam, visibleTeams } from '../auth/scope.ts';
import { ApiError, notFound, unauthorized } from '../errors.ts';
import { TEAM_ROLES, type TeamRole } from '../../shared/api/teams.ts';
import { SECRET_MASK } from '../../shared/api/variables.ts';
import { RELAY_VERSION } from '../../shared/version.ts';
import {
  pipetowerDate,
  type PipetowerAccount,
  type PipetowerMember,
  type PipetowerMetric,
  type PipetowerServer,
  type PipetowerTeam,
  type PipetowerVariable,
} from '../../shared/api/pipetower.ts';
import { renderPipetowerError, pipetowerNotFound } from './pipetower-errors.ts';
import { arrayPage, listPage, pageRequest, type PageQuery } from './pipetower-page.ts';
import { hubFor } from '../devices/hub.ts';
import type { MetricsSample } from '../../shared/api/metrics.ts';

interface UserRow {
  id: string;
  username: string;
  name: string;
  email: string | null;
  timezone: string;
  email_verified: number;
  totp_enabled_at: number | null;
  created_at: number;
  updated_at: number | null;
}

function presentAccount(u: UserRow): PipetowerAccount {
  return {
    id: u.id,
    name: u.name || u.username,
    email: u.email,
    timezone: u.timezone,
    email_verified: Boolean(u.email_verified),
    '2fa_enabled': u.totp_enabled_at !== null,
    created_at: pipetowerDate(u.created_at),
    updated_at: pipetowerDate(u.updated_at ?? u.created_at),
  };
}

/**
 * A team with its members in the same row: [name, email, role, 2FA on (0|1), joined at] each, as
 * JSON, so a page of teams is one query.
 */
const TEAM_COLUMNS = `t.id, t.name, t.created_at, t.updated_at,
  (SELECT json_group_array(json_array(CASE WHEN u.name <> '' THEN u.name ELSE u.username END, u.email, m.role, u.totp_enabled_at IS NOT NULL, m.created_at))
     FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = t.id) AS members`;

interface TeamRow {
  id: string;
  name: string;
  created_at: number;
  updated_at: number;
  members: string;
}

/** Owners first, then admins, then members; each oldest first. */
function byRank(a: [string, string | null, TeamRole, number, number], b: typeof a): number {
  return TEAM_ROLES.indexOf(a[2]) - TEAM_ROLES.indexOf(b[2]) || a[4] - b[4];
}

function presentTeam(t: TeamRow): PipetowerTeam {
  const members = (JSON.parse(t.members) as [string, string | null, TeamRole, number, number][]).sort(byRank);
  return {
    id: t.id,
    name: t.name,
    members: members.map(([name, email, role, twoFactor]): PipetowerMember => ({ name, email, role, '2fa_enabled': Boolean(twoFactor) })),
    created_at: pipetowerDate(t.created_at),
    updated_at: pipetowerDate(t.updated_at),
  };
}

/** A device with its tags in the same row, as JSON [name, color] pairs. */
const SERVER_COLUMNS = `d.id, d.team_id, d.name, d.online, d.registered_at, d.updated_at,
  (SELECT json_group_array(json_array(g.name, g.color)) FROM device_tags g WHERE g.device_id = d.id) AS tags`;

interface ServerRow {
  id: string;
  team_id: string;
  name: string;
  online: number;
  registered_at: number;
  updated_at: number | null;
  tags: string;
}

/** Where every relay device is reached: the relay itself, at the host and port the API was called on. */
function relayAddress(c: Context<AppEnv>): { host: string; port: string } {
  const url = new URL(c.req.url);
  return { host: url.hostname, port: url.port || (url.protocol === 'https:' ? '443' : '80') };
}

function presentServer(d: ServerRow, address: { host: string; port: string }): PipetowerServer {
  const tags = (JSON.parse(d.tags) as [string, string][]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    id: d.id,
    team_id: d.team_id,
    name: d.name,
    connected: Boolean(d.online),
    host: address.host,
    port: address.port,
    tags: tags.map(([name, color]) => ({ name, color })),
    created_at: pipetowerDate(d.registered_at),
    updated_at: pipetowerDate(d.updated_at ?? d.registered_at),
  };
}

interface VariableRow {
  name: string;
  secret: number;
  value: string | null;
}

function presentVariable(v: VariableRow): PipetowerVariable {
  return { secret: Boolean(v.secret), name: v.name, value: v.secret ? SECRET_MASK : (v.value ?? '') };
}

/** One owner's variables, oldest first. `sealed` is not selected: nothing here could open it. */
function variablesOf(db: D1Database, owner: 'user_id' | 'team_id' | 'device_id', id: string): PageQuery {
  const where = `FROM variables WHERE ${owner} = ?1 AND level = ?2`;
  const level = owner === 'user_id' ? 'user' : owner === 'team_id' ? 'team' : 'device';
  return {
    count: db.prepare(`SELECT COUNT(*) AS total ${where}`).bind(id, level),
    rows: (limit, offset) => db.prepare(`SELECT name, secret, value ${where} ORDER BY created_at, name LIMIT ?3 OFFSET ?4`).bind(id, level, limit, offset),
  };
}

/**
 * Lets the caller see a server's row (null: there is none): a device that is not a server, or is
 * in a team the caller is not in, is 404 like one that does not exist.
 */
function assertServerVisible<R extends { team_id: string }>(c: Context<AppEnv>, id: string, row: R | null): asserts row is R {
  const hidden = () => notFound('Server', { server_id: id });
  if (!row) throw hidden();
  // Reading a team's servers is a member's right (no "<resource>:admin" permission is needed here).
  assertInTeam(principalOf(c), row.team_id, 'member', hidden);
}

/** What a server's metrics are made of besides its latest sample: the device's row. */
interface MetricsServerRow {
  team_id: string;
  hostname: string;
  os: string;
  os_version: string;
  architecture: string;
  last_seen: number | null;
  registered_at: number;
}

/** hostnamectl's names of the architectures, which Pipetower shows (x86-64, not uname's x86_64). */
const ARCHITECTURES: Record<string, string> = { x86_64: 'x86-64', amd64: 'x86-64', aarch64: 'arm64', i686: 'x86', i386: 'x86' };

/** `digits` decimals at most, without trailing zeros ("89.2", "62.28", "1"). */
const decimal = (v: number, digits: number) => String(Number(v.toFixed(digits)));
const kib = (bytes: number) => String(Math.floor(bytes / 1024));

/**
 * A server's metrics as Pipetower lists them (its seed's types, names and units): CpuModel and
 * HostInfo, then DiskUsage of each mount and their sum (KiB; a device mounted twice counts once in
 * the sum), CpuUsage (%), LoadAverage, MemoryUsage (KiB, used = total − available as the seed's
 * numbers show). From the latest sample, at its time; without one, only the HostInfo the device
 * row holds, at the time the device was last seen.
 */
export function pipetowerMetrics(row: MetricsServerRow, sample: MetricsSample | null): PipetowerMetric[] {
  const out: PipetowerMetric[] = [];
  const at = pipetowerDate(sample ? Date.parse(sample.timestamp) : (row.last_seen ?? row.registered_at));
  const put = (type: PipetowerMetric['type'], metric: string, value: string) => out.push({ type, metric, value, timestamp: at });
  const os = row.os_version || row.os;
  const arch = sample?.system.architecture || row.architecture;
  if (sample?.cpu.model !== undefined) put('CpuModel', 'name', sample.cpu.model);
  if (sample && sample.cpu.cores.length) put('CpuModel', 'cpus', String(sample.cpu.cores.length));
  put('HostInfo', 'hostname', sample?.system.hostname || row.hostname);
  if (os) put('HostInfo', 'operating_system', os);
  if (sample?.system.kernel) put('HostInfo', 'kernel', `${row.os || 'Linux'} ${sample.system.kernel}`);
  if (arch) put('HostInfo', 'architecture', ARCHITECTURES[arch] ?? arch);
  if (!sample) return out;
  const counted = new Set<string>();
  let total = 0;
  let used = 0;
  for (const m of sample.disk.mounts) {
    put('DiskUsage', `${m.mountpoint}|total`, kib(m.total));
    put('DiskUsage', `${m.mountpoint}|used`, kib(m.used));
    put('DiskUsage', `${m.mountpoint}|available`, kib(m.free));
    if (counted.has(m.device)) continue;
    counted.add(m.device);
    total += m.total;
    used += m.used;
  }
  if (sample.disk.mounts.length) {
    put('DiskUsage', 'sum|total', kib(total));
    put('DiskUsage', 'sum|used', kib(used));
    put('DiskUsage', 'sum|used_percent', decimal(total ? (100 * used) / total : 0, 2));
  }
  put('CpuUsage', 'idle', decimal(100 - sample.cpu.totalUsage, 1));
  put('CpuUsage', 'load', decimal(sample.cpu.totalUsage, 1));
  const load = sample.cpu.loadAverage;
  put('LoadAverage', 'average_1', decimal(load.one, 2));
  put('LoadAverage', 'average_5', decimal(load.five, 2));
  put('LoadAverage', 'average_15', decimal(load.fifteen, 2));
  const mem = sample.memory;
  const memUsed = Math.max(0, mem.total - mem.available);
  put('MemoryUsage', 'mem_total', kib(mem.total));
  put('MemoryUsage', 'mem_available', kib(mem.available));
  put('MemoryUsage', 'mem_used', kib(memUsed));
  put('MemoryUsage', 'mem_used_percent', decimal(mem.total ? (100 * memUsed) / mem.total : 0, 2));
  return out;
}

/** The team ids a list may show, as a JSON array for json_each, or null for every team. */
const visibleJson = (c: Context<AppEnv>) => {
  const teams = visibleTeams(principalOf(c));
  return teams === null ? null : JSON.stringify(teams);
};

/** Whether `path` belongs to the native API, which answers its own 404s. */
const isNative = (path: string) => path === '/api/v1' || path.startsWith('/api/v1/');

/**
 * Laravel's default API throttle, per credential: 60 calls a minute (PIPETOWER_CALLS_PER_MINUTE;
 * counted in isolate memory, see RateWindow). One window per limit, so a test may set its own.
 */
export const DEFAULT_PIPETOWER_CALLS_PER_MINUTE = 60;
const budgets = new Map<number, RateWindow>();
function budgetOf(env: Env): RateWindow {
  const limit = numberVar(env.PIPETOWER_CALLS_PER_MINUTE, DEFAULT_PIPETOWER_CALLS_PER_MINUTE, 1);
  let b = budgets.get(limit);
  if (!b) budgets.set(limit, (b = new RateWindow(limit)));
  return b;
}

/** 429 "Too Many Attempts." with Retry-After for a credential past its budget; unknown callers get their 401 from the route. */
const throttle: MiddlewareHandler<AppEnv> = async (c, next) => {
  const p = await authenticate(c);
  if (p) {
    const wait = budgetOf(c.env).hit(credentialIdOf(p));
    if (wait) throw new ApiError(429, ErrorCode.RATE_LIMITED, 'Too many calls with this credential', { retry_after: wait });
  }
  await next();
};

export function registerPipetowerRoutes(app: App) {
  const api = new Hono<AppEnv>();
  api.onError(renderPipetowerError);
  api.use('*', throttle);

  api.get('/status', guardOf('/api/status'), (c) => c.json({ status: 'ok' as const, version: RELAY_VERSION }));

  api.get('/account', guardOf('/api/account'), async (c) => {
    const row = await c.env.DB.prepare('SELECT id, username, name, email, timezone, email_verified, totp_enabled_at, created_at, updated_at FROM users WHERE id = ?1')
      .bind(principalOf(c).userId)
      .first<UserRow>();
    // Deleted a moment ago, while its credential was still cached: no account, no valid credential.
    if (!row) throw unauthorized();
    return c.json(presentAccount(row));
  });

  api.get('/account/vars', guardOf('/api/account/vars'), async (c) => {
    const req = pageRequest(c);
    return c.json(await listPage(c.env.DB, req, variablesOf(c.env.DB, 'user_id', principalOf(c).userId), presentVariable));
  });

  api.get('/teams', guardOf('/api/teams'), async (c) => {
    const req = pageRequest(c);
    const db = c.env.DB;
    const visible = visibleJson(c);
    const where = 'FROM teams t WHERE (?1 IS NULL OR t.id IN (SELECT value FROM json_each(?1)))';
    const query: PageQuery = {
      count: db.prepare(`SELECT COUNT(*) AS total ${where}`).bind(visible),
      rows: (limit, offset) => db.prepare(`SELECT ${TEAM_COLUMNS} ${where} ORDER BY t.created_at, t.id LIMIT ?2 OFFSET ?3`).bind(visible, limit, offset),
    };
    return c.json(await listPage(db, req, query, presentTeam));
  });

  api.get('/teams/:id', guardOf('/api/teams/{id}'), async (c) => {
    const id = c.req.param('id');
    authorizeTeam(c, id);
    // An instance admin passes authorizeTeam for any id; the team must still exist.
    const row = await c.env.DB.prepare(`SELECT ${TEAM_COLUMNS} FROM teams t WHERE t.id = ?1`).bind(id).first<TeamRow>();
    if (!row) throw notFound('Team', { team_id: id });
    return c.json(presentTeam(row));
  });

  // A team or server that is not there is 404 before bad paging is 422, as in Laravel (route binding, then validation).
  api.get('/teams/:id/vars', guardOf('/api/teams/{id}/vars'), async (c) => {
    const id = c.req.param('id');
    authorizeTeam(c, id);
    await assertTeamExists(c.env, id);
    const req = pageRequest(c);
    return c.json(await listPage(c.env.DB, req, variablesOf(c.env.DB, 'team_id', id), presentVariable));
  });

  api.get('/servers', guardOf('/api/servers'), async (c) => {
    const req = pageRequest(c);
    const db = c.env.DB;
    const visible = visibleJson(c);
    const where = "FROM devices d WHERE d.status = 'approved' AND (?1 IS NULL OR d.team_id IN (SELECT value FROM json_each(?1)))";
    const query: PageQuery = {
      count: db.prepare(`SELECT COUNT(*) AS total ${where}`).bind(visible),
      rows: (limit, offset) => db.prepare(`SELECT ${SERVER_COLUMNS} ${where} ORDER BY d.registered_at, d.id LIMIT ?2 OFFSET ?3`).bind(visible, limit, offset),
    };
    const address = relayAddress(c);
    return c.json(await listPage(db, req, query, (row: ServerRow) => presentServer(row, address)));
  });

  api.get('/servers/:id', guardOf('/api/servers/{id}'), async (c) => {
    const id = c.req.param('id');
    const row = await c.env.DB.prepare(`SELECT ${SERVER_COLUMNS} FROM devices d WHERE d.id = ?1 AND d.status = 'approved'`).bind(id).first<ServerRow>();
    assertServerVisible(c, id, row);
    return c.json(presentServer(row, relayAddress(c)));
  });

  api.get('/servers/:id/vars', guardOf('/api/servers/{id}/vars'), async (c) => {
    const id = c.req.param('id');
    const server = await c.env.DB.prepare("SELECT team_id FROM devices WHERE id = ?1 AND status = 'approved'").bind(id).first<{ team_id: string }>();
    assertServerVisible(c, id, server);
    const req = pageRequest(c);
    return c.json(await listPage(c.env.DB, req, variablesOf(c.env.DB, 'device_id', id), presentVariable));
  });

  api.get('/servers/:id/metrics', guardOf('/api/servers/{id}/metrics'), async (c) => {
    const id = c.req.param('id');
    const row = await c.env.DB.prepare("SELECT team_id, hostname, os, os_version, architecture, last_seen, registered_at FROM devices WHERE id = ?1 AND status = 'approved'")
      .bind(id)
      .first<MetricsServerRow>();
    assertServerVisible(c, id, row);
    const req = pageRequest(c);
    const latest = await hubFor(c.env, id).latestMetrics();
    return c.json(arrayPage(req, pipetowerMetrics(row, latest?.sample ?? null)));
  });

  // Every other path under /api/ is Pipetower's (its later routes, a typo): its 404, whoever asks.
  api.all('*', async (c, next) => {
    if (isNative(c.req.path)) return next();
    return pipetowerNotFound(c);
  });

  app.route('/api', api);
}
