// Reconnect delays: exponential from RECONNECT_BASE_MS, capped, with jitter so a fleet that lost
// the relay at the same moment does not come back in lockstep.
import { RECONNECT_BASE_MS, RECONNECT_CAP_MS } from '../shared/constants.ts';

/**
 * After the relay replaced our connection with another agent's (close code 4000): a live second
 * agent with this identity would otherwise take the connection straight back, and the two would
 * push each other off many times a second. These delays grow to minutes, so both stay mostly up.
 */
export const REPLACED_BACKOFF = { baseMs: 5_000, capMs: 5 * 60_000 };
/** A connection that stayed up this long before being replaced starts the replaced backoff over. */
export const REPLACED_QUIET_MS = 15 * 60_000;

/** Delay before reconnect attempt `attempt` (0-based): uniformly in [d/2, d] with d = min(cap, base·2^attempt). */
export function backoffDelay(attempt: number, capMs = RECONNECT_CAP_MS, random: () => number = Math.random, baseMs = RECONNECT_BASE_MS): number {
  const d = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + random() * (d / 2));
}
