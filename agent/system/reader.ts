// The agent's view of the machine it runs on: the facts sent at enrollment and in `hello`, the
// results of the device_info, process_list and process_get RPCs, and process_signal, which acts on
// the processes it shows (signal.ts). Everything reads under `root`, so the same
// code runs against recorded /proc snapshots in tests; the slow or rate-like parts (CPU usage,
// per-process CPU, vcgencmd) are sampled ahead of time so an RPC answers in about a millisecond.
import { statfs as nodeStatfs } from 'node:fs/promises';
import type { DeviceFacts, DeviceInfo, ProcessList } from '../../shared/api/device-info.ts';
import type { ProcessDetail, SignalResult } from '../../shared/api/processes.ts';
import { RpcFailure } from '../rpc.ts';
import { cacheFor } from './cache.ts';
import { createRunCommand, type RunCommand } from './command.ts';
import { CpuSampler, readCpuTimes } from './cpu.ts';
import { readDisks, rootDiskUsage, type StatfsFn } from './disks.ts';
import { readFacts } from './facts.ts';
import { memoryReport, readMeminfo } from './memory.ts';
import { readLoadavg, readUptime } from './os.ts';
import { resolvePath } from './proc.ts';
import { ProcessSampler } from './processes.ts';
import { signalProcess, type SignalOptions } from './signal.ts';
import { findCpuThermalZone, GpuTempReader, readCpuTemp } from './thermal.ts';

export type { RunCommand } from './command.ts';
export type { StatfsFn, StatfsResult } from './disks.ts';
// The individual readers, for callers that need one fact without a whole report.
export { readCpuTimes } from './cpu.ts';
export { readHardwareModel, readSerial } from './hardware.ts';
export { readMeminfo } from './memory.ts';
export { readPrimaryMac } from './network.ts';
export { readHostname, readKernel, readLoadavg, readOsRelease, readUptime } from './os.ts';
export { decodeRevision } from './revision.ts';

export interface SystemReaderOptions {
  /** Where /proc, /sys and /etc live: '/' on a device, a fixture snapshot in tests. */
  root?: string;
  /** The agent's own pid: it and its descendants are left out of process_list; it and its ancestors are never signalled. */
  selfPid?: number;
  /** kill(2) for process_signal; default process.kill (a test over a fixture root passes a stand-in). */
  kill?: SignalOptions['kill'];
  /** statfs(2) for a mount point; default node:fs statfs under `root`. */
  statfs?: StatfsFn;
  /** Runs vcgencmd; default spawns it with a 2 s timeout. */
  runCommand?: RunCommand;
  /** A process.arch value; reported uname-style (arm64 → aarch64). Default process.arch. */
  arch?: string;
  /** Monotonic milliseconds, for caches and samplers. */
  now?: () => number;
  /** Waits during the first process_list call's second sample. */
  sleep?: (ms: number) => Promise<void>;
  /** How long hostname, serial, hardware, OS, MAC and architecture are cached. Default 30 s. */
  factsMaxAgeMs?: number;
}

/** kill(2) for an agent reading a snapshot (--root): its pids are not this machine's. */
function refuseOnSnapshot(pid: number, signal: number): never {
  throw new RpcFailure('SIGNAL_DENIED', 'this agent reads a /proc snapshot (--root): it signals no process', { pid, signal });
}

export interface SystemReader {
  facts(): Promise<DeviceFacts>;
  deviceInfo(): Promise<DeviceInfo>;
  processList(): Promise<ProcessList>;
  /** One process; RpcFailure PROCESS_NOT_FOUND. */
  processGet(pid: number): Promise<ProcessDetail>;
  /** Sends an allowed signal (signal.ts says what is refused, with which code). */
  processSignal(pid: number, signal: number): Promise<SignalResult>;
  /** Call about once a second: keeps the CPU baseline and the GPU temperature fresh. */
  tick(): void;
}

export function createSystemReader(options: SystemReaderOptions = {}): SystemReader {
  const root = options.root ?? '/';
  const now = options.now ?? (() => performance.now());
  const arch = options.arch ?? process.arch;
  const factsMaxAgeMs = options.factsMaxAgeMs ?? 30_000;
  const statfs: StatfsFn = options.statfs ?? ((mount) => nodeStatfs(resolvePath(root, mount)));

  const facts = cacheFor(() => readFacts(root, arch), factsMaxAgeMs, now);
  const thermalZone = cacheFor(() => findCpuThermalZone(root), factsMaxAgeMs, now);
  const cpu = new CpuSampler(() => readCpuTimes(root), { now });
  const gpuTemp = new GpuTempReader({ root, runCommand: options.runCommand ?? createRunCommand(), now });
  const selfPid = options.selfPid ?? process.pid;
  const processes = new ProcessSampler({ root, selfPid, now, sleep: options.sleep });
  const kill = options.kill ?? (root === '/' ? (pid: number, signal: number) => void process.kill(pid, signal) : refuseOnSnapshot);

  return {
    facts,

    async deviceInfo() {
      const [identity, uptime, usage, loadAverage, meminfo, disks, cpuTemp, gpu] = await Promise.all([
        facts(),
        readUptime(root),
        cpu.usage(),
        readLoadavg(root),
        readMeminfo(root),
        readDisks(root, statfs),
        thermalZone().then((zone) => readCpuTemp(root, zone)),
        gpuTemp.read(),
      ]);
      return {
        ...identity,
        uptime,
        cpu: { usage_percent: usage, cores: cpu.cores(), load_average: loadAverage },
        memory: memoryReport(meminfo),
        disk_usage: await rootDiskUsage(disks, statfs),
        disks,
        cpu_temp: cpuTemp,
        gpu_temp: gpu,
      };
    },

    async processList() {
      return { processes: await processes.list() };
    },

    async processGet(pid) {
      const detail = await processes.detail(pid);
      if (detail === null) throw new RpcFailure('PROCESS_NOT_FOUND', `no process ${pid}`, { pid });
      return detail;
    },

    processSignal: (pid, signal) => signalProcess(pid, signal, { root, selfPid, kill }),

    tick() {
      cpu.tick();
      gpuTemp.tick();
    },
  };
}
