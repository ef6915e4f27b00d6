// The sample's docker part: containers from the Docker Engine API on its unix socket
// (GET /containers/json?all=1), every DOCKER_EVERY_MS, each running one's CPU and memory from its
// cgroup's files rather than the API's stats endpoint (which takes a second or two per container
// to answer and costs the daemon as much). CPU % is the cgroup's CPU time over the wall time since
// the previous refresh (of one core, as `docker stats` shows it); memory is the cgroup's usage less
// its inactive file cache, as `docker stats` computes it. No socket, an error or an answer that is
// not a container list: `available: false`. The socket is the local root's, but its answer is
// still checked and bounded before it becomes part of a sample.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { MetricsSample, SampleContainer } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';
import { readOnce } from './proc-file.ts';

export const DOCKER_EVERY_MS = 10_000;
/** How long the API may take to list containers. */
export const DOCKER_TIMEOUT_MS = 2_000;
/** A list larger than this is refused (200 containers are about 300 KiB of JSON). */
const MAX_LIST_BYTES = 8 * 1024 * 1024;

type Docker = MetricsSample['docker'];

const ContainerListSchema = z.array(
  z.object({
    Id: z.string().min(1).max(128),
    Names: z.array(z.string()).optional(),
    State: z.string().optional(),
  }),
);

/** The body as text, or an error as soon as it passes `max` bytes (it is never held whole). */
async function boundedText(res: Response, max: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  if (!reader) return '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new Error('the container list is too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Where a container's cgroup files are: cgroup v2 (systemd or cgroupfs driver), then v1. */
function cgroupUsage(root: string, id: string): { cpuNs: number; memory: number } | null {
  for (const dir of [`/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/docker/${id}`]) {
    const cpuStat = readOnce(root, `${dir}/cpu.stat`);
    if (cpuStat === null) continue;
    const usec = Number(/^usage_usec (\d+)/m.exec(cpuStat)?.[1] ?? Number.NaN);
    const current = Number(readOnce(root, `${dir}/memory.current`)?.trim() ?? Number.NaN);
    const inactive = Number(/^inactive_file (\d+)/m.exec(readOnce(root, `${dir}/memory.stat`) ?? '')?.[1] ?? 0);
    if (!Number.isFinite(usec)) return null;
    return { cpuNs: usec * 1000, memory: Number.isFinite(current) ? Math.max(0, current - inactive) : 0 };
  }
  for (const sub of [`system.slice/docker-${id}.scope`, `docker/${id}`]) {
    const ns = Number(readOnce(root, `/sys/fs/cgroup/cpuacct/${sub}/cpuacct.usage`)?.trim() ?? Number.NaN);
    if (!Number.isFinite(ns)) continue;
    const usage = Number(readOnce(root, `/sys/fs/cgroup/memory/${sub}/memory.usage_in_bytes`)?.trim() ?? Number.NaN);
    const inactive = Number(/^total_inactive_file (\d+)/m.exec(readOnce(root, `/sys/fs/cgroup/memory/${sub}/memory.stat`) ?? '')?.[1] ?? 0);
    return { cpuNs: ns, memory: Number.isFinite(usage) ? Math.max(0, usage - inactive) : 0 };
  }
  return null;
}

export interface DockerOptions {
  root: string;
  socket: string;
  now: () => number;
}

export class DockerReader {
  private prev = new Map<string, { cpuNs: number; at: number }>();

  constructor(private readonly options: DockerOptions) {}

  /** One refresh: the list and every running container's usage; never throws. */
  async read(): Promise<Docker> {
    let list: z.infer<typeof ContainerListSchema>;
    // Most machines have no Docker: one stat, not a failed connection, every refresh.
    if (!existsSync(this.options.socket)) return this.absent();
    try {
      const res = await fetch('http://docker/containers/json?all=1', { unix: this.options.socket, signal: AbortSignal.timeout(DOCKER_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`status ${res.status}`);
      list = ContainerListSchema.parse(JSON.parse(await boundedText(res, MAX_LIST_BYTES)));
    } catch {
      return this.absent();
    }
    const at = this.options.now();
    const next = new Map<string, { cpuNs: number; at: number }>();
    const containers: SampleContainer[] = [];
    for (const c of list.slice(0, SAMPLE_LIMITS.containers)) {
      const status = (c.State ?? 'unknown').slice(0, 64);
      const usage = status === 'running' && /^[0-9a-f]{12,64}$/.test(c.Id) ? cgroupUsage(this.options.root, c.Id) : null;
      let cpu = 0;
      if (usage) {
        const before = this.prev.get(c.Id);
        const wallNs = before ? (at - before.at) * 1e6 : 0;
        if (before && wallNs > 0 && usage.cpuNs >= before.cpuNs) cpu = Math.round(Math.min(51_200, (100 * (usage.cpuNs - before.cpuNs)) / wallNs) * 10) / 10;
        next.set(c.Id, { cpuNs: usage.cpuNs, at });
      }
      containers.push({
        id: c.Id.slice(0, 128),
        name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, '').slice(0, 256),
        status,
        cpu,
        memory: usage ? Math.min(usage.memory, 2 ** 53) : 0,
      });
    }
    this.prev = next;
    return { available: true, containers };
  }

  private absent(): Docker {
    this.prev.clear();
    return { available: false, containers: [] };
  }
}
