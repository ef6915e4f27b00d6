// One-line logs on stderr (journald adds the timestamp under systemd; we add one for terminals).
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, extra?: Record<string, unknown>): void;
  info(msg: string, extra?: Record<string, unknown>): void;
  warn(msg: string, extra?: Record<string, unknown>): void;
  error(msg: string, extra?: Record<string, unknown>): void;
}

export function createLogger(min: Level = (process.env.PIRELAY_LOG_LEVEL as Level) || 'info'): Logger {
  const write = (level: Level, msg: string, extra?: Record<string, unknown>) => {
    if (ORDER[level] < (ORDER[min] ?? 20)) return;
    const tail = extra && Object.keys(extra).length ? ' ' + JSON.stringify(extra) : '';
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${msg}${tail}\n`);
  };
  return {
    debug: (m, e) => write('debug', m, e),
    info: (m, e) => write('info', m, e),
    warn: (m, e) => write('warn', m, e),
    error: (m, e) => write('error', m, e),
  };
}
