// The Hono environment type shared by every route module.
import type { Principal } from './auth/principal.ts';

export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** undefined: not yet resolved; null: no valid credentials. */
    principal: Principal | null | undefined;
  };
}
