// Ends the live streams of callers whose view of the fleet just shrank (removed from a team, a
// team deleted, a team that now requires 2FA), so they reconnect and are filtered anew.
// Placeholder signature for the teams routes; the stream work of issue 12 fills it in.
export interface WatcherScope {
  userId?: string;
  teamId?: string;
}

export async function revokeWatchers(_env: Env, _who: WatcherScope): Promise<void> {}
