// Capability "system": the RPC methods that read the machine the agent runs on (device_info,
// process_list, process_get), signal a process (process_signal) and the universal ping. The
// reader (reader.ts) is made by the caller, because the same reader also supplies hello's facts
// and is ticked once a second.
import { SYSTEM_CAPABILITY } from '../../shared/protocol/system.ts';
import type { AgentCapability } from '../capability.ts';
import type { SystemReader } from './reader.ts';

export function systemCapability(system: SystemReader): AgentCapability {
  return {
    name: SYSTEM_CAPABILITY,
    rpc: {
      device_info: () => system.deviceInfo(),
      process_list: () => system.processList(),
      process_get: ({ pid }) => system.processGet(pid),
      process_signal: ({ pid, signal }) => system.processSignal(pid, signal),
      ping: () => ({ now: Date.now() }),
    },
  };
}
