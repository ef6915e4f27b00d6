// The audit log's row, as both writers build it: the Worker (worker/audit.ts, the entries of a
// request) and a DeviceHub (durable-objects/hub/audit.ts, what happens on a terminal socket,
// which no request of the Worker's sees). One place for the bounds and the statement, so an entry
// is cut the same way whoever writes it, and the parameter stays under D1's 2 MB string limit.

/** Longest string kept anywhere in an entry (ids, names, detail values); longer ones end in "…". */
export const AUDIT_STRING_MAX = 256;
/** Longest serialised details kept; larger ones become { truncated: true }. */
export const AUDIT_DETAILS_MAX_CHARS = 4096;
const ARRAY_MAX = 50;

export const cut = (s: string) => (s.length > AUDIT_STRING_MAX ? `${s.slice(0, AUDIT_STRING_MAX - 1)}…` : s);
export const cutOrNull = (s: string | null | undefined) => (s == null ? null : cut(String(s)));

/** The details as stored: long strings and arrays cut, the whole bounded; never throws. */
export function detailsJson(details: Record<string, unknown> | undefined): string | null {
  if (!details) return null;
  let text: string;
  try {
    text = JSON.stringify(details, (_key, v: unknown) => {
      if (typeof v === 'string') return cut(v);
      if (typeof v === 'bigint') return v.toString();
      if (Array.isArray(v) && v.length > ARRAY_MAX) return v.slice(0, ARRAY_MAX);
      return v;
    });
  } catch {
    // A cycle: the entry is still worth having without its details.
    return JSON.stringify({ truncated: true });
  }
  return text.length > AUDIT_DETAILS_MAX_CHARS ? JSON.stringify({ truncated: true }) : text;
}

/** One entry as it is stored, its strings not yet cut (auditRow cuts them). */
export interface AuditRowInput {
  actorId: string | null;
  actorName: string;
  /** session, api_key or none (shared/api/audit.ts AuditCredentialSchema). */
  credential: 'session' | 'api_key' | 'none';
  credentialId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  teamId: string | null;
  details?: Record<string, unknown>;
}

/** An entry as one element of AUDIT_INSERT's ?3: [actor_id, actor_name, credential, credential_id, action, target_type, target_id, team_id, details]. */
export function auditRow(e: AuditRowInput): (string | null)[] {
  return [cutOrNull(e.actorId), cut(e.actorName), e.credential, cutOrNull(e.credentialId), cut(e.action), cut(e.targetType), cutOrNull(e.targetId), cutOrNull(e.teamId), detailsJson(e.details)];
}

// at and ip are the request's (?1, ?2); ?3 is a JSON array of auditRow()s. Rows keep their order,
// so ids follow the order they were recorded in. One statement however many rows: D1 caps bound
// parameters at 100 per query, which a multi-row VALUES would hit at nine entries.
export const AUDIT_INSERT = `INSERT INTO audit_log (at, ip, actor_id, actor_name, credential, credential_id, action, target_type, target_id, team_id, details)
SELECT ?1, ?2, json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]'),
  json_extract(e.value, '$[4]'), json_extract(e.value, '$[5]'), json_extract(e.value, '$[6]'), json_extract(e.value, '$[7]'), json_extract(e.value, '$[8]')
FROM json_each(?3) AS e ORDER BY e.key`;
