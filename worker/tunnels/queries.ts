// The D1 queries behind every tunnels endpoint (native, PiTunnel, tunnel-control, ingress). Name
// uniqueness is left to the unique index, so two callers racing for one name cannot both win;
// the loser gets 409 TUNNEL_NAME_TAKEN.
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { getDb } from '../../shared/db/index.ts';
import { devices, tunnels, type DeviceStatus, type Tunnel } from '../../shared/db/schema.ts';
import { ApiError, notFound } from '../errors.ts';

/** At most this many tunnels per device: the list the hub pushes to the agent stays small. */
export const MAX_TUNNELS_PER_DEVICE = 100;

function isNameTaken(e: unknown): boolean {
  for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
    if (/UNIQUE constraint failed: tunnels\.name/i.test(cur.message)) return true;
  }
  return false;
}

const nameTaken = (name: string) => new ApiError(409, 'TUNNEL_NAME_TAKEN', `A tunnel named "${name}" already exists`, { name });

/** One device's tunnels, by name. */
export async function listTunnels(d1: D1Database, deviceId: string): Promise<Tunnel[]> {
  return getDb(d1).select().from(tunnels).where(eq(tunnels.deviceId, deviceId)).orderBy(tunnels.name);
}

/** The tunnels of every device of these teams (null: of every team), by name. */
export async function listTeamTunnels(d1: D1Database, teams: readonly string[] | null): Promise<Tunnel[]> {
  if (teams && teams.length === 0) return [];
  const q = getDb(d1).select({ tunnel: tunnels }).from(tunnels);
  const rows = await (teams ? q.innerJoin(devices, eq(devices.id, tunnels.deviceId)).where(inArray(devices.teamId, [...teams])) : q).orderBy(tunnels.name);
  return rows.map((r) => r.tunnel);
}

/** A device's tunnel by id or by name (ids are tried first; the two cannot collide in practice). */
export async function findDeviceTunnel(d1: D1Database, deviceId: string, ref: string): Promise<Tunnel | undefined> {
  return getDb(d1)
    .select()
    .from(tunnels)
    .where(and(eq(tunnels.deviceId, deviceId), or(eq(tunnels.id, ref), eq(tunnels.name, ref))))
    .orderBy(sql`${tunnels.id} = ${ref} DESC`)
    .get();
}

export async function getDeviceTunnel(d1: D1Database, deviceId: string, ref: string): Promise<Tunnel> {
  const row = await findDeviceTunnel(d1, deviceId, ref);
  if (!row) throw notFound('Tunnel', { device_id: deviceId, tunnel: ref });
  return row;
}

/** A tunnel as a visit needs it: the row plus its device's status (only approved devices serve). */
export type VisitedTunnel = Tunnel & { deviceStatus: DeviceStatus };
/**
 * What the ingress looks up by name: also whether the device is online and when it was last seen,
 * to tell a visitor why a tunnel is closed, and its team, whose members alone pass `pirelay` access.
 */
export type NamedTunnel = VisitedTunnel & { deviceOnline: boolean; deviceLastSeen: number | null; deviceTeamId: string };

export async function findTunnelByName(d1: D1Database, name: string): Promise<NamedTunnel | null> {
  const row = await getDb(d1)
    .select({ tunnel: tunnels, deviceStatus: devices.status, deviceOnline: devices.online, deviceLastSeen: devices.lastSeen, deviceTeamId: devices.teamId })
    .from(tunnels)
    .innerJoin(devices, eq(devices.id, tunnels.deviceId))
    .where(eq(tunnels.name, name))
    .get();
  return row ? { ...row.tunnel, deviceStatus: row.deviceStatus, deviceOnline: row.deviceOnline, deviceLastSeen: row.deviceLastSeen, deviceTeamId: row.deviceTeamId } : null;
}

export async function insertTunnel(d1: D1Database, row: Tunnel): Promise<Tunnel> {
  const count = await d1.prepare('SELECT COUNT(*) AS n FROM tunnels WHERE device_id = ?1').bind(row.deviceId).first<{ n: number }>();
  if ((count?.n ?? 0) >= MAX_TUNNELS_PER_DEVICE) {
    throw new ApiError(409, 'TUNNEL_LIMIT_REACHED', `A device may have at most ${MAX_TUNNELS_PER_DEVICE} tunnels`, { device_id: row.deviceId });
  }
  try {
    return (await getDb(d1).insert(tunnels).values(row).returning().get())!;
  } catch (e) {
    if (isNameTaken(e)) throw nameTaken(row.name);
    throw e;
  }
}

/** Applies `set` (updated_at included by the caller); undefined when the tunnel is gone. */
export async function updateTunnel(d1: D1Database, id: string, set: Partial<Tunnel>): Promise<Tunnel | undefined> {
  try {
    return await getDb(d1).update(tunnels).set(set).where(eq(tunnels.id, id)).returning().get();
  } catch (e) {
    if (isNameTaken(e)) throw nameTaken(set.name ?? '');
    throw e;
  }
}

export async function deleteTunnel(d1: D1Database, id: string): Promise<boolean> {
  const res = await d1.prepare('DELETE FROM tunnels WHERE id = ?1').bind(id).run();
  return (res.meta.changes ?? 0) > 0;
}

/** Sets allow_clientless on one tunnel or, with no tunnel id, on all of a device's tunnels. */
export async function setAllowClientless(d1: D1Database, deviceId: string, tunnelId: string | null, allow: boolean, now: number): Promise<void> {
  const where = tunnelId ? and(eq(tunnels.deviceId, deviceId), eq(tunnels.id, tunnelId)) : eq(tunnels.deviceId, deviceId);
  await getDb(d1).update(tunnels).set({ allowClientless: allow, updatedAt: now }).where(where);
}

export interface DeviceRef {
  id: string;
  name: string;
  teamId: string;
  status: DeviceStatus;
  online: boolean;
}

const refColumns = { id: devices.id, name: devices.name, teamId: devices.teamId, status: devices.status, online: devices.online };

/**
 * Devices of these teams (null: of every team) whose id, or else whose display name, is `ref` (a
 * name may be shared by several). Another team's device counts neither as a match nor as a namesake.
 */
export async function devicesByIdOrName(d1: D1Database, ref: string, teams: readonly string[] | null): Promise<DeviceRef[]> {
  if (teams && teams.length === 0) return [];
  const inTeams = teams ? inArray(devices.teamId, [...teams]) : undefined;
  const byId = await getDb(d1).select(refColumns).from(devices).where(and(eq(devices.id, ref), inTeams)).get();
  if (byId) return [byId];
  return getDb(d1).select(refColumns).from(devices).where(and(eq(devices.name, ref), inTeams)).orderBy(devices.id).limit(10);
}

export async function findDeviceRef(d1: D1Database, id: string): Promise<DeviceRef | undefined> {
  return getDb(d1).select(refColumns).from(devices).where(eq(devices.id, id)).get();
}

/** A device's tcp tunnels whose target port is `port` (normally one). */
export async function tcpTunnelsOnPort(d1: D1Database, deviceId: string, port: number): Promise<Tunnel[]> {
  return getDb(d1)
    .select()
    .from(tunnels)
    .where(and(eq(tunnels.deviceId, deviceId), eq(tunnels.kind, 'tcp'), eq(tunnels.targetPort, port)))
    .orderBy(tunnels.name);
}
