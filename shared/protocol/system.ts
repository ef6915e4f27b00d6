// Capability "system": the machine the agent runs on. Its RPC methods, with the schemas the agent
// checks params against and the hub checks results against.
import { z } from 'zod';
import { DeviceInfoSchema, ProcessListSchema } from '../api/device-info.ts';
import { PidSchema, ProcessDetailSchema, SignalResultSchema } from '../api/processes.ts';

export const SYSTEM_CAPABILITY = 'system';

export const systemRpc = {
  device_info: { params: z.object({}).strict(), result: DeviceInfoSchema },
  process_list: { params: z.object({}).strict(), result: ProcessListSchema },
  /** One process; error PROCESS_NOT_FOUND (also for a thread's id: a thread is not a process). */
  process_get: { params: z.object({ pid: PidSchema }).strict(), result: ProcessDetailSchema },
  /**
   * Sends an allowed signal. Errors: PROCESS_NOT_FOUND; PROCESS_PROTECTED for pid 1, the agent
   * itself, its parent chain and kernel threads (details.reason init, self, parent, kernel);
   * SIGNAL_NOT_ALLOWED outside the list; SIGNAL_DENIED when the kernel refuses (EPERM: the
   * agent's user may not signal it).
   */
  process_signal: {
    // Any integer gets through the params check: the handler refuses one outside SIGNALS itself,
    // so the refusal has its own code (SIGNAL_NOT_ALLOWED) rather than INVALID_PARAMS.
    params: z.object({ pid: PidSchema, signal: z.number().int() }).strict(),
    result: SignalResultSchema,
  },
  ping: { params: z.object({}).strict(), result: z.object({ now: z.number() }) },
} as const;
