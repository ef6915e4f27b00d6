// Turns device and enrollment-token rows into the shapes the APIs promise: the native Device,
// Tyto's Agent and the EnrollmentToken without its secret. Kept apart from the routes so the
// native, Tyto and PiTunnel views of one row cannot drift in how they read it.
import type { Agent, Device, EnrollmentToken } from '../../shared/api/devices.ts';
import type { EnrollmentToken as EnrollmentTokenRow } from '../../shared/db/schema.ts';
import { iso } from '../../shared/db/index.ts';
import type { DeviceRow } from './queries.ts';

export function presentDevice(row: DeviceRow): Device {
  return {
    id: row.id,
    name: row.name,
    team_id: row.teamId,
    tags: row.tags,
    hostname: row.hostname,
    serial: row.serial,
    hardware: row.hardware,
    os: row.os,
    os_version: row.osVersion,
    architecture: row.architecture,
    mac_address: row.mac,
    agent_version: row.agentVersion,
    status: row.status,
    online: row.online,
    enrolled: row.enrolled,
    last_seen: iso(row.lastSeen),
    registered_at: iso(row.registeredAt)!,
    approved_at: iso(row.approvedAt),
    identity_conflict: row.identityConflict
      ? { ...row.identityConflict, first_at: iso(row.identityConflict.first_at)!, last_at: iso(row.identityConflict.last_at)! }
      : null,
  };
}

/** uname -m names → the Go names Tyto reports (GOARCH). Unknown names pass through in lower case. */
const GO_ARCH: Record<string, string> = {
  x86_64: 'amd64',
  amd64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  armv8l: 'arm',
  armv7l: 'arm',
  armv6l: 'arm',
  armhf: 'arm',
  arm: 'arm',
  i386: '386',
  i686: '386',
  x86: '386',
};

export function goArch(uname: string): string {
  const a = uname.trim().toLowerCase();
  return GO_ARCH[a] ?? a;
}

export function agentStatus(row: Pick<DeviceRow, 'status' | 'online'>): Agent['status'] {
  if (row.status === 'approved') return row.online ? 'online' : 'offline';
  return row.status;
}

export function presentAgent(row: DeviceRow): Agent {
  return {
    id: row.id,
    name: row.name,
    hostname: row.hostname,
    status: agentStatus(row),
    architecture: goArch(row.architecture),
    os: row.os.trim().toLowerCase(),
    last_seen: iso(row.lastSeen),
    registered_at: iso(row.registeredAt)!,
  };
}

export function tokenState(row: EnrollmentTokenRow, now: number): EnrollmentToken['state'] {
  if (row.revokedAt != null) return 'revoked';
  if (row.expiresAt != null && row.expiresAt <= now) return 'expired';
  if (row.maxUses != null && row.uses >= row.maxUses) return 'used_up';
  return 'active';
}

export function presentEnrollmentToken(row: EnrollmentTokenRow, now: number): EnrollmentToken {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    auto_approve: row.autoApprove,
    device_id: row.deviceId,
    team_id: row.teamId,
    max_uses: row.maxUses,
    uses: row.uses,
    state: tokenState(row, now),
    created_at: iso(row.createdAt)!,
    expires_at: iso(row.expiresAt),
    revoked_at: iso(row.revokedAt),
  };
}
