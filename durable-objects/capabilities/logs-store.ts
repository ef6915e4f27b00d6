// A device's log lines in its hub's own SQLite (Durable Object storage), not D1: D1's free plan
// writes 100,000 rows a day for the whole relay, and one device logging a line a second would take
// 86,400 of them before its search index. Here a batch of lines is one multi-row INSERT whose rows
// come from one bound JSON parameter (json_each: DO SQLite binds at most 100 parameters to a
// statement, measured, so one parameter per column per line would be 14 lines a statement) and one
// INSERT … SELECT into the FTS5 index, in one transaction with the batch's dedup mark, so a batch
// is stored whole or not at all and, once acknowledged, never stored twice.
//
// `seq` is the table's rowid (AUTOINCREMENT, so pruning every line never lets a seq be reused):
// the entry id "<device>:<seq>" and the live stream's resume point. The FTS5 index is an external
// content one over the message (the text is kept once, in log_lines). Retention deletes the
// oldest lines (lowest seq) in bounded steps, the index entries with them, by the hub's receive
// time (a device's clock may be years off) and by count.
import { LOG_LEVELS, type LogBatch, type LogLevel, type LogLine, type LogSource } from '../../shared/protocol/logs.ts';
import type { LogEntry, LogQuery } from '../../shared/api/logs.ts';
import { ftsExpression, parseSearch } from './logs-search.ts';

export interface LogLimits {
  /** Lines older than this (by when the hub received them) are deleted. */
  retentionMs: number;
  /** At most this many lines are kept; the oldest go first. */
  maxLines: number;
}

/** Lines one prune step deletes at most (two batches' worth: steady inserts never outrun it). */
export const PRUNE_STEP = 1000;
/** Spools (boots) whose last acknowledged batch is remembered: a new spool is rare (a wiped state dir). */
const KEPT_BOOTS = 16;

/** Where a stream resumes: after a line of this device (seq), or, for another device's, after a receive time. */
export type LogCursor = { seq: number } | { received: number };

type Row = {
  seq: number;
  ts: number;
  received: number;
  source: LogSource;
  source_name: string;
  level: number;
  message: string;
  fields: string | null;
};

export interface StoredBatch {
  /** False when the batch was stored before (a resend): acknowledged again, stored once. */
  stored: boolean;
  /** The entries stored, in seq order. */
  entries: LogEntry[];
  rowsWritten: number;
}

const COLUMNS = 'seq, ts, received, source, source_name, level, message, fields';

export class LogStore {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly deviceId: string,
  ) {
    const sql = storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS log_lines (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, received INTEGER NOT NULL, source TEXT NOT NULL,
      source_name TEXT NOT NULL, level INTEGER NOT NULL, message TEXT NOT NULL, fields TEXT)`);
    // Queries are newest first by the line's own time, within a from/to range: one index serves both.
    sql.exec('CREATE INDEX IF NOT EXISTS log_lines_ts ON log_lines (ts)');
    sql.exec(`CREATE VIRTUAL TABLE IF NOT EXISTS log_fts USING fts5(message, content='log_lines', content_rowid='seq')`);
    sql.exec('CREATE TABLE IF NOT EXISTS log_boots (boot TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL)');
  }

  /**
   * Stores a batch unless its (boot, seq) was stored already, with a warning line first when the
   * spool dropped lines (so whoever reads the logs sees that some are missing, and how many).
   */
  store(batch: LogBatch, now: number): StoredBatch {
    const sql = this.storage.sql;
    return this.storage.transactionSync(() => {
      const acked = sql.exec<{ seq: number }>('SELECT seq FROM log_boots WHERE boot = ?', batch.boot).toArray()[0]?.seq ?? 0;
      if (batch.seq <= acked) return { stored: false, entries: [], rowsWritten: 0 };
      const lines: LogLine[] = batch.dropped ? [droppedLine(batch.dropped, batch.lines[0]!.ts), ...batch.lines] : batch.lines;
      const rows = lines.map((l) => [l.ts, l.source, l.source_name, LOG_LEVELS.indexOf(l.level), l.message, l.fields && Object.keys(l.fields).length ? JSON.stringify(l.fields) : null]);
      const before = sql.exec<{ seq: number | null }>('SELECT MAX(seq) AS seq FROM log_lines').one().seq ?? 0;
      let written = 0;
      written += sql.exec(
        `INSERT INTO log_lines (ts, received, source, source_name, level, message, fields)
           SELECT value ->> 0, ?, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?) ORDER BY key`,
        now,
        JSON.stringify(rows),
      ).rowsWritten;
      written += sql.exec('INSERT INTO log_fts (rowid, message) SELECT seq, message FROM log_lines WHERE seq > ?', before).rowsWritten;
      written += sql.exec('INSERT INTO log_boots (boot, seq, at) VALUES (?, ?, ?) ON CONFLICT (boot) DO UPDATE SET seq = excluded.seq, at = excluded.at', batch.boot, batch.seq, now).rowsWritten;
      if (acked === 0) written += sql.exec('DELETE FROM log_boots WHERE boot NOT IN (SELECT boot FROM log_boots ORDER BY at DESC LIMIT ?)', KEPT_BOOTS).rowsWritten;
      const stored = sql.exec<Row>(`SELECT ${COLUMNS} FROM log_lines WHERE seq > ? ORDER BY seq`, before).toArray();
      return { stored: true, entries: stored.map((r) => this.entry(r)), rowsWritten: written };
    });
  }

  /**
   * One retention step: deletes at most PRUNE_STEP of the oldest lines that are past the age or
   * count limit (their index entries first, which FTS5's external content needs the text for).
   * Returns whether more is due (another step should follow).
   */
  prune(limits: LogLimits, now: number): { deleted: number; more: boolean; rowsWritten: number } {
    const sql = this.storage.sql;
    return this.storage.transactionSync(() => {
      const { lo, hi } = sql.exec<{ lo: number | null; hi: number | null }>('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM log_lines').one();
      if (lo === null || hi === null) return { deleted: 0, more: false, rowsWritten: 0 };
      // Lines are deleted oldest first only, so the seqs kept are contiguous and hi - lo + 1 is their count.
      const byCount = hi - lo + 1 > limits.maxLines ? hi - limits.maxLines : lo - 1;
      // Receive times grow with seq: when the oldest line is not too old, none is (one row read, not a step's).
      const cutoff = now - limits.retentionMs;
      const oldest = sql.exec<{ received: number }>('SELECT received FROM log_lines WHERE seq = ?', lo).one().received;
      const byAge =
        oldest >= cutoff
          ? lo - 1
          : (sql.exec<{ seq: number }>('SELECT seq FROM log_lines WHERE seq BETWEEN ? AND ? AND received < ? ORDER BY seq DESC LIMIT 1', lo, lo + PRUNE_STEP - 1, cutoff).toArray()[0]?.seq ?? lo - 1);
      const cut = Math.min(Math.max(byCount, byAge), lo + PRUNE_STEP - 1);
      if (cut < lo) return { deleted: 0, more: false, rowsWritten: 0 };
      let written = sql.exec(`INSERT INTO log_fts (log_fts, rowid, message) SELECT 'delete', seq, message FROM log_lines WHERE seq <= ?`, cut).rowsWritten;
      written += sql.exec('DELETE FROM log_lines WHERE seq <= ?', cut).rowsWritten;
      const deleted = cut - lo + 1;
      const next = sql.exec<{ received: number }>('SELECT received FROM log_lines ORDER BY seq LIMIT 1').toArray()[0];
      const more = cut < byCount || (next !== undefined && next.received < cutoff);
      return { deleted, more, rowsWritten: written };
    });
  }

  /** A page of the lines that match, newest first (by the line's time, then seq), and how many match. */
  query(q: LogQuery): { entries: LogEntry[]; total: number } {
    const where = this.where(q);
    if (!where) return { entries: [], total: 0 };
    const sql = this.storage.sql;
    const rows = sql.exec<Row>(`SELECT ${COLUMNS} FROM log_lines WHERE ${where.sql} ORDER BY ts DESC, seq DESC LIMIT ? OFFSET ?`, ...where.args, q.limit, q.offset).toArray();
    return { entries: rows.map((r) => this.entry(r)), total: this.count(where) };
  }

  /** How many lines match: without a filter the seq range says it (the seqs kept are contiguous), which reads two rows, not every line. */
  private count(where: { sql: string; args: (string | number)[] }): number {
    const sql = this.storage.sql;
    if (where.args.length === 0) {
      const { lo, hi } = sql.exec<{ lo: number | null; hi: number | null }>('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM log_lines').one();
      return lo === null || hi === null ? 0 : hi - lo + 1;
    }
    return sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM log_lines WHERE ${where.sql}`, ...where.args).one().n;
  }

  /** The sort keys ([ts, seq]) of the first `offset + limit` matches, newest first, and their total: what a fleet-wide query merges. */
  keys(q: LogQuery): { keys: [number, number][]; total: number } {
    const where = this.where(q);
    if (!where) return { keys: [], total: 0 };
    const rows = this.storage.sql.exec<{ ts: number; seq: number }>(`SELECT ts, seq FROM log_lines WHERE ${where.sql} ORDER BY ts DESC, seq DESC LIMIT ?`, ...where.args, q.offset + q.limit).raw();
    return { keys: [...rows] as [number, number][], total: this.count(where) };
  }

  /** The entries of these seqs (those still kept), in the order asked. */
  entries(seqs: readonly number[]): LogEntry[] {
    const rows = this.storage.sql.exec<Row>(`SELECT ${COLUMNS} FROM log_lines WHERE seq IN (SELECT value FROM json_each(?))`, JSON.stringify(seqs)).toArray();
    const bySeq = new Map(rows.map((r) => [r.seq, this.entry(r)]));
    return seqs.flatMap((s) => bySeq.get(s) ?? []);
  }

  /**
   * What a live stream resuming from `cursor` missed: the matching lines after it, oldest first,
   * at most `limit`; `more` when there were more than that; `received` the hub's receive time of
   * the cursor's line (null when it is no longer kept, or the cursor was a time).
   */
  after(cursor: LogCursor, q: LogQuery, limit: number): { entries: LogEntry[]; more: boolean; received: number | null; lost: boolean } {
    const sql = this.storage.sql;
    let received: number | null = null;
    let lost = false;
    let from: { sql: string; arg: number };
    if ('seq' in cursor) {
      received = sql.exec<{ received: number }>('SELECT received FROM log_lines WHERE seq = ?', cursor.seq).toArray()[0]?.received ?? null;
      // The line resumed after was pruned: what followed it may be too, and the reader is told so.
      const lo = sql.exec<{ lo: number | null }>('SELECT MIN(seq) AS lo FROM log_lines').one().lo;
      lost = received === null && lo !== null && lo > cursor.seq + 1;
      from = { sql: 'seq > ?', arg: cursor.seq };
    } else from = { sql: 'received >= ?', arg: cursor.received };
    const where = this.where(q);
    if (!where) return { entries: [], more: false, received, lost };
    const rows = sql.exec<Row>(`SELECT ${COLUMNS} FROM log_lines WHERE ${from.sql} AND ${where.sql} ORDER BY seq LIMIT ?`, from.arg, ...where.args, limit + 1).toArray();
    return { entries: rows.slice(0, limit).map((r) => this.entry(r)), more: rows.length > limit, received, lost };
  }

  /** The WHERE clause of the query's filters, or null when its q holds no word (nothing matches). */
  private where(q: LogQuery): { sql: string; args: (string | number)[] } | null {
    const parts: string[] = ['1'];
    const args: (string | number)[] = [];
    const add = (clause: string, arg: string | number) => {
      parts.push(clause);
      args.push(arg);
    };
    if (q.source) add('source = ?', q.source);
    if (q.source_name) add('source_name = ?', q.source_name);
    // The levels as one JSON array: a placeholder each would count against the 100 bound parameters.
    if (q.level?.length) add('level IN (SELECT value FROM json_each(?))', JSON.stringify(q.level.map((l) => LOG_LEVELS.indexOf(l))));
    if (q.from !== undefined) add('ts >= ?', q.from);
    if (q.to !== undefined) add('ts <= ?', q.to);
    if (q.q !== undefined) {
      const terms = parseSearch(q.q);
      if (!terms) return null;
      add('seq IN (SELECT rowid FROM log_fts WHERE log_fts MATCH ?)', ftsExpression(terms));
    }
    return { sql: parts.join(' AND '), args };
  }

  private entry(r: Row): LogEntry {
    return {
      id: `${this.deviceId}:${r.seq}`,
      timestamp: new Date(r.ts).toISOString(),
      agent_id: this.deviceId,
      source: r.source,
      source_name: r.source_name,
      level: LOG_LEVELS[r.level] ?? 'info',
      message: r.message,
      fields: r.fields ? (JSON.parse(r.fields) as Record<string, string>) : {},
    };
  }
}

/** The name the hub's own lines carry (the warning that the device's spool dropped lines). */
export const RELAY_SOURCE_NAME = 'pirelay';

/** The line that says the device's spool dropped `n` lines before the batch's first (searchable, and shown where the lines are). */
function droppedLine(n: number, ts: number): LogLine & { level: LogLevel } {
  return {
    ts,
    source: 'journal',
    source_name: RELAY_SOURCE_NAME,
    level: 'warning',
    message: `${n} log line${n === 1 ? ' was' : 's were'} dropped on the device (spool full)`,
    fields: { dropped: String(n) },
  };
}
