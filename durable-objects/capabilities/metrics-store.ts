// A device's metrics history in its hub's own SQLite (Durable Object storage), never D1: one
// device at 1 s writes 86,400 raw points a day, and D1 takes 2,000 rows per device per day at most.
//
// - `metrics_raw`: one row per point (its timestamp is the key, so a point sent twice — a backlog
//   resent after a lost ack — is stored once), its series as JSON of quantized integers
//   (shared/api/series.ts quantize: hundredths), and when the hub received it. Raw points are
//   pruned by that receive time, so a late point keeps deduplicating resends for as long as a live one.
// - `metrics_rollup`: one row per (resolution, bucket) of 1m, 5m and 1h, holding [sum, count, min,
//   max] per series as JSON. Integers throughout, so every sum is exact: a bucket built from the
//   next finer level equals the one built from raw points.
// - Watermarks (KV `metrics:closed`): per resolution, every bucket ending at or before it is
//   closed. Closing is by the hub's clock (a GRACE after the bucket ends, so a sample taken in its
//   last second and received in the next is not late): a 1m bucket is built from its raw points,
//   then a 5m bucket from its 1m buckets, a 1h bucket from its 5m buckets. A point that arrives
//   for a closed bucket (a backlog, a device clock behind the hub's) is merged into the closed
//   bucket of each resolution with the same arithmetic; an open bucket picks it up when it closes.
// - Retention per resolution; each prune step deletes at most PRUNE_STEP rows of a resolution.
import { BUCKET_MS, DEFAULT_RETENTION_MS, RESOLUTIONS, quantize, type Resolution, type Series } from '../../shared/api/series.ts';
import { numberVar } from '../../shared/env-vars.ts';

/** A bucket closes this long after it ends (by the hub's clock). */
export const GRACE_MS = 5_000;
/** Rows of one resolution a prune step deletes at most. */
export const PRUNE_STEP = 1_000;
/** Rows past retention wait up to this long for their prune step, so steady sampling wakes the hub to prune every few minutes rather than at each sample. */
export const PRUNE_SLACK_MS = 5 * 60_000;
const CLOSED_KEY = 'metrics:closed';
const ROLLUPS = ['1m', '5m', '1h'] as const;
type Rollup = (typeof ROLLUPS)[number];
/** Where each rollup is built from. */
const FINER: Record<Rollup, Resolution> = { '1m': 'raw', '5m': '1m', '1h': '5m' };

/** Per series: [sum, count, min, max] of quantized values. */
export type Stats = Record<string, [number, number, number, number]>;
export type Retention = Record<Resolution, number>;
export type SeriesStat = { avg: number; min: number; max: number };
/** A point or a bucket: its time (ms) and each series' avg/min/max in the series' unit. */
export interface StoredRow {
  timestamp: number;
  series: Record<string, SeriesStat>;
}

/** The retention of each resolution: DEFAULT_RETENTION_MS, or METRICS_RETENTION_<RAW|1M|5M|1H>_MS. */
export function retentionOf(env: Env): Retention {
  const vars = { raw: env.METRICS_RETENTION_RAW_MS, '1m': env.METRICS_RETENTION_1M_MS, '5m': env.METRICS_RETENTION_5M_MS, '1h': env.METRICS_RETENTION_1H_MS };
  const out = {} as Retention;
  for (const r of RESOLUTIONS) out[r] = numberVar(vars[r], DEFAULT_RETENTION_MS[r], 1);
  return out;
}

/** The series quantized (integers of hundredths). */
export function quantized(series: Series): Series {
  const out: Series = {};
  // `timestamp` is the name a history point gives its time: a series of that name (a device may send any) would overwrite it.
  for (const [k, v] of Object.entries(series)) if (k !== 'timestamp') out[k] = quantize(v);
  return out;
}

/** Adds a point's quantized series into stats. */
export function addPoint(stats: Stats, q: Series): void {
  for (const [k, v] of Object.entries(q)) {
    // Own properties only: a series may be named `constructor`.
    const s = Object.hasOwn(stats, k) ? stats[k] : undefined;
    if (!s) stats[k] = [v, 1, v, v];
    else {
      s[0] += v;
      s[1] += 1;
      if (v < s[2]) s[2] = v;
      if (v > s[3]) s[3] = v;
    }
  }
}

/** Adds a bucket's stats into stats (the same arithmetic as points: sums add, mins and maxes compare). */
export function addStats(stats: Stats, more: Stats): void {
  for (const [k, m] of Object.entries(more)) {
    const s = Object.hasOwn(stats, k) ? stats[k] : undefined;
    if (!s) stats[k] = [...m];
    else {
      s[0] += m[0];
      s[1] += m[1];
      if (m[2] < s[2]) s[2] = m[2];
      if (m[3] > s[3]) s[3] = m[3];
    }
  }
}

const bucketOf = (ts: number, r: Rollup) => Math.floor(ts / BUCKET_MS[r]) * BUCKET_MS[r];

/** A bucket's stats as history shows them: avg (sum / count, to four decimals), min and max, in the series' unit. */
function present(stats: Stats, keep: (name: string) => boolean): Record<string, SeriesStat> {
  const out: Record<string, SeriesStat> = {};
  for (const [k, [sum, count, min, max]] of Object.entries(stats)) if (keep(k)) out[k] = { avg: Math.round((sum * 100) / count) / 10_000, min: min / 100, max: max / 100 };
  return out;
}

export class MetricsStore {
  /** Rows written by the last store/close/prune call (Cloudflare bills rows written; tests count them). */
  rowsWritten = 0;

  constructor(private readonly storage: DurableObjectStorage) {
    const sql = storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS metrics_raw (ts INTEGER PRIMARY KEY, received INTEGER NOT NULL, series TEXT NOT NULL)');
    sql.exec('CREATE TABLE IF NOT EXISTS metrics_rollup (resolution TEXT NOT NULL, bucket INTEGER NOT NULL, stats TEXT NOT NULL, PRIMARY KEY (resolution, bucket)) WITHOUT ROWID');
  }

  /**
   * Stores a point (unless one of that timestamp is stored already: false) and, if its buckets are
   * closed already, merges it into them. Closes what is due first, so a point is either in a
   * bucket still to be built or merged into a built one, never both and never neither.
   */
  store(ts: number, series: Series, now: number): boolean {
    return this.storage.transactionSync(() => {
      this.rowsWritten = 0;
      this.closeDue(now);
      const q = quantized(series);
      const cur = this.storage.sql.exec('INSERT OR IGNORE INTO metrics_raw (ts, received, series) VALUES (?, ?, ?)', ts, now, JSON.stringify(q));
      this.rowsWritten += cur.rowsWritten;
      if (!cur.rowsWritten) return false;
      const closed = this.closed();
      for (const r of ROLLUPS) {
        const b = bucketOf(ts, r);
        if (b + BUCKET_MS[r] > closed[r]) continue;
        const stats = this.rollup(r, b) ?? {};
        addPoint(stats, q);
        this.putRollup(r, b, stats);
      }
      return true;
    });
  }

  /** Closes every bucket due by `now` (each resolution from the one finer); true if a watermark moved. */
  closeDue(now: number): boolean {
    const closed = this.closed();
    let moved = false;
    let limit = now - GRACE_MS;
    for (const r of ROLLUPS) {
      const target = bucketOf(limit, r);
      if (target > closed[r]) {
        this.build(r, closed[r], target);
        closed[r] = target;
        moved = true;
      }
      limit = closed[r];
    }
    if (moved) {
      this.storage.kv.put(CLOSED_KEY, closed);
      this.rowsWritten += 1;
    }
    return moved;
  }

  /** Builds the buckets of `r` in [from, to) from the finer level. */
  private build(r: Rollup, from: number, to: number): void {
    const buckets = new Map<number, Stats>();
    const finer = FINER[r];
    if (finer === 'raw') {
      for (const row of this.storage.sql.exec<{ ts: number; series: string }>('SELECT ts, series FROM metrics_raw WHERE ts >= ? AND ts < ? ORDER BY ts', from, to)) {
        const b = bucketOf(row.ts, r);
        let s = buckets.get(b);
        if (!s) buckets.set(b, (s = {}));
        addPoint(s, JSON.parse(row.series) as Series);
      }
    } else {
      for (const row of this.storage.sql.exec<{ bucket: number; stats: string }>(
        'SELECT bucket, stats FROM metrics_rollup WHERE resolution = ? AND bucket >= ? AND bucket < ? ORDER BY bucket',
        finer,
        from,
        to,
      )) {
        const b = bucketOf(row.bucket, r);
        let s = buckets.get(b);
        if (!s) buckets.set(b, (s = {}));
        addStats(s, JSON.parse(row.stats) as Stats);
      }
    }
    // A bucket built here may hold late points merged already (a closed bucket of this resolution is never rebuilt: `from` is its watermark).
    for (const [b, stats] of buckets) this.putRollup(r, b, stats);
  }

  /** One prune step: deletes what is past each resolution's retention, at most PRUNE_STEP rows each; true if more is left. */
  prune(retention: Retention, now: number): boolean {
    const sql = this.storage.sql;
    return this.storage.transactionSync(() => {
      this.rowsWritten = 0;
      let more = false;
      const raw = sql.exec('DELETE FROM metrics_raw WHERE ts IN (SELECT ts FROM metrics_raw WHERE received < ? LIMIT ?)', now - retention.raw, PRUNE_STEP);
      this.rowsWritten += raw.rowsWritten;
      if (raw.rowsWritten >= PRUNE_STEP) more = true;
      for (const r of ROLLUPS) {
        // A bucket goes once all of it is past retention.
        const cur = sql.exec(
          'DELETE FROM metrics_rollup WHERE resolution = ?1 AND bucket IN (SELECT bucket FROM metrics_rollup WHERE resolution = ?1 AND bucket < ?2 ORDER BY bucket LIMIT ?3)',
          r,
          now - retention[r] - BUCKET_MS[r],
          PRUNE_STEP,
        );
        this.rowsWritten += cur.rowsWritten;
        if (cur.rowsWritten >= PRUNE_STEP) more = true;
      }
      return more;
    });
  }

  /**
   * When the store next has work: the close of its earliest open bucket holding data, or the
   * earliest time a row passes its retention; null when it holds nothing.
   */
  nextDue(retention: Retention): number | null {
    const sql = this.storage.sql;
    const closed = this.closed();
    const times: number[] = [];
    const openRaw = sql.exec<{ ts: number | null }>('SELECT MIN(ts) AS ts FROM metrics_raw WHERE ts >= ?', closed['1m']).one().ts;
    if (openRaw !== null) times.push(bucketOf(openRaw, '1m') + BUCKET_MS['1m'] + GRACE_MS);
    for (const r of ['5m', '1h'] as const) {
      const open = sql.exec<{ b: number | null }>('SELECT MIN(bucket) AS b FROM metrics_rollup WHERE resolution = ? AND bucket >= ?', FINER[r], closed[r]).one().b;
      if (open !== null) times.push(bucketOf(open, r) + BUCKET_MS[r] + GRACE_MS);
    }
    const oldestRaw = sql.exec<{ at: number | null }>('SELECT MIN(received) AS at FROM metrics_raw').one().at;
    if (oldestRaw !== null) times.push(oldestRaw + retention.raw + PRUNE_SLACK_MS);
    for (const r of ROLLUPS) {
      const oldest = sql.exec<{ b: number | null }>('SELECT MIN(bucket) AS b FROM metrics_rollup WHERE resolution = ?', r).one().b;
      if (oldest !== null) times.push(oldest + BUCKET_MS[r] + retention[r] + PRUNE_SLACK_MS);
    }
    return times.length ? Math.min(...times) : null;
  }

  /**
   * Rows of `resolution` whose time is in [from, to], in time order, at most `limit`; a bucket
   * counts if it starts in the range. Buckets still open (the current minute, hour…) come last,
   * made from the finer levels as they stand, so a chart's newest bucket is there before it closes.
   */
  rows(resolution: Resolution, from: number, to: number, limit: number, series?: ReadonlySet<string>): StoredRow[] {
    const sql = this.storage.sql;
    const keep = (name: string) => !series || series.has(name);
    const out: StoredRow[] = [];
    if (resolution === 'raw') {
      for (const row of sql.exec<{ ts: number; series: string }>('SELECT ts, series FROM metrics_raw WHERE ts >= ? AND ts <= ? ORDER BY ts LIMIT ?', from, to, limit)) {
        const stats: Record<string, SeriesStat> = {};
        for (const [k, v] of Object.entries(JSON.parse(row.series) as Series)) if (keep(k)) stats[k] = { avg: v / 100, min: v / 100, max: v / 100 };
        out.push({ timestamp: row.ts, series: stats });
      }
      return out;
    }
    for (const row of sql.exec<{ bucket: number; stats: string }>(
      'SELECT bucket, stats FROM metrics_rollup WHERE resolution = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket LIMIT ?',
      resolution,
      from,
      to,
      limit,
    )) {
      out.push({ timestamp: row.bucket, series: present(JSON.parse(row.stats) as Stats, keep) });
    }
    const closed = this.closed()[resolution];
    if (out.length >= limit || to < closed) return out;
    const open = [...this.open(resolution)].filter(([b]) => b >= from && b <= to).sort(([a], [b]) => a - b);
    for (const [b, stats] of open.slice(0, limit - out.length)) out.push({ timestamp: b, series: present(stats, keep) });
    return out;
  }

  /** The open buckets of `r` (at or after its watermark), from the closed buckets of the finer level not yet rolled up and that level's own open ones. */
  private open(r: Rollup): Map<number, Stats> {
    const sql = this.storage.sql;
    const from = this.closed()[r];
    const buckets = new Map<number, Stats>();
    const into = (ts: number) => {
      const b = bucketOf(ts, r);
      let s = buckets.get(b);
      if (!s) buckets.set(b, (s = {}));
      return s;
    };
    const finer = FINER[r];
    if (finer === 'raw') {
      for (const row of sql.exec<{ ts: number; series: string }>('SELECT ts, series FROM metrics_raw WHERE ts >= ?', from)) addPoint(into(row.ts), JSON.parse(row.series) as Series);
      return buckets;
    }
    for (const row of sql.exec<{ bucket: number; stats: string }>('SELECT bucket, stats FROM metrics_rollup WHERE resolution = ? AND bucket >= ?', finer, from)) {
      addStats(into(row.bucket), JSON.parse(row.stats) as Stats);
    }
    for (const [b, stats] of this.open(finer)) addStats(into(b), stats);
    return buckets;
  }

  /** A rollup bucket's stats as stored (quantized), or null. */
  rollup(r: Rollup, bucket: number): Stats | null {
    const row = this.storage.sql.exec<{ stats: string }>('SELECT stats FROM metrics_rollup WHERE resolution = ? AND bucket = ?', r, bucket).toArray()[0];
    return row ? (JSON.parse(row.stats) as Stats) : null;
  }

  /** The watermarks: per rollup, every bucket ending at or before it is closed. */
  closed(): Record<Rollup, number> {
    return this.storage.kv.get<Record<Rollup, number>>(CLOSED_KEY) ?? { '1m': 0, '5m': 0, '1h': 0 };
  }

  private putRollup(r: Rollup, bucket: number, stats: Stats): void {
    this.rowsWritten += this.storage.sql.exec('INSERT INTO metrics_rollup (resolution, bucket, stats) VALUES (?, ?, ?) ON CONFLICT (resolution, bucket) DO UPDATE SET stats = excluded.stats', r, bucket, JSON.stringify(stats)).rowsWritten;
  }
}
