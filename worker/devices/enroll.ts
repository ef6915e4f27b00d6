// What POST /api/v1/enroll does: spend a use of the enrollment token, then either register a
// new device under a fresh id or, when the token was made for a device added by hand (Tyto's
// POST /agents), let the agent claim that id. The key's shape (a 32-byte Ed25519 JWK) is checked
// by the request schema; workerd's importKey accepts any 32 bytes, so importing it here would
// prove nothing more.
import { and, eq, isNull } from 'drizzle-orm';
import type { EnrollRequest, EnrollResponse } from '../../shared/api/enroll.ts';
import { randomId } from '../auth/crypto.ts';
import { getDb } from '../../shared/db/index.ts';
import { devices } from '../../shared/db/schema.ts';
import { ApiError } from '../errors.ts';
import { refundEnrollmentToken, spendEnrollmentToken } from './enrollment-tokens.ts';

/** The display name: the one asked for, else the hostname (cut to the 64 a name may have). */
function displayName(req: EnrollRequest, id: string): string {
  const name = (req.name ?? req.facts.hostname).replace(/\p{Cc}/gu, '').trim().slice(0, 64);
  return name || `device-${id.slice(0, 8)}`;
}

/** The answer for the agent, and what the audit log records beside it. */
export interface Enrolled {
  device: EnrollResponse;
  teamId: string;
  tokenId: string;
}

export async function enroll(d1: D1Database, req: EnrollRequest, now: number): Promise<Enrolled> {
  const token = await spendEnrollmentToken(d1, req.token, now);
  const db = getDb(d1);
  const publicKey = JSON.stringify({ kty: req.public_key.kty, crv: req.public_key.crv, x: req.public_key.x });
  const f = req.facts;
  const facts = {
    hostname: f.hostname,
    serial: f.serial,
    hardware: f.hardware,
    os: f.os,
    osVersion: f.os_version,
    architecture: f.architecture,
    mac: f.mac_address,
    agentVersion: req.agent_version,
  };

  if (token.deviceId) {
    // An admin already approved this id by adding it; the first key to arrive claims it.
    const claimed = await db
      .update(devices)
      .set({ ...facts, publicKey, enrollmentTokenId: token.id, updatedAt: now })
      .where(and(eq(devices.id, token.deviceId), isNull(devices.publicKey), eq(devices.status, 'approved')))
      .returning({ id: devices.id, name: devices.name, teamId: devices.teamId })
      .get();
    if (claimed) return { device: { device_id: claimed.id, name: claimed.name, status: 'approved' }, teamId: claimed.teamId, tokenId: token.id };
    await refundEnrollmentToken(d1, token.id);
    const current = await db.select({ status: devices.status }).from(devices).where(eq(devices.id, token.deviceId)).get();
    if (!current) throw new ApiError(401, 'INVALID_ENROLLMENT_TOKEN', 'The device this token was made for no longer exists');
    throw new ApiError(409, 'DEVICE_ALREADY_ENROLLED', 'The device this token was made for is already enrolled or no longer approved', {
      device_id: token.deviceId,
      status: current.status,
    });
  }

  const id = randomId();
  const status = token.autoApprove ? 'approved' : 'pending';
  const name = displayName(req, id);
  try {
    await db.insert(devices).values({
      id,
      name,
      ...facts,
      publicKey,
      status,
      registeredAt: now,
      approvedAt: status === 'approved' ? now : null,
      enrollmentTokenId: token.id,
      teamId: token.teamId,
      updatedAt: now,
    });
  } catch (e) {
    await refundEnrollmentToken(d1, token.id);
    throw e;
  }
  return { device: { device_id: id, name, status }, teamId: token.teamId, tokenId: token.id };
}
