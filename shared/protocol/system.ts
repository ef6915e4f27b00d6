// Capability "system": the machine the agent runs on. Its RPC methods, with the schemas the agent
// checks params against and the hub checks results against.
import { z } from 'zod';
import { DeviceInfoSchema, ProcessListSchema } from '../api/device-info.ts';
import { PidSchema, ProcessDetailSchema, SignalResultSchema, SIGNALS } from '../api/processes.ts';

export const SYSTEM_CAPABILITY = 'system';

export const systemRpc = {
  device_info: { params: z.object({}).strict(), result: DeviceInfoSchema },
  process_list: { params: z.object({}).strict(), result: ProcessListSchema },
  /** One process; error PROCESS_NOT_FOUND. */
  process_get: { params: z.object({ pid: PidSchema }).strict(), result: ProcessDetailSchema },
  /**
   * Sends an allowed signal. Errors: PROCESS_NOT_FOUND; PROCESS_PROTECTED for pid 1, the agent
   * itself and its parent chain; SIGNAL_NOT_ALLOWED outside the list; SIGNAL_DENIED when the
   * kernel refuses (EPERM: the agent's user may not signal it).
   */
  process_signal: {
    params: z.object({ pid: PidSchema, signal: z.number().int().refine((n) => Object.hasOwn(SIGNALS, n), 'not an allowed signal') }).strict(),
    result: SignalResultSchema,
  },
  ping: { params: z.object({}).strict(), result: z.object({ now: z.number() }) },
} as const;
