// Approve, reject, revoke and remove: the status changes both the native devices API and Tyto's
// agents API make, for a caller who administers the device's team, recorded in the audit log. A
// device that loses its approval also loses its socket at once (the DeviceHub closes it) and its
// key stops working, since /agent/connect only admits approved devices.
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { DeviceStatus } from '../../shared/db/schema.ts';
import { ApiError, notFound } from '../errors.ts';
import { hubFor } from './hub.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { forgetTunnels } from '../tunnels/name-cache.ts';
import { forgetDeviceTeam, scopedTeam } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { changeStatus, deleteDevice, revokeBoundTokens, type DeviceRow, type StatusChange } from './queries.ts';

export const APPROVE: StatusChange = { to: 'approved', from: ['pending', 'rejected', 'approved'], action: 'approve' };
export const REJECT: StatusChange = { to: 'rejected', from: ['pending', 'rejected'], action: 'reject' };
export const REVOKE: StatusChange = { to: 'revoked', from: ['pending', 'approved', 'rejected', 'revoked'], action: 'revoke' };

/** Tyto's pending queue: approve and reject only act on pending devices. */
export const APPROVE_PENDING: StatusChange = { ...APPROVE, from: ['pending'] };
export const REJECT_PENDING: StatusChange = { ...REJECT, from: ['pending'] };

/** Closes the device's socket. The status is already changed, so a retry of the call is safe. */
export async function disconnect(env: Env, deviceId: string, reason: string): Promise<void> {
  try {
    await hubFor(env, deviceId).disconnect(reason);
  } catch (e) {
    console.error('DeviceHub.disconnect failed', deviceId, e);
    throw new ApiError(502, 'DISCONNECT_FAILED', 'The device was updated but its connection could not be closed; retry the call', {
      device_id: deviceId,
    });
  }
}

/**
 * Applies a status change, on a route whose declaration authorized the device (onDevice). A device in a status the change does not start from is
 * a 409 (`onWrongStatus: 'conflict'`, the native API) or a 404 (`'not-found'`, Tyto's pending queue).
 */
export async function applyStatus(
  c: Context<AppEnv>,
  id: string,
  change: StatusChange,
  onWrongStatus: 'conflict' | 'not-found',
): Promise<DeviceRow> {
  const teamId = scopedTeam(c);
  const env = c.env;
  const now = Date.now();
  const outcome = await changeStatus(env.DB, id, change, now);
  if (!outcome) throw notFound('Device', { device_id: id });
  if ('current' in outcome) {
    if (onWrongStatus === 'not-found') throw notFound('Pending device', { device_id: id, status: outcome.current });
    throw wrongStatus(id, change.to, outcome.current);
  }
  if (change.to === 'revoked') await revokeBoundTokens(env.DB, id, now);
  forgetTunnels(); // the ingress caches which device a tunnel name leads to, and whether it is approved
  // Recorded before the socket is closed: if closing fails, the change has still been made.
  audit(c, { action: `device.${change.action}`, targetType: 'device', targetId: id, teamId });
  if (change.to === 'revoked' || change.to === 'rejected') await disconnect(env, id, `device ${change.to}`);
  return outcome.row;
}

function wrongStatus(id: string, to: DeviceStatus, current: DeviceStatus): ApiError {
  const details = { device_id: id, status: current };
  if (current === 'revoked') return new ApiError(409, 'DEVICE_REVOKED', 'A revoked device cannot be approved again; enroll it anew', details);
  if (to === 'rejected') return new ApiError(409, 'DEVICE_NOT_PENDING', `Only a pending device can be rejected (this one is ${current}); revoke it instead`, details);
  return new ApiError(409, 'CONFLICT', `Cannot make a ${current} device ${to}`, details);
}

/** Deletes the device, on a route whose declaration authorized it (onDevice), and closes its socket. */
export async function removeDevice(c: Context<AppEnv>, id: string): Promise<void> {
  const teamId = scopedTeam(c);
  if (!(await deleteDevice(c.env.DB, id, Date.now()))) throw notFound('Device', { device_id: id });
  forgetDeviceTeam(id); // a device added again under this id (Tyto's POST /agents) may be another team's
  forgetTunnels();
  audit(c, { action: 'device.delete', targetType: 'device', targetId: id, teamId });
  await disconnect(c.env, id, 'device removed');
  c.executionCtx.waitUntil(fleetHubFor(c.env).forgetDevice(id).catch((e) => console.warn(`could not make the FleetHub forget ${id}: ${String(e)}`)));
}
