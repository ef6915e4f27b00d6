// The signals a caller may send a process, as plain values with no zod, so the dashboard's signal
// menu can use the same allow-list without loading the schema library (shared/api/processes.ts
// re-exports them beside the schemas). The Worker refuses anything else before any device work,
// and the agent refuses it again.

/** Signals a caller may send, by number (Linux numbering, as Tyto's table uses) and name. */
export const SIGNALS = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  12: 'SIGUSR2',
  15: 'SIGTERM',
  18: 'SIGCONT',
  19: 'SIGSTOP',
} as const;
export type SignalNumber = keyof typeof SIGNALS;
export type SignalName = (typeof SIGNALS)[SignalNumber];

const SIGNAL_BY_NAME: Readonly<Record<string, SignalNumber>> = Object.fromEntries(
  Object.entries(SIGNALS).flatMap(([n, name]) => [
    [name, Number(n) as SignalNumber],
    [name.slice(3), Number(n) as SignalNumber],
  ]),
);

/** A signal as a caller may write it: 15, "15", "SIGTERM" or "TERM" → 15; anything else undefined. */
export function signalNumber(value: unknown): SignalNumber | undefined {
  if (typeof value === 'number' && Object.hasOwn(SIGNALS, value)) return value as SignalNumber;
  if (typeof value !== 'string') return undefined;
  if (/^\d{1,2}$/.test(value) && Object.hasOwn(SIGNALS, Number(value))) return Number(value) as SignalNumber;
  return Object.hasOwn(SIGNAL_BY_NAME, value.toUpperCase()) ? SIGNAL_BY_NAME[value.toUpperCase()] : undefined;
}

/** The allow-list as a refusal names it: "1 (SIGHUP), 2 (SIGINT), …". */
export const ALLOWED_SIGNALS_TEXT = Object.entries(SIGNALS)
  .map(([n, name]) => `${n} (${name})`)
  .join(', ');
