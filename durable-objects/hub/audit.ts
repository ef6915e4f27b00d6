// The audit entries a DeviceHub writes itself: what a user does on a terminal socket (a handover
// of typing) reaches no request of the Worker's, so its audit(c, …) cannot record it. The same row
// and statement as the Worker's (shared/audit-log.ts), written straight into D1's audit_log; the
// device's team is read with it, not cached, so an entry made after a move names the new team.
import { AUDIT_INSERT, auditRow, cut } from '../../shared/audit-log.ts';

export interface HubAuditEntry {
  action: string;
  /** Who acted, and the credential the terminal was opened with (its kind and id). */
  actor: { id: string; name: string };
  credential: { kind: 'session' | 'api_key'; id: string };
  /** Where they acted from, as the Worker saw it. */
  ip: string;
  details?: Record<string, unknown>;
}

/** Records an action on this hub's device; a failed write is logged, never thrown (the action is done). */
export async function writeDeviceAudit(db: D1Database, deviceId: string, entry: HubAuditEntry): Promise<void> {
  try {
    const device = await db.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(deviceId).first<{ team_id: string }>();
    const row = auditRow({
      actorId: entry.actor.id,
      actorName: entry.actor.name,
      credential: entry.credential.kind,
      credentialId: entry.credential.id,
      action: entry.action,
      targetType: 'device',
      targetId: deviceId,
      teamId: device?.team_id ?? null,
      details: entry.details,
    });
    await db.prepare(AUDIT_INSERT).bind(Date.now(), cut(entry.ip), JSON.stringify([row])).run();
  } catch (err) {
    console.error('audit log write failed:', entry.action, err instanceof Error ? err.message : 'unknown error');
  }
}
