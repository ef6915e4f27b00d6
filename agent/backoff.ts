// Reconnect delays: exponential from RECONNECT_BASE_MS, capped, with jitter so a fleet that lost
// the relay at the same moment does not come back in lockstep.
import { RECONNECT_BASE_MS, RECONNECT_CAP_MS } from '../shared/constants.ts';

/** Delay before reconnect attempt `attempt` (0-based): uniformly in [d/2, d] with d = min(cap, base·2^attempt). */
export function backoffDelay(attempt: number, capMs = RECONNECT_CAP_MS, random: () => number = Math.random): number {
  const d = Math.min(capMs, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + random() * (d / 2));
}
