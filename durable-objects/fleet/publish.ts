// How device hubs and the Worker reach the FleetHub: one hub for the relay, named 'fleet' (every
// team's events go through it; watchers are filtered by team there). Tests name others to start
// from a fresh hub.
import type { StatusEvent } from '../../shared/api/stream.ts';
import type { MetricsEvent } from '../../shared/api/metrics.ts';

export function fleetHubFor(env: Env, name = 'fleet') {
  return env.FLEET_HUB.get(env.FLEET_HUB.idFromName(name));
}

export type FleetHubStub = ReturnType<typeof fleetHubFor>;

/**
 * Sends a status change to the FleetHub. Never throws: a device hub runs this in waitUntil, so a
 * slow or failing FleetHub delays no agent socket. Pass the same stub for every event of a device:
 * calls on one stub arrive in the order they were made, so an offline never overtakes its online.
 */
export async function publishStatus(hub: FleetHubStub, event: StatusEvent): Promise<void> {
  try {
    await hub.publish(event);
  } catch (e) {
    console.warn(`could not publish ${event.agent_id} ${event.status} to the FleetHub: ${String(e)}`);
  }
}

/**
 * Sends a device's sample to the FleetHub (its hub does so at most once per refresh interval).
 * Never throws, for the same reason as publishStatus; one stub per device hub keeps them in order.
 */
export async function publishMetrics(hub: FleetHubStub, event: MetricsEvent): Promise<void> {
  try {
    await hub.publishMetrics(event);
  } catch (e) {
    console.warn(`could not publish ${event.agent_id}'s metrics to the FleetHub: ${String(e)}`);
  }
}
