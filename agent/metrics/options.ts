// The metrics flags of `pirelay-agent run`: where /proc and /sys are read (the agent's --root),
// the Docker socket to ask for containers (--docker-socket, else a unix:// $DOCKER_HOST, else
// Docker's default), and the interval used until the hub says otherwise.
import { DEFAULT_REFRESH_SECONDS } from '../../shared/api/metrics.ts';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface MetricsOptions {
  /** Where /proc, /sys and /etc live ('/' on a device). */
  root: string;
  /** The Docker Engine API socket; containers are reported when it answers. */
  dockerSocket: string;
  /** Until the hub's metrics_config arrives. */
  intervalMs: number;
}

export function defaultMetricsOptions(root = '/'): MetricsOptions {
  return { root, dockerSocket: DEFAULT_DOCKER_SOCKET, intervalMs: DEFAULT_REFRESH_SECONDS * 1000 };
}

export interface MetricsFlags {
  root?: string;
  'docker-socket'?: string;
}

/** The options the flags (and $DOCKER_HOST, when it names a unix socket) ask for, or why they are wrong. */
export function metricsOptions(flags: MetricsFlags, env: Record<string, string | undefined> = process.env): { ok: true; options: MetricsOptions } | { ok: false; message: string } {
  const options = defaultMetricsOptions(flags.root);
  const fromEnv = env.DOCKER_HOST?.startsWith('unix://') ? env.DOCKER_HOST.slice('unix://'.length) : undefined;
  const socket = flags['docker-socket'] ?? fromEnv;
  if (socket !== undefined) {
    if (!socket.startsWith('/')) return { ok: false, message: `--docker-socket needs an absolute path, not ${JSON.stringify(socket)}` };
    options.dockerSocket = socket;
  }
  return { ok: true, options };
}
