// Who may call a route is part of the route's declaration, written once. For OpenAPI routes each
// helper returns both the middleware that enforces the rule and the extension that publishes it
// in /api/v1/openapi.json (x-permissions, x-self-service, x-public), to spread into createRoute;
// the other routes take theirs from worker/auth/raw-routes.ts through guardOf. The permission
// matrix tests read what is published, so the document cannot drift from what is enforced and a
// route that declares nothing fails them.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { requires, requiresOwnAccount } from './middleware.ts';
import { RAW_ROUTES } from './raw-routes.ts';

type Middleware = MiddlewareHandler<AppEnv>;

interface Declared {
  middleware: Middleware[];
  'x-permissions'?: string[];
  'x-self-service'?: true;
  'x-public'?: true;
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

/** The check of a route declared in RAW_ROUTES; throws at startup for a path that is not there. */
export function guardOf(path: string): Middleware {
  const route = RAW_ROUTES.find((r) => r.path === path);
  if (!route || !('permissions' in route.access)) throw new Error(`${path} declares no permissions in worker/auth/raw-routes.ts`);
  return requires(...route.access.permissions);
}
