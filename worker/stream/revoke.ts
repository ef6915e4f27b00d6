// Ends the live streams of callers whose view of the fleet just shrank (removed from a team or
// demoted, a team deleted, a team that now requires 2FA, a device moved to another team) or whose
// credential was just revoked (an API key revoked, a logout, sessions ended by a password change),
// so they reconnect and are filtered anew, or refused. The stream's caller is fixed when it opens
// (the teams and the credential go to the FleetHub with the watch), so without this a removed
// member would keep receiving their old team's events, and a revoked key its events, for as long
// as the stream stayed open. Every stream holds a FleetHub watcher, so closing those ends every
// stream, one device's metrics socket too (its FleetHub watcher's close closes the client's socket:
// socket-bridge.ts) without asking any device hub. Call it after the change is in D1: a
// reconnect reads the caller afresh (worker/routes/stream.ts), so it sees the change. (Expiry
// needs no call: the hub closes a watcher when its credential's expiry passes.)
import { ApiError } from '../errors.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import type { WatcherScope } from '../../durable-objects/hub/contract.ts';

export type { WatcherScope };

/** The code of the 502 revokeWatchers throws when the FleetHub cannot be reached. */
export const STREAMS_NOT_CLOSED = 'STREAMS_NOT_CLOSED';

/**
 * Closes the watchers `who` names, every criterion given having to match (see WatcherScopeSchema):
 * `{userId}` all of a user's streams, `{credentialId}` those opened with one API key or session,
 * `{teamId}` those of members seeing the team (instance admins see it anyway and are left alone),
 * `{deviceId}` those following the device with `agent_id=`.
 * Returns how many streams were closed; a FleetHub that cannot be reached is a 502 (the change
 * itself is made: the caller should say so rather than leave the streams open unknowingly).
 */
export async function revokeWatchers(env: Env, who: WatcherScope): Promise<number> {
  let closed: number | null;
  try {
    closed = await fleetHubFor(env).revoke(who);
  } catch (e) {
    console.error('FleetHub.revoke failed', who, e);
    throw new ApiError(502, STREAMS_NOT_CLOSED, 'The change was made, but the live streams it affects could not be closed', { ...who });
  }
  if (closed === null) throw new Error(`revokeWatchers: ${JSON.stringify(who)} names no watchers`);
  return closed;
}
