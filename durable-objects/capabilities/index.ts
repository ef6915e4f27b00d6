// The hub's capability modules, one line each (a new capability: its module, and a line here).
// Made per hub instance, since a module may keep memory of its own (the tunnel table, say).
import { AlertsCapability } from './alerts.ts';
import { KvmCapability } from './kvm.ts';
import { LogsCapability } from './logs.ts';
import { MetricsCapability } from './metrics.ts';
import { StatusCapability } from './status.ts';
import { TerminalCapability } from './terminal.ts';
import { TunnelsCapability } from './tunnels/index.ts';
import type { HubCapability } from './types.ts';

export function hubCapabilities() {
  const alerts = new AlertsCapability();
  return {
    tunnels: new TunnelsCapability(),
    status: new StatusCapability(),
    kvm: new KvmCapability(),
    terminal: new TerminalCapability(),
    logs: new LogsCapability(),
    metrics: new MetricsCapability(alerts),
    alerts,
  } satisfies Record<string, HubCapability>;
}
