// The Hono environment type shared by every route module.
import type { Principal } from './auth/principal.ts';
import type { AuditInput } from './audit.ts';
import type { DeviceRef } from './tunnels/queries.ts';

export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** undefined: not yet resolved; null: no valid credentials. */
    principal: Principal | null | undefined;
    /** The permissions the route declared (set by its access check; worker/auth/scope.ts reads the team role they need). */
    required: readonly string[] | undefined;
    /** The team the route acts in, once its declared scope (onDevice, onTeam) authorized it; read through scopedTeam. */
    teamId: string | undefined;
    /** The device a route that names it by id or name acts on (onDeviceNamed). */
    device: DeviceRef | undefined;
    /** Audit entries of this request, written in one statement when it ends (worker/audit.ts). */
    audit: AuditInput[] | undefined;
  };
}
