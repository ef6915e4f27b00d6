// The alerts capability's memory, in the hub's own storage so it outlives hibernation and restarts:
// per rule, the alert it keeps firing (and at which threshold it resolves), since when a presence
// condition holds (pending) or has stopped holding (recovering), and a short ring of the rule's
// series values, enough for the longer of its hold and recovery windows, from which the averages
// are taken.
//
// Cost: the whole of it is one value of the hub's synchronous KV storage, read once per instance
// and written once per evaluation that changed it (flush) — one row written per sample however
// many rules there are, where a row per point per rule would multiply the device's storage writes
// by its rule count. The ring is bounded: a rule keeps at most MAX_BUCKETS buckets of [start,
// sum, count], each bucket max(1 s, window / MAX_BUCKETS) wide, so a one-day hold at a 1 s
// interval is 360 buckets of 240 samples rather than 86,400 points; an average is then exact to
// a bucket's width at the window's far edge.
import type { AlertLevel } from '../../shared/api/alerts.ts';

export interface RuleState {
  ruleId: string;
  /** The firing alert (its D1 row), or null. */
  alertId: string | null;
  level: AlertLevel | null;
  /** The threshold the alert resolves under: the one it first fired at. */
  threshold: number | null;
  /** Presence rules: since when the condition (missing, offline) holds without an alert yet. */
  pendingSince: number | null;
  /** Presence rules: since when a firing alert's condition stopped holding. */
  recoveringSince: number | null;
  /** Threshold rules: since when the window counts samples (the first of an unbroken run, or the last fire or resolve); a window is covered once it reaches back that far. */
  since: number | null;
}

/** Buckets a rule's ring holds at most. */
export const MAX_BUCKETS = 360;
const KEY = 'alerts:state';

/** [start ms, sum, count] */
type Bucket = [number, number, number];
/** Per rule: its state, and its ring of buckets `width` ms wide. */
type Stored = Record<string, { state: Omit<RuleState, 'ruleId'>; ring: Bucket[]; width: number }>;

export const emptyState = (ruleId: string): RuleState => ({ ruleId, alertId: null, level: null, threshold: null, pendingSince: null, recoveringSince: null, since: null });

/** The bucket width of a rule whose longest window is `windowMs`. */
export const bucketMs = (windowMs: number) => Math.max(1000, Math.ceil(windowMs / MAX_BUCKETS / 1000) * 1000);

export class AlertState {
  private data: Stored | null = null;
  private dirty = false;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** The stored value, read once per instance. */
  private loaded(): Stored {
    return (this.data ??= this.storage.kv.get<Stored>(KEY) ?? {});
  }

  private entry(ruleId: string) {
    const d = this.loaded();
    return Object.hasOwn(d, ruleId) ? d[ruleId]! : null;
  }

  get(ruleId: string): RuleState {
    const e = this.entry(ruleId);
    return e ? { ruleId, ...e.state } : emptyState(ruleId);
  }

  all(): RuleState[] {
    return Object.entries(this.loaded()).map(([ruleId, e]) => ({ ruleId, ...e.state }));
  }

  put(s: RuleState): void {
    const { ruleId, ...state } = s;
    const e = this.entry(ruleId);
    if (e) e.state = state;
    else this.loaded()[ruleId] = { state, ring: [], width: 1000 };
    this.dirty = true;
  }

  /** Forgets a rule: its state and its ring. */
  forget(ruleId: string): void {
    if (!this.entry(ruleId)) return;
    delete this.loaded()[ruleId];
    this.dirty = true;
  }

  /** Adds a rule's value at `at` to its ring, which keeps `keepMs` back from `at` (and nothing after it: a device clock that went back). */
  addPoint(ruleId: string, at: number, value: number, keepMs: number): void {
    if (!this.entry(ruleId)) this.put(emptyState(ruleId));
    const e = this.entry(ruleId)!;
    const width = bucketMs(keepMs);
    const start = Math.floor(at / width) * width;
    const ring = e.ring.filter((b) => b[0] >= start - keepMs - width && b[0] <= start);
    const last = ring.at(-1);
    if (last && last[0] === start) {
      last[1] += value;
      last[2] += 1;
    } else ring.push([start, value, 1]);
    e.ring = ring;
    e.width = width;
    this.dirty = true;
  }

  /** The average of a rule's values from `from` on (in the buckets that end after it). */
  average(ruleId: string, from: number): number | null {
    const e = this.entry(ruleId);
    if (!e) return null;
    let sum = 0;
    let count = 0;
    for (const b of e.ring) {
      if (b[0] + e.width <= from) continue;
      sum += b[1];
      count += b[2];
    }
    return count ? sum / count : null;
  }

  /** Empties every rule's ring (the series had a gap: the agent was away). */
  dropPoints(): void {
    for (const e of Object.values(this.loaded())) {
      if (!e.ring.length) continue;
      e.ring = [];
      this.dirty = true;
    }
  }

  /** Writes what changed since the last flush, as one value. */
  flush(): void {
    if (!this.dirty || !this.data) return;
    this.storage.kv.put(KEY, this.data);
    this.dirty = false;
  }
}
