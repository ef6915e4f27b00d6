// Capability "system": the machine the agent runs on. Its RPC methods, with the schemas the agent
// checks params against and the hub checks results against.
import { z } from 'zod';
import { DeviceInfoSchema, ProcessListSchema } from '../api/device-info.ts';

export const SYSTEM_CAPABILITY = 'system';

export const systemRpc = {
  device_info: { params: z.object({}).strict(), result: DeviceInfoSchema },
  process_list: { params: z.object({}).strict(), result: ProcessListSchema },
  ping: { params: z.object({}).strict(), result: z.object({ now: z.number() }) },
} as const;
