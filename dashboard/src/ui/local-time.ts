// A datetime-local input speaks the user's local time to the minute; the API speaks ISO 8601 (UTC).
// These convert between the two, for every form that filters by time (the audit log, a device's logs).

/** An ISO time as a datetime-local input shows it (local time, to the minute); '' for none or an unparsable one. */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local input's value as ISO 8601; undefined for an empty or unparsable one. */
export function fromLocalInput(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
