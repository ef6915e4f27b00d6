// Capability "logs" on the agent: follows the systemd journal (when present) and the files the
// user named, tags each line (source, source name, level), spools lines on disk and ships them to
// the hub in numbered batches it acknowledges; offline, the spool keeps them (bounded: the oldest
// go first, and the next batch says how many). An agent with nothing to follow and no spool left
// loads none of it; otherwise service.ts is imported at start, and hello or acks that come before
// it is there wait for it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LOGS_CAPABILITY } from '../../shared/protocol/logs.ts';
import type { AgentCapability, SendToHub } from '../capability.ts';
import type { Logger } from '../log.ts';
import type { LogOptions } from './options.ts';
import type { LogsService, LogsStats } from './service.ts';

export interface LogsCapability extends AgentCapability {
  /** Resolves once the followers run (at once when there is nothing to follow). */
  ready: Promise<void>;
  stats(): LogsStats | null;
  /** Stops the followers and closes the spool (the agent's exit; a test's restart). */
  stop(): Promise<void>;
}

export interface LogsDeps {
  log: Logger;
  options: LogOptions;
  /** Tests: how long a partial batch waits, how often files are polled. */
  shipIntervalMs?: number;
  pollMs?: number;
}

/** The journalctl to run, or null: --no-journal, or none here. */
function journalctl(options: LogOptions): string | null {
  if (options.journal === 'off') return null;
  return options.journalctl ?? Bun.which('journalctl');
}

export function logsCapability(deps: LogsDeps): LogsCapability {
  const { log, options } = deps;
  const command = journalctl(options);
  const wanted = command !== null || options.files.length > 0 || existsSync(join(options.stateDir, 'spool', 'state.json'));
  let service: LogsService | null = null;
  let stopped = false;
  let send: SendToHub | null = null;

  const ready = wanted
    ? import('./service.ts')
        .then(({ LogsService }) => {
          if (stopped) return;
          service = new LogsService({ log, options, journalctl: command, shipIntervalMs: deps.shipIntervalMs, pollMs: deps.pollMs });
          if (send) service.online(send);
        })
        // An unusable state dir (permissions, a full disk) costs the logs, never the agent.
        .catch((e) => log.error('the logs capability failed to start', { error: String(e), state_dir: options.stateDir }))
    : Promise.resolve();

  return {
    name: LOGS_CAPABILITY,
    ready,
    messages: {
      logs_ack: (ack) => service?.ack(ack),
    },
    onHello: (s) => {
      send = s;
      service?.online(s);
    },
    onGone: () => {
      send = null;
      service?.offline();
    },
    stats: () => service?.stats() ?? null,
    stop: async () => {
      stopped = true;
      await ready;
      service?.stop();
      service = null;
    },
  };
}
