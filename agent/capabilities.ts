// The agent's capability modules, one line each: adding a capability is its module under agent/,
// its protocol file under shared/protocol/ (assembled in messages.ts), and one line here.
import type { AgentCapability } from './capability.ts';
import { kvmCapability } from './kvm/index.ts';
import type { KvmOptions } from './kvm/options.ts';
import type { Logger } from './log.ts';
import { logsCapability } from './logs/index.ts';
import { metricsCapability } from './metrics/index.ts';
import type { MetricsOptions } from './metrics/options.ts';
import type { LogOptions } from './logs/options.ts';
import { systemCapability } from './system/index.ts';
import type { SystemReader } from './system/reader.ts';
import { terminalCapability } from './terminal/index.ts';
import type { TerminalOptions } from './terminal/options.ts';
import { tunnelsCapability } from './tunnels/index.ts';

export interface CapabilityDeps {
  log: Logger;
  system: SystemReader;
  /** A test or demo agent: hello says so (`simulated`), so the relay and its users can tell. */
  simulate: boolean;
  /** Where the HID reports go and which screen backend to use (agent/kvm/options.ts). */
  kvm: KvmOptions;
  /** The command sessions run, as whom, and their idle window (agent/terminal/options.ts). */
  terminal: TerminalOptions;
  /** What to follow and where to spool (agent/logs/options.ts); undefined: no logs module (tests that build a bare agent). */
  logs?: LogOptions;
  /** Where samples are read and the Docker socket (agent/metrics/options.ts); undefined: no metrics module (tests that build a bare agent). */
  metrics?: MetricsOptions;
  /** Takes what must run when the agent stops (the terminal closes its sessions, the logs module its spool); `run` calls them. */
  onStop?: (stop: () => Promise<void>) => void;
}

export function agentCapabilities({ log, system, simulate, kvm, terminal, logs, metrics, onStop }: CapabilityDeps): AgentCapability[] {
  const terminals = terminalCapability({ log, options: terminal });
  onStop?.(terminals.closeAll);
  const shipping = logs ? logsCapability({ log, options: logs }) : null;
  if (shipping) onStop?.(() => shipping.stop());
  const sampling = metrics ? metricsCapability({ log, options: metrics }) : null;
  if (sampling) onStop?.(() => sampling.stop());
  return [
    systemCapability(system),
    tunnelsCapability(log),
    kvmCapability({
      log,
      // Imported with the first KVM call: an agent nobody drives loads neither.
      gadgets: () => import('./kvm/gadget.ts').then(({ openGadgets }) => openGadgets({ dir: kvm.hidDir })),
      screen: () => import('./kvm/screen/select.ts').then(({ openScreen }) => openScreen({ backend: kvm.screen, hidDir: kvm.hidDir, videoDevice: kvm.videoDevice })),
    }),
    terminals,
    ...(shipping ? [shipping] : []),
    ...(sampling ? [sampling] : []),
    ...(simulate ? [{ name: 'simulated' }] : []),
  ];
}
