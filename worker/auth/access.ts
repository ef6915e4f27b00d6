// Who may call a route is part of the route's declaration, written once, including which device or
// team it acts in (onDevice, onTeam). For OpenAPI routes each
// helper returns both the middleware that enforces the rule and the extension that publishes it
// in /api/v1/openapi.json (x-permissions, x-self-service, x-public), to spread into createRoute;
// the other routes take theirs from worker/auth/raw-routes.ts through guardOf. The permission
// matrix tests read what is published, so the document cannot drift from what is enforced and a
// route that declares nothing fails them.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { requires, requiresOwnAccount } from './middleware.ts';
import { RAW_ROUTES } from './raw-routes.ts';
import { authorizeDevice, authorizeTeam } from './scope.ts';
import type { TeamRole } from '../../shared/api/teams.ts';

type Middleware = MiddlewareHandler<AppEnv>;

interface Declared {
  middleware: Middleware[];
  'x-permissions'?: string[];
  'x-self-service'?: true;
  'x-public'?: true;
  /** The path parameter naming the device or team the route acts in ("device:id", "team:id"). */
  'x-scope'?: string;
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
 * (worker/auth/scope.ts authorizeDevice: 404 when it is not visible, so ids cannot be probed).
 */
export function onDevice(declared: Declared, param = 'id'): Declared {
  const check: Middleware = async (c, next) => {
    await authorizeDevice(c, c.req.param(param) ?? '');
    await next();
  };
  return { ...declared, middleware: [...declared.middleware, check], 'x-scope': `device:${param}` };
}

/** The same for a team named by path parameter `param`, with the team role `need` (default: what the permissions need). */
export function onTeam(declared: Declared, param = 'id', need?: TeamRole): Declared {
  const check: Middleware = async (c, next) => {
    authorizeTeam(c, c.req.param(param) ?? '', need);
    await next();
  };
  return { ...declared, middleware: [...declared.middleware, check], 'x-scope': `team:${param}` };
}

/** The check of a route declared in RAW_ROUTES; throws at startup for a path that is not there. */
export function guardOf(path: string): Middleware {
  const route = RAW_ROUTES.find((r) => r.path === path);
  if (!route || !('permissions' in route.access)) throw new Error(`${path} declares no permissions in worker/auth/raw-routes.ts`);
  return requires(...route.access.permissions);
}
