// The agent's capability modules, one line each: adding a capability is its module under agent/,
// its protocol file under shared/protocol/ (assembled in messages.ts), and one line here.
import type { AgentCapability } from './capability.ts';
import type { Logger } from './log.ts';
import { systemCapability } from './system/index.ts';
import type { SystemReader } from './system/reader.ts';
import { tunnelsCapability } from './tunnels/index.ts';

export interface CapabilityDeps {
  log: Logger;
  system: SystemReader;
  /** A test or demo agent: hello says so (`simulated`), so the relay and its users can tell. */
  simulate: boolean;
}

export function agentCapabilities({ log, system, simulate }: CapabilityDeps): AgentCapability[] {
  return [
    systemCapability(system),
    tunnelsCapability(log),
    ...(simulate ? [{ name: 'simulated' }] : []),
  ];
}
