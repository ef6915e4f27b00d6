// How a log line gets its level and its bounded message. journald says the level (PRIORITY); a
// file line does not, so its level is guessed from its text, conservatively: only a level word
// near the start (ERROR, [warn], level=debug…), a syslog `<N>` prefix or a JSON line's level field
// counts, and anything else is `info` — a wrong `error` is worse than a missed one. A message over
// MAX_LOG_MESSAGE bytes is cut at a character boundary and says how much was cut.
import { LOG_LEVELS, LOG_TRUNCATED_MARKER, MAX_LOG_MESSAGE, type LogLevel } from '../../shared/protocol/logs.ts';

/** journald's PRIORITY (syslog's 0–7) → our level; anything else is `info`. */
export function levelFromPriority(priority: unknown): LogLevel {
  const n = typeof priority === 'string' && /^[0-7]$/.test(priority) ? Number(priority) : typeof priority === 'number' ? priority : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 7 ? LOG_LEVELS[n]! : 'info';
}

const WORDS: Record<string, LogLevel> = {
  emerg: 'emergency',
  emergency: 'emergency',
  panic: 'emergency',
  alert: 'alert',
  crit: 'critical',
  critical: 'critical',
  fatal: 'critical',
  err: 'error',
  error: 'error',
  warn: 'warning',
  warning: 'warning',
  notice: 'notice',
  info: 'info',
  debug: 'debug',
  trace: 'debug',
};
const WORD_ALTERNATION = Object.keys(WORDS).join('|');
/** An upper-case level word on its own (`ERROR:`, `2024-… WARN …`). */
const UPPER = new RegExp(`(?:^|[^A-Za-z0-9_])(${WORD_ALTERNATION.toUpperCase()})(?![A-Za-z0-9_])`);
/** Any case, but marked as a level: `[error]`, `<warn>`, `level=debug`, `lvl: info`, `error:` first. */
const MARKED = new RegExp(`(?:[\\[<(](${WORD_ALTERNATION})[\\]>)]|\\b(?:level|lvl|severity)\\s*[=:]\\s*"?(${WORD_ALTERNATION})\\b|^(${WORD_ALTERNATION}):)`, 'i');
/** How far into a line a level word still counts (after a timestamp, a host, a program name). */
const LEVEL_WINDOW = 96;
/** pino's and bunyan's numeric levels. */
const NUMERIC: [number, LogLevel][] = [
  [60, 'critical'],
  [50, 'error'],
  [40, 'warning'],
  [30, 'info'],
  [0, 'debug'],
];

function levelWord(value: unknown): LogLevel | undefined {
  if (typeof value === 'number') return NUMERIC.find(([min]) => value >= min)?.[1];
  if (typeof value !== 'string') return undefined;
  const w = value.trim().toLowerCase();
  return WORDS[w] ?? ((LOG_LEVELS as readonly string[]).includes(w) ? (w as LogLevel) : undefined);
}

/** The level a file line's text shows, or `info`. */
export function levelFromText(text: string): LogLevel {
  const syslog = /^<(\d{1,3})>/.exec(text);
  if (syslog) return LOG_LEVELS[Number(syslog[1]) & 7]!;
  if (text.startsWith('{') && text.length <= MAX_LOG_MESSAGE) {
    try {
      const o = JSON.parse(text) as Record<string, unknown>;
      if (o && typeof o === 'object') {
        const found = levelWord(o.level) ?? levelWord(o.severity) ?? levelWord(o.lvl);
        if (found) return found;
      }
    } catch {
      // Not JSON after all: the words below decide.
    }
  }
  const head = text.slice(0, LEVEL_WINDOW);
  const upper = UPPER.exec(head);
  if (upper) return WORDS[upper[1]!.toLowerCase()]!;
  const marked = MARKED.exec(head);
  const word = marked?.[1] ?? marked?.[2] ?? marked?.[3];
  return word ? WORDS[word.toLowerCase()]! : 'info';
}

const encoder = new TextEncoder();
const scratch = new Uint8Array(MAX_LOG_MESSAGE);

/**
 * The message as it may travel: unchanged when it fits MAX_LOG_MESSAGE UTF-8 bytes, else its first
 * whole characters that fit followed by "… [truncated N bytes]". `cutBefore` counts bytes the
 * caller already left out (a file line too long to keep whole).
 */
export function boundMessage(text: string, cutBefore = 0): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most lines are decided without encoding them.
  if (cutBefore === 0 && text.length * 3 <= MAX_LOG_MESSAGE) return text;
  const { read, written } = encoder.encodeInto(text, scratch);
  if (read === text.length && cutBefore === 0) return text;
  const total = written + (read === text.length ? 0 : Buffer.byteLength(text.slice(read))) + cutBefore;
  return `${text.slice(0, read)}${LOG_TRUNCATED_MARKER}${total - written} bytes]`;
}
