// One process in detail, and the signals a caller may send it: Tyto's GET /api/v1/processes/:pid
// and POST …/signal, and the native /api/v1/devices/:id/processes/:pid[/signal], answer the same
// shape. The allow-list is here so the Worker refuses a signal before any device work and the
// agent refuses it again.
import { z } from 'zod';

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
  return SIGNAL_BY_NAME[value.toUpperCase()];
}

export const SignalSchema = z.union([z.number(), z.string().max(16)]).transform((v, ctx) => {
  const n = signalNumber(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `signal must be one of ${Object.entries(SIGNALS).map(([k, v]) => `${k} (${v})`).join(', ')}` });
    return z.NEVER;
  }
  return n;
});

export const SignalBodySchema = z.object({ signal: SignalSchema }).strict();

export const PidSchema = z.coerce.number().int().min(1).max(4_194_304);

/** Tyto's process shape (its seed's example), with the parent pid beside it. */
export const ProcessDetailSchema = z.object({
  pid: z.number().int().positive(),
  ppid: z.number().int().nonnegative(),
  name: z.string(),
  cmdline: z.string(),
  user: z.string(),
  /** The kernel's state letter (R, S, D, T, Z…). */
  state: z.string(),
  /** CPU share in percent of one core, over the last moment. */
  cpu: z.number().nonnegative(),
  /** Resident memory in bytes. */
  memory: z.number().int().nonnegative(),
  threads: z.number().int().nonnegative(),
  /** When it started (ISO 8601). */
  startTime: z.string(),
});
export type ProcessDetail = z.infer<typeof ProcessDetailSchema>;

export const SignalResultSchema = z.object({ pid: z.number().int().positive(), signal: z.number().int(), name: z.string() });
export type SignalResult = z.infer<typeof SignalResultSchema>;
