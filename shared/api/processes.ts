// One process in detail, and the signals a caller may send it: Tyto's GET /api/v1/processes/:pid
// and POST …/signal, and the native /api/v1/devices/:id/processes/:pid[/signal], answer the same
// shape. The allow-list itself is in signals.ts (no zod, for the dashboard).
import { z } from 'zod';
import { ALLOWED_SIGNALS_TEXT, signalNumber } from './signals.ts';

export { ALLOWED_SIGNALS_TEXT, SIGNALS, signalNumber, type SignalName, type SignalNumber } from './signals.ts';

export const SignalSchema = z.union([z.number(), z.string().max(16)]).transform((v, ctx) => {
  const n = signalNumber(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `signal must be one of ${ALLOWED_SIGNALS_TEXT}` });
    return z.NEVER;
  }
  return n;
});

export const SignalBodySchema = z.object({ signal: SignalSchema }).strict();

/** The largest pid Linux can hand out (PID_MAX_LIMIT, 2^22). */
export const PID_MAX = 4_194_304;
export const PidSchema = z.coerce.number().int().min(1).max(PID_MAX);

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

export const SignalResultSchema = z.object({
  pid: z.number().int().positive(),
  signal: z.number().int(),
  /** The signal's name (SIGTERM). */
  name: z.string(),
  /** The process's name (its comm) as read just before the signal, for the audit log and the caller. */
  process: z.string().optional(),
});
export type SignalResult = z.infer<typeof SignalResultSchema>;
