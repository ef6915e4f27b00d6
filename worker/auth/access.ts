// Who may call a route is part of the route's declaration, written once, including which device or
// team it acts in and the team role it needs there (onDevice, onTeam). For OpenAPI routes each
// helper returns both the middleware that enforces the rule and the extension that publishes it
// in /api/v1/openapi.json (x-permissions, x-self-service, x-public, x-scope, x-team-role), to
// spread into createRoute; the other routes take theirs from worker/auth/raw-routes.ts through
// guardOf. The permission matrix tests read what is published, so the document cannot drift from
// what is enforced and a route that declares nothing fails them.
import type { Context, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.ts';
import { principalOf, requires, requiresOwnAccount } from './middleware.ts';
import { RAW_ROUTES } from './raw-routes.ts';
import { assertTeamExists, authorizeDevice, authorizeDeviceNamed, authorizeOwnMembership, authorizeTeam, teamRoleForAll } from './scope.ts';
import { TeamIdSchema, type TeamRole } from '../../shared/api/teams.ts';
import { DeviceIdSchema, DeviceRefSchema } from '../../shared/api/devices.ts';
import { invalidRequest } from '../openapi.ts';

type Middleware = MiddlewareHandler<AppEnv>;

export interface Declared {
  middleware: Middleware[];
  'x-permissions'?: string[];
  'x-self-service'?: true;
  'x-public'?: true;
  /** The path parameter naming the device or team the route acts in ("device:id", "team:id"). */
  'x-scope'?: string;
  /** The role in that team the route needs (owner, admin, member). */
  'x-team-role'?: TeamRole;
}

/** Callers holding every one of `permissions`; with none, any valid credential. */
export function allows(...permissions: string[]): Declared {
  return { middleware: [requires(...permissions)], 'x-permissions': permissions };
}

/** Writes to the caller's own account: a session or an API key that is not narrowed (see requiresOwnAccount). */
export function selfService(...permissions: string[]): Declared {
  return { middleware: [requiresOwnAccount(...permissions)], 'x-permissions': permissions, 'x-self-service': true };
}

/** No relay credential is asked for; `middleware` is what guards the route instead, if anything. */
export function publicRoute(...middleware: Middleware[]): Declared {
  return { middleware, 'x-public': true };
}

/** Runs `first` (e.g. taking a credential from the query string) before the declaration's check. */
export function after(first: Middleware, declared: Declared): Declared {
  return { ...declared, middleware: [first, ...declared.middleware] };
}

/**
 * The route acts on the device named by path parameter `param`: after the permission check and
 * before the body is even validated, the device must be one the caller may act on in its team
 * with the team role the permissions need (worker/auth/scope.ts authorizeDevice: 404 when it is
 * not visible, so ids cannot be probed, 403 TEAM_ROLE_REQUIRED when the role is too low). The
 * device's team is then the route's (scopedTeam).
 */
export function onDevice(declared: Declared, param = 'id'): Declared {
  const need = teamRoleForAll(declared['x-permissions'] ?? []);
  const check: Middleware = async (c, next) => {
    c.set('teamId', await authorizeDevice(c, pathParam(c, param, DeviceIdSchema), need));
    await next();
  };
  return scoped(declared, check, `device:${param}`, need);
}

/** onDevice for a path that names the device by id or else by display name; the device found is `c.var.device`. */
export function onDeviceNamed(declared: Declared, param = 'id'): Declared {
  const need = teamRoleForAll(declared['x-permissions'] ?? []);
  const check: Middleware = async (c, next) => {
    const device = await authorizeDeviceNamed(c, pathParam(c, param, DeviceRefSchema), need);
    c.set('device', device);
    c.set('teamId', device.teamId);
    await next();
  };
  return scoped(declared, check, `device:${param}`, need);
}

/**
 * The same for a team named by path parameter `param`, which must exist, with the team role
 * `need` (default: what the permissions need). Where the role also depends on the body (making
 * an owner), the route declares the base role and checks the rest itself. `self`: a path
 * parameter naming a user; when it is the caller (leaving the team), membership is enough.
 */
export function onTeam(declared: Declared, param = 'id', need?: TeamRole, opts: { self?: string } = {}): Declared {
  const role = need ?? teamRoleForAll(declared['x-permissions'] ?? []);
  const check: Middleware = async (c, next) => {
    const teamId = pathParam(c, param, TeamIdSchema);
    if (opts.self !== undefined && c.req.param(opts.self) === principalOf(c).userId) authorizeOwnMembership(c, teamId);
    else authorizeTeam(c, teamId, role);
    await assertTeamExists(c.env, teamId);
    c.set('teamId', teamId);
    await next();
  };
  return scoped(declared, check, `team:${param}`, role);
}

/**
 * The path parameter, or the 400 the route's own validation would give: these checks run before
 * it, and a malformed id says nothing about whether any device or team exists.
 */
function pathParam(c: Context<AppEnv>, param: string, schema: z.ZodType<string>): string {
  const parsed = z.object({ [param]: schema }).safeParse({ [param]: c.req.param(param) });
  if (!parsed.success) throw invalidRequest('param', parsed.error);
  return parsed.data[param]!;
}

function scoped(declared: Declared, check: Middleware, scope: string, role: TeamRole): Declared {
  return { ...declared, middleware: [...declared.middleware, check], 'x-scope': scope, 'x-team-role': role };
}

/** The check of a route declared in RAW_ROUTES; throws at startup for a path that is not there. */
export function guardOf(path: string): Middleware {
  const route = RAW_ROUTES.find((r) => r.path === path);
  if (!route || !('permissions' in route.access)) throw new Error(`${path} declares no permissions in worker/auth/raw-routes.ts`);
  return requires(...route.access.permissions);
}
