// The D1 queries behind every devices endpoint (native, Tyto and PiTunnel alike). Lists are one
// query each and never read the public key; status changes are single conditional UPDATEs, so
// two admins acting at once cannot step over each other.
import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { getDb } from '../../shared/db/index.ts';
import { devices, type DeviceStatus } from '../../shared/db/schema.ts';
import type { DeviceTag } from '../../shared/api/devices.ts';
import { ApiError, notFound } from '../errors.ts';

/** The device's tags as a JSON array, read in the same query as the device. */
const tagsOf = sql<string>`(SELECT json_group_array(json_object('name', t.name, 'color', t.color)) FROM device_tags t WHERE t.device_id = ${devices.id})`.mapWith(
  (v: string): DeviceTag[] => (JSON.parse(v) as DeviceTag[]).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
);

/** Every column an API shows, plus whether a key is registered; never the key itself. */
const deviceColumns = {
  id: devices.id,
  name: devices.name,
  teamId: devices.teamId,
  tags: tagsOf,
  hostname: devices.hostname,
  serial: devices.serial,
  hardware: devices.hardware,
  os: devices.os,
  osVersion: devices.osVersion,
  architecture: devices.architecture,
  mac: devices.mac,
  agentVersion: devices.agentVersion,
  status: devices.status,
  online: devices.online,
  enrolled: sql<boolean>`(${devices.publicKey} IS NOT NULL)`.mapWith((v) => Boolean(v)),
  lastSeen: devices.lastSeen,
  registeredAt: devices.registeredAt,
  approvedAt: devices.approvedAt,
  identityConflict: devices.identityConflict,
};

const selectDevices = (d1: D1Database) => getDb(d1).select(deviceColumns).from(devices);

/** A device as the APIs read it, typed from the drizzle columns above. */
export type DeviceRow = Awaited<ReturnType<ReturnType<typeof selectDevices>['all']>>[number];

export interface DeviceFilter {
  /** Only devices of these teams; null or left out: every team (an instance admin's view). */
  teams?: readonly string[] | null;
  status?: DeviceStatus;
  /** Several statuses at once, e.g. what PiTunnel lists. */
  statuses?: readonly DeviceStatus[];
  online?: boolean;
}

export async function listDevices(d1: D1Database, filter: DeviceFilter = {}): Promise<DeviceRow[]> {
  if (filter.teams && filter.teams.length === 0) return [];
  const where: SQL[] = [];
  if (filter.teams) where.push(inArray(devices.teamId, [...filter.teams]));
  if (filter.status) where.push(eq(devices.status, filter.status));
  if (filter.statuses) where.push(inArray(devices.status, [...filter.statuses]));
  if (filter.online !== undefined) where.push(eq(devices.online, filter.online));
  return selectDevices(d1)
    .where(and(...where))
    .orderBy(devices.name, devices.id);
}

export async function findDevice(d1: D1Database, id: string): Promise<DeviceRow | undefined> {
  return selectDevices(d1).where(eq(devices.id, id)).get();
}

export async function getDevice(d1: D1Database, id: string): Promise<DeviceRow> {
  const row = await findDevice(d1, id);
  if (!row) throw notFound('Device', { device_id: id });
  return row;
}

/** For calls that reach the agent: the device must exist and be approved (404 / 409 otherwise). */
export async function requireApprovedDevice(d1: D1Database, id: string): Promise<void> {
  const row = await d1.prepare('SELECT status FROM devices WHERE id = ?1').bind(id).first<{ status: DeviceStatus }>();
  if (!row) throw notFound('Device', { device_id: id });
  if (row.status !== 'approved') {
    throw new ApiError(409, 'DEVICE_NOT_APPROVED', `Device is ${row.status}, not approved`, { device_id: id, status: row.status });
  }
}

/** An INSERT that does nothing if the id is taken; returns the new row (batchable). */
export function insertDeviceIfAbsent(d1: D1Database, values: typeof devices.$inferInsert) {
  return getDb(d1).insert(devices).values(values).onConflictDoNothing().returning(deviceColumns);
}

export async function renameDevice(d1: D1Database, id: string, name: string, now: number): Promise<DeviceRow> {
  const row = await getDb(d1).update(devices).set({ name, updatedAt: now }).where(eq(devices.id, id)).returning(deviceColumns).get();
  if (!row) throw notFound('Device', { device_id: id });
  return row;
}

/**
 * Puts the device in another team, with the enrollment tokens made for it (so the old team's
 * admins can no longer revoke the token a hand-added device is waiting to claim); the row after the move.
 */
export async function moveDevice(d1: D1Database, id: string, teamId: string, now: number): Promise<DeviceRow> {
  const [moved] = await d1.batch([
    d1.prepare('UPDATE devices SET team_id = ?1, updated_at = ?2 WHERE id = ?3').bind(teamId, now, id),
    d1.prepare('UPDATE enrollment_tokens SET team_id = ?1 WHERE device_id = ?2').bind(teamId, id),
  ]);
  if ((moved?.meta.changes ?? 0) === 0) throw notFound('Device', { device_id: id });
  return getDevice(d1, id);
}

/** Replaces the device's tags in one transaction; the row after the change. */
export async function setDeviceTags(d1: D1Database, id: string, tags: readonly DeviceTag[], now: number): Promise<DeviceRow> {
  const touched = await d1.batch([
    d1.prepare('UPDATE devices SET updated_at = ?1 WHERE id = ?2').bind(now, id),
    d1.prepare('DELETE FROM device_tags WHERE device_id = ?1').bind(id),
    // Guarded, so a device deleted meanwhile makes this a 404 rather than a foreign-key failure.
    ...tags.map((t) => d1.prepare('INSERT INTO device_tags (device_id, name, color) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?1)').bind(id, t.name, t.color)),
  ]);
  if ((touched[0]?.meta.changes ?? 0) === 0) throw notFound('Device', { device_id: id });
  return getDevice(d1, id);
}

/** The statuses a change may start from; starting anywhere else is a 409 (or 404 for Tyto). */
export interface StatusChange {
  to: DeviceStatus;
  from: readonly DeviceStatus[];
  /** What the audit log calls it: device.<action>. */
  action: 'approve' | 'reject' | 'revoke';
}

/**
 * Moves a device to `change.to` if it is in one of `change.from`. Returns the updated row, or
 * the current status when the device exists but was elsewhere, or null when there is no device.
 */
export async function changeStatus(
  d1: D1Database,
  id: string,
  change: StatusChange,
  now: number,
): Promise<{ row: DeviceRow } | { current: DeviceStatus } | null> {
  const db = getDb(d1);
  const row = await db
    .update(devices)
    .set({
      status: change.to,
      // Keep the first approval time when an approved device is approved again.
      approvedAt: change.to === 'approved' ? sql`COALESCE(${devices.approvedAt}, ${now})` : undefined,
      // Only an approved device may hold a socket; the hub closes any other's right after this.
      online: change.to === 'approved' ? undefined : false,
      updatedAt: now,
    })
    .where(and(eq(devices.id, id), inArray(devices.status, [...change.from])))
    .returning(deviceColumns)
    .get();
  if (row) return { row };
  const current = await db.select({ status: devices.status }).from(devices).where(eq(devices.id, id)).get();
  return current ? { current: current.status } : null;
}

/** Tokens made for one device must die with it, or its id could be claimed again. */
export async function revokeBoundTokens(d1: D1Database, deviceId: string, now: number): Promise<void> {
  await d1
    .prepare('UPDATE enrollment_tokens SET revoked_at = ?1 WHERE device_id = ?2 AND revoked_at IS NULL')
    .bind(now, deviceId)
    .run();
}

/** Deletes the device and revokes tokens bound to it, in one transaction. False if there was none. */
export async function deleteDevice(d1: D1Database, id: string, now: number): Promise<boolean> {
  const [deleted] = await d1.batch([
    d1.prepare('DELETE FROM devices WHERE id = ?1').bind(id),
    d1.prepare('UPDATE enrollment_tokens SET revoked_at = ?1 WHERE device_id = ?2 AND revoked_at IS NULL').bind(now, id),
  ]);
  return (deleted?.meta.changes ?? 0) > 0;
}
