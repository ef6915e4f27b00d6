// Takes one sample of the machine under `root` in Tyto's metrics structure (shared/api/metrics.ts).
// Cheap by construction, since at the live interval it runs every second for as long as someone
// watches: the per-sample files (/proc/stat, meminfo, diskstats, net/dev, sensor inputs, cpufreq;
// loadavg, sockstat and uptime less often, below) are opened once and re-read with one pread into a shared
// buffer (proc-file.ts); the process sweep runs at most every SWEEP_EVERY_MS (processes.ts), or at once when CPU or memory
// use jumps (JUMP_PERCENT, at most every JUMP_SWEEP_MS); the
// slow sources are cached on their own periods (periodic.ts): mounts' statfs every 10 s, Docker
// every 10 s, systemd every 60 s, nvidia-smi every 30 s, vcgencmd every 60 s, sensor and GPU
// discovery every 60 s, interface addresses every 30 s, the hostname and uptime every 60 s (uptime
// carried forward on the monotonic clock), the load average and socket counts every 5 s. Every
// part fails soft: a file that is missing reads as absent or zero, never as a failed sample.
import { statfs as nodeStatfs } from 'node:fs/promises';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { createRunCommand, type RunCommand } from '../system/command.ts';
import type { StatfsFn } from '../system/disks.ts';
import { parseMeminfo } from '../system/memory.ts';
import { unameArch } from '../system/os.ts';
import { resolvePath } from '../system/proc.ts';
import { CpuReader } from './cpu.ts';
import { DiskReader } from './disks.ts';
import { DOCKER_EVERY_MS, DockerReader } from './docker.ts';
import { GpuReader } from './gpu.ts';
import { NetworkReader } from './network.ts';
import { Periodic } from './periodic.ts';
import { ProcFile, readOnce } from './proc-file.ts';
import { ProcessReader, type Sweep } from './processes.ts';
import { SensorReader } from './sensors.ts';
import { SYSTEMD_EVERY_MS, SystemdReader } from './systemd.ts';

export const HOSTNAME_EVERY_MS = 60_000;
export const UPTIME_EVERY_MS = 60_000;
/** A change of this many points of CPU or memory use since the last process sweep sweeps again at once… */
export const JUMP_PERCENT = 20;
/** …at most this often. */
export const JUMP_SWEEP_MS = 3_000;

export interface Watch {
  processes: readonly string[];
  containers: readonly string[];
}

export interface SamplerOptions {
  root: string;
  dockerSocket: string;
  /** Monotonic ms, for rates and the slow sources' periods. */
  now?: () => number;
  /** Runs systemctl, nvidia-smi and vcgencmd; default a spawn with a 2 s timeout. */
  runCommand?: RunCommand;
  /** systemctl's path or null; default looked up on PATH. */
  systemctl?: string | null;
  /** nvidia-smi's path or null; default looked up on PATH (root '/' only). */
  nvidiaSmi?: string | null;
  statfs?: StatfsFn;
  /** A process.arch value; default this one's. */
  arch?: string;
}

export class MetricsSampler {
  private readonly now: () => number;
  private readonly cpu: CpuReader;
  private readonly disks: DiskReader;
  private readonly network: NetworkReader;
  private readonly processes: ProcessReader;
  private readonly sensors: SensorReader;
  private readonly gpu: GpuReader;
  private readonly docker: Periodic<MetricsSample['docker']>;
  private readonly systemd: Periodic<MetricsSample['systemd']>;
  private readonly meminfo: ProcFile;
  private readonly uptime: ProcFile;
  private readonly kernel: string;
  private readonly architecture: string;
  private uptimeBase = 0;
  private uptimeAt = Number.NEGATIVE_INFINITY;
  private hostname = '';
  private hostnameAt = Number.NEGATIVE_INFINITY;
  private watch: Watch = { processes: [], containers: [] };
  private watchChanged = false;
  /** CPU and memory use (%) when the processes were last swept, and when a jump last forced a sweep. */
  private swept = { cpu: Number.NaN, memory: Number.NaN };
  private jumpAt = Number.NEGATIVE_INFINITY;
  private lastSweep: Sweep | null = null;

  constructor(private readonly options: SamplerOptions) {
    const { root } = options;
    this.now = options.now ?? (() => performance.now());
    const runCommand = options.runCommand ?? createRunCommand();
    this.cpu = new CpuReader(root, this.now);
    this.disks = new DiskReader(root, options.statfs ?? ((mount) => nodeStatfs(resolvePath(root, mount))), this.now);
    this.network = new NetworkReader(root, this.now);
    this.processes = new ProcessReader(root, this.now);
    this.sensors = new SensorReader(root, this.now);
    this.gpu = new GpuReader({ root, now: this.now, runCommand, nvidiaSmi: options.nvidiaSmi });
    const docker = new DockerReader({ root, socket: options.dockerSocket, now: this.now });
    this.docker = new Periodic(() => docker.read(), DOCKER_EVERY_MS, this.now, { available: false, containers: [] });
    const systemd = new SystemdReader({ root, runCommand, systemctl: options.systemctl });
    this.systemd = new Periodic(() => systemd.read(), SYSTEMD_EVERY_MS, this.now, { available: false, services: [] });
    this.meminfo = new ProcFile(root, '/proc/meminfo');
    this.uptime = new ProcFile(root, '/proc/uptime');
    this.kernel = (readOnce(root, '/proc/sys/kernel/osrelease')?.trim() ?? '').slice(0, 128);
    this.architecture = unameArch(options.arch ?? process.arch).slice(0, 32);
  }

  /** The names alert rules watch; the next sample counts them afresh (a new sweep, a new container list). */
  setWatch(watch: Watch): void {
    this.watch = { processes: [...new Set(watch.processes)], containers: [...new Set(watch.containers)] };
    this.processes.setWatch(this.watch.processes);
    if (this.watch.containers.length) this.docker.expire();
    this.watchChanged = true;
  }

  /** One sample; `intervalMs` is the interval it is taken at (the process sweep's pace follows it). */
  async sample(intervalMs: number): Promise<MetricsSample> {
    const timestamp = new Date().toISOString();
    const cpu = this.cpu.read();
    const memory = this.memory();
    const network = this.network.read();
    const sensors = this.sensors.read();
    // A jump in CPU or memory use sweeps the processes at once (at most every JUMP_SWEEP_MS), so
    // the top lists of the sample an alert fires on show what caused it, not the last sweep's.
    const memoryUse = memory.total > 0 ? (100 * memory.used) / memory.total : 0;
    const jumped =
      this.now() - this.jumpAt >= JUMP_SWEEP_MS &&
      (Math.abs(cpu.totalUsage - this.swept.cpu) >= JUMP_PERCENT || Math.abs(memoryUse - this.swept.memory) >= JUMP_PERCENT);
    if (jumped) this.jumpAt = this.now();
    const force = this.watchChanged || jumped;
    this.watchChanged = false;
    const [disk, sweep, gpu, docker, systemd] = await Promise.all([
      this.disks.read(),
      this.processes.read(intervalMs, force),
      this.gpu.read(),
      this.docker.get(),
      this.systemd.get(),
    ]);
    if (sweep !== this.lastSweep) {
      this.lastSweep = sweep;
      this.swept = { cpu: cpu.totalUsage, memory: memoryUse };
    }
    const sample: MetricsSample = {
      timestamp,
      system: { hostname: this.readHostname(), kernel: this.kernel, uptime: this.readUptime(), architecture: this.architecture },
      cpu,
      memory,
      disk,
      network,
      processes: sweep.processes,
      temperature: { sensors },
      gpu,
      docker,
      systemd,
    };
    if (this.watch.processes.length || this.watch.containers.length) {
      const containers: Record<string, string> = {};
      for (const name of this.watch.containers) {
        const c = docker.containers.find((x) => x.name === name);
        if (c) containers[name] = c.status;
      }
      sample.watched = { processes: sweep.watched, containers };
    }
    return sample;
  }

  close(): void {
    this.cpu.close();
    this.disks.close();
    this.network.close();
    this.processes.close();
    this.sensors.close();
    this.gpu.close();
    this.meminfo.close();
    this.uptime.close();
  }

  private memory(): MetricsSample['memory'] {
    const m = parseMeminfo(this.meminfo.read() ?? '');
    return {
      total: m.total,
      used: Math.max(0, m.total - m.available),
      free: m.free,
      available: m.available,
      buffers: m.buffers,
      cached: m.cached,
      swapTotal: m.swapTotal,
      swapUsed: Math.max(0, m.swapTotal - m.swapFree),
    };
  }

  /** Read every UPTIME_EVERY_MS and carried forward on the monotonic clock in between. */
  private readUptime(): number {
    const now = this.now();
    if (now - this.uptimeAt >= UPTIME_EVERY_MS) {
      const n = Number(this.uptime.read()?.split(' ', 1)[0] ?? Number.NaN);
      this.uptimeBase = Number.isFinite(n) && n >= 0 ? Math.min(n, 1e10) : 0;
      this.uptimeAt = now;
    }
    return this.uptimeBase > 0 ? Math.round((this.uptimeBase + (now - this.uptimeAt) / 1000) * 100) / 100 : 0;
  }

  private readHostname(): string {
    if (this.now() - this.hostnameAt >= HOSTNAME_EVERY_MS) {
      this.hostnameAt = this.now();
      this.hostname = (readOnce(this.options.root, '/proc/sys/kernel/hostname')?.trim() ?? '').slice(0, 255);
    }
    return this.hostname;
  }
}
