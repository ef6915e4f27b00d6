// The agent's capability modules, one line each: adding a capability is its module under agent/,
// its protocol file under shared/protocol/ (assembled in messages.ts), and one line here.
import type { AgentCapability } from './capability.ts';
import { kvmCapability } from './kvm/index.ts';
import type { KvmOptions } from './kvm/options.ts';
import type { Logger } from './log.ts';
import { systemCapability } from './system/index.ts';
import type { SystemReader } from './system/reader.ts';
import { tunnelsCapability } from './tunnels/index.ts';

export interface CapabilityDeps {
  log: Logger;
  system: SystemReader;
  /** A test or demo agent: hello says so (`simulated`), so the relay and its users can tell. */
  simulate: boolean;
  /** Where the HID reports go and which screen backend to use (agent/kvm/options.ts). */
  kvm: KvmOptions;
}

export function agentCapabilities({ log, system, simulate, kvm }: CapabilityDeps): AgentCapability[] {
  return [
    systemCapability(system),
    tunnelsCapability(log),
    kvmCapability({
      log,
      // Imported with the first KVM call: an agent nobody drives loads neither.
      gadgets: () => import('./kvm/gadget.ts').then(({ openGadgets }) => openGadgets({ dir: kvm.hidDir })),
      screen: () => import('./kvm/screen/select.ts').then(({ openScreen }) => openScreen({ backend: kvm.screen, hidDir: kvm.hidDir, videoDevice: kvm.videoDevice })),
    }),
    ...(simulate ? [{ name: 'simulated' }] : []),
  ];
}
