// The systemd journal, followed through `journalctl --follow --output=json`: one JSON object per
// line, every field a string — or an array of bytes when journald holds it as binary (a MESSAGE
// with control characters or invalid UTF-8), or an array of either when a field repeats. Each
// entry's __CURSOR is where the next run resumes (`--after-cursor`), so a restart of the agent
// neither loses nor repeats a line; the very first run starts at the journal's end (`--lines=0`:
// the tail position itself, where `--since now` would compare clocks and could skip a line stamped
// a moment before). A line that is not such an entry is counted and skipped. journalctl exiting
// (the journal rotated away, a crash) is restarted with a growing delay.
import { MAX_LOG_FIELDS, type LogLine } from '../../shared/protocol/logs.ts';
import { backoffDelay } from '../backoff.ts';
import type { Logger } from '../log.ts';
import { boundMessage, levelFromPriority } from './level.ts';

export interface JournalEntry {
  cursor: string;
  line: LogLine;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** A journal field as text: bytes decoded as UTF-8 (invalid ones replaced), repeats joined by lines. */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return undefined;
  if (value.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 255)) return utf8.decode(Uint8Array.from(value as number[]));
  const parts = value.map(text).filter((p) => p !== undefined);
  return parts.length ? parts.join('\n') : undefined;
}

/** The journal fields a line carries along (few and short: the line is what is searched). */
const CARRIED: [string, string][] = [
  ['_PID', 'pid'],
  ['_COMM', 'comm'],
  ['_SYSTEMD_UNIT', 'unit'],
  ['SYSLOG_IDENTIFIER', 'identifier'],
  ['_HOSTNAME', 'hostname'],
];

/** One line of `journalctl -o json`, or null when it is not a journal entry with a cursor. */
export function parseJournalLine(raw: string): JournalEntry | null {
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
  const e = o as Record<string, unknown>;
  const cursor = e.__CURSOR;
  if (typeof cursor !== 'string' || !cursor || cursor.length > 1024) return null;
  const us = typeof e.__REALTIME_TIMESTAMP === 'string' && /^\d{1,20}$/.test(e.__REALTIME_TIMESTAMP) ? Number(e.__REALTIME_TIMESTAMP) : NaN;
  const ts = Number.isFinite(us) ? Math.floor(us / 1000) : Date.now();
  const name = [e._SYSTEMD_UNIT, e.SYSLOG_IDENTIFIER, e._COMM].map(text).find((v) => v !== undefined && v.trim() !== '') ?? 'journal';
  const fields: Record<string, string> = {};
  let count = 0;
  for (const [field, key] of CARRIED) {
    const v = text(e[field]);
    if (v !== undefined && count < MAX_LOG_FIELDS) {
      fields[key] = v.slice(0, 1024);
      count++;
    }
  }
  const line: LogLine = {
    ts,
    source: 'journal',
    source_name: name.slice(0, 256),
    level: levelFromPriority(text(e.PRIORITY)),
    message: boundMessage(text(e.MESSAGE) ?? ''),
  };
  if (count) line.fields = fields;
  return { cursor, line };
}

/** journalctl's arguments: resume after the saved cursor, or (first run) start at the journal's end. */
export function journalArgs(cursor: string | null): string[] {
  const args = ['--follow', '--output=json', '--all', '--no-pager', '--quiet'];
  return cursor ? [...args, '--no-tail', `--after-cursor=${cursor}`] : [...args, '--lines=0'];
}

export interface JournalFollowerDeps {
  log: Logger;
  /** The journalctl to run. */
  command: string;
  /** Where to resume: the cursor of the last entry safely spooled, or null the first time. */
  cursor: () => string | null;
  /** Entries of one read of journalctl's output, in order; malformed lines are already skipped. */
  onEntries: (entries: JournalEntry[]) => void;
  /** journalctl keeps refusing the cursor (the journal it named was vacuumed away): start over at the end. */
  onCursorRefused: () => void;
  /** Delay cap of restarts (tests use a short one). */
  maxBackoffMs?: number;
}

/** A journalctl run past this long counts as healthy: the next restart's delay starts small again. */
const HEALTHY_MS = 30_000;
/** A failing exit this soon after start, with a cursor, is taken as a refused cursor… */
const QUICK_FAILURE_MS = 5_000;
/** …and after this many in a row the cursor is given up (journalctl says it cannot seek to it). */
const REFUSALS = 3;
/** A line longer than this is not an entry journalctl would write with our bound: it is skipped. */
const MAX_JOURNAL_LINE = 4 * 1024 * 1024;

export class JournalFollower {
  /** Lines of journalctl's output that were not journal entries. */
  malformed = 0;
  restarts = 0;
  private child: ReturnType<typeof Bun.spawn> | null = null;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private refusals = 0;

  constructor(private readonly deps: JournalFollowerDeps) {}

  start(): void {
    if (this.stopped || this.child) return;
    const { log, command } = this.deps;
    const startedAt = Date.now();
    const cursor = this.deps.cursor();
    let child: ReturnType<typeof Bun.spawn<'ignore', 'pipe', 'pipe'>>;
    try {
      child = Bun.spawn([command, ...journalArgs(cursor)], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    } catch (e) {
      log.warn('journalctl failed to start', { command, error: String(e) });
      this.again(startedAt);
      return;
    }
    this.child = child;
    void this.drainErrors(child.stderr);
    void this.read(child.stdout, child).finally(async () => {
      await child.exited;
      if (this.child === child) this.child = null;
      if (this.stopped) return;
      log.warn('journalctl exited; restarting it', { code: child.exitCode, signal: child.signalCode });
      const refused = cursor !== null && child.exitCode !== 0 && Date.now() - startedAt < QUICK_FAILURE_MS && cursor === this.deps.cursor();
      this.refusals = refused ? this.refusals + 1 : 0;
      if (this.refusals >= REFUSALS) {
        // Lines between that cursor and now cannot be had any more; following goes on from the end.
        log.warn('journalctl keeps refusing the saved cursor; following from the end of the journal', { cursor });
        this.refusals = 0;
        this.deps.onCursorRefused();
      }
      this.again(startedAt);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.child?.kill();
    this.child = null;
  }

  private again(startedAt: number): void {
    if (Date.now() - startedAt > HEALTHY_MS) this.attempt = 0;
    const delay = backoffDelay(this.attempt++, this.deps.maxBackoffMs ?? 60_000);
    this.restarts++;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.start();
    }, delay);
    this.timer.unref?.();
  }

  private async read(stdout: ReadableStream<Uint8Array>, child: { kill(): void }): Promise<void> {
    const decoder = new TextDecoder();
    let rest = '';
    const reader = stdout.getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        const text = rest + decoder.decode(chunk, { stream: true });
        const lines = text.split('\n');
        rest = lines.pop()!;
        if (rest.length > MAX_JOURNAL_LINE) {
          this.malformed++;
          rest = '';
        }
        const entries: JournalEntry[] = [];
        for (const l of lines) {
          if (!l.trim()) continue;
          const entry = parseJournalLine(l);
          if (entry) entries.push(entry);
          else this.malformed++;
        }
        if (entries.length && !this.stopped) this.deps.onEntries(entries);
      }
    } catch (e) {
      // Spooling failed (a full disk…): this run ends, and the next resumes after the last cursor saved.
      if (!this.stopped) this.deps.log.warn('reading journalctl failed', { error: String(e) });
      child.kill();
    }
    // A last line without its newline is an entry journalctl did not finish writing: it is read
    // again, whole, by the next run (which resumes after the last cursor we kept).
  }

  private async drainErrors(stderr: ReadableStream<Uint8Array>): Promise<void> {
    let said = 0;
    const reader = stderr.getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        // journalctl's complaints (no journal files, permissions) go to our log, a few at most.
        if (said++ < 5) this.deps.log.warn('journalctl says', { stderr: new TextDecoder().decode(chunk).trim().slice(0, 512) });
      }
    } catch {
      // The pipe closed with the process.
    }
  }
}
