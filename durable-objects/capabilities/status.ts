// Device status: when the agent comes online (its hello is done) or goes offline (its socket went
// away, or it fell silent past the heartbeat window), an event goes to this hub's watchers of topic
// 'status' and to the FleetHub, which fans it out to the fleet's watchers (GET /api/v1/stream).
// Only changes are published: a reconnect that replaces a live socket is no change. The events go
// out in order but off the hello's path, so a visitor never waits for them. Each names the device's
// team, read with its name in the one query a change already makes, at the time of the change (so
// the first event after a move carries the new team, and the hub caches nothing to forget). A
// device deleted from D1 goes offline in the team it was last published in (kept in storage).
import type { StatusEvent } from '../../shared/api/stream.ts';
import { fleetHubFor, publishStatus, type FleetHubStub } from '../fleet/publish.ts';
import type { HubCapability, HubContext, Hello } from './types.ts';

export const STATUS_TOPIC = 'status';

const LAST_KEY = 'status:last';
const TEAM_KEY = 'status:team';

export class StatusCapability implements HubCapability {
  readonly name = 'status';
  readonly topics = [STATUS_TOPIC] as const;
  /** Publications of this instance, in order. */
  private queue: Promise<void> = Promise.resolve();
  /** One stub for every event: calls on one stub reach the FleetHub in the order they were made. */
  private fleet: FleetHubStub | null = null;

  onHello(hub: HubContext, hello: Hello): void {
    this.enqueue(hub, 'online', hello.facts?.hostname);
  }

  onGone(hub: HubContext): void {
    this.enqueue(hub, 'offline');
  }

  private enqueue(hub: HubContext, status: StatusEvent['status'], hostname?: string): void {
    const timestamp = new Date().toISOString();
    this.queue = this.queue.then(() => this.change(hub, status, timestamp, hostname)).catch((e) => console.error(`DeviceHub: publishing ${status} failed`, e));
    hub.state.waitUntil(this.queue);
  }

  private async change(hub: HubContext, status: StatusEvent['status'], timestamp: string, hostname?: string): Promise<void> {
    if ((await hub.state.storage.get<string>(LAST_KEY)) === status) return;
    await hub.state.storage.put(LAST_KEY, status);
    const row = await hub.env.DB.prepare('SELECT name, hostname, team_id FROM devices WHERE id = ?1')
      .bind(hub.deviceId)
      .first<{ name: string; hostname: string | null; team_id: string }>();
    const published = await hub.state.storage.get<string>(TEAM_KEY);
    const teamId = row?.team_id ?? published;
    if (!teamId) return; // deleted before it ever went online: no team's to see
    if (teamId !== published) await hub.state.storage.put(TEAM_KEY, teamId);
    const event: StatusEvent = { agent_id: hub.deviceId, team_id: teamId, status, timestamp };
    const host = hostname ?? row?.hostname;
    if (host) event.hostname = host;
    if (row?.name) event.name = row.name;
    hub.publish(STATUS_TOPIC, event);
    await publishStatus((this.fleet ??= fleetHubFor(hub.env)), event);
  }
}
