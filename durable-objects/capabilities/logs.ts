// Capability "logs" on the hub: the device's log lines, stored in the hub's own SQLite with an
// FTS5 index (not D1: see docs/architecture.md, "Logs: from a device to a search"), each batch
// acknowledged once stored, published to the hub's `log` watchers, and pruned to a retention limit.
import type { LogQuery, LogPage } from '../../shared/api/logs.ts';
import type { HubCapability, HubContext } from './types.ts';

export class LogsCapability implements HubCapability {
  readonly name = 'logs';
  readonly topics = ['log'] as const;

  /** One page of this device's stored lines, newest first, with the total that match. */
  async query(_hub: HubContext, _query: LogQuery): Promise<LogPage> {
    return { entries: [], total: 0 };
  }
}
