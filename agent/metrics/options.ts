// The metrics flags of `pirelay-agent run`: where /proc and /sys are read (the agent's --root),
// the Docker socket to ask for containers, and the interval used until the hub says otherwise.
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
