// The log flags of `pirelay-agent run`: whether to follow the systemd journal (auto: when
// journalctl is there), the files to follow (PATH or PATH=NAME, repeatable), and where the cursor
// and the offline spool live (logs/<config name>/ beside the config file) with the spool's bound.
import { basename, dirname, extname, join, resolve } from 'node:path';

/** The spool's default bound on disk: at ~200 bytes a line, about 250,000 lines. */
export const DEFAULT_SPOOL_BYTES = 50 * 1024 * 1024;

export interface LogFile {
  path: string;
  /** The source_name its lines get: the NAME of PATH=NAME, else the file's path. */
  name: string;
}

export interface LogOptions {
  journal: 'auto' | 'off';
  files: LogFile[];
  /** The journal cursor, the spool and its counters live here. */
  stateDir: string;
  spoolBytes: number;
  /** The journalctl to run instead of the one on PATH ($PIRELAY_JOURNALCTL; tests run a fake one). */
  journalctl?: string;
}

export interface LogFlags {
  'log-file'?: string[];
  'no-journal'?: boolean;
  'log-spool-bytes'?: string;
}

/**
 * Where one agent keeps its cursor and spool: logs/<config name>/ beside its config file
 * (/etc/pirelay/logs/agent/ for /etc/pirelay/agent.json), so agents whose configs share a folder
 * (the demo devices of `npm start`) never share a spool.
 */
export function logStateDir(configPath: string): string {
  const config = resolve(configPath);
  return join(dirname(config), 'logs', basename(config, extname(config)) || 'agent');
}

/** The options the flags ask for, or why they are wrong (a usage error). */
export function logOptions(flags: LogFlags, configPath: string, env: Record<string, string | undefined> = process.env): { ok: true; options: LogOptions } | { ok: false; message: string } {
  const files: LogFile[] = [];
  for (const spec of flags['log-file'] ?? []) {
    const eq = spec.indexOf('=');
    const path = (eq < 0 ? spec : spec.slice(0, eq)).trim();
    const name = (eq < 0 ? path : spec.slice(eq + 1)).trim();
    if (!path) return { ok: false, message: `--log-file needs a path (PATH or PATH=NAME), not ${JSON.stringify(spec)}` };
    if (!name || name.length > 256) return { ok: false, message: `--log-file ${JSON.stringify(spec)}: the name must be 1 to 256 characters` };
    files.push({ path: resolve(path), name });
  }
  const spoolBytes = flags['log-spool-bytes'] === undefined ? DEFAULT_SPOOL_BYTES : Number(flags['log-spool-bytes']);
  if (!Number.isInteger(spoolBytes) || spoolBytes < 64 * 1024) return { ok: false, message: '--log-spool-bytes must be a whole number ≥ 65536' };
  const options: LogOptions = { journal: flags['no-journal'] ? 'off' : 'auto', files, stateDir: logStateDir(configPath), spoolBytes };
  if (env.PIRELAY_JOURNALCTL) options.journalctl = env.PIRELAY_JOURNALCTL;
  return { ok: true, options };
}
