// process_get: one process in Tyto's shape, from a recorded /proc (exact CPU over the short second
// sample or the list's baseline, start time from btime, the owner from passwd) and from this
// machine's real /proc (a real `sleep` child); a missing pid, one that exits while being read and
// a thread's id are PROCESS_NOT_FOUND through the RPC, never a throw of another kind.
import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessDetailSchema } from '../../../shared/api/processes.ts';
import { systemCapability } from '../../../agent/system/index.ts';
import { MAX_CMDLINE } from '../../../agent/system/proc-pid.ts';
import { ProcessSampler } from '../../../agent/system/processes.ts';
import { createSystemReader } from '../../../agent/system/reader.ts';
import { dispatchRpc, type RpcHandlers } from '../../../agent/rpc.ts';
import { bumpCpu, bumpProcess, copyFixture, manualClock, PI4, removeTempRoots, setStatField, writeFiles } from './helpers.ts';

afterEach(removeTempRoots);

/** A sampler over a copy of the Pi 4 fixture whose short second sample runs `during` instead of sleeping. */
function pi4(during: (root: string) => void = () => {}) {
  const root = copyFixture(PI4);
  const clock = manualClock();
  let sleeps = 0;
  const sampler = new ProcessSampler({
    root,
    selfPid: 800,
    now: clock.now,
    sleep: async (ms) => {
      sleeps++;
      during(root);
      clock.advance(ms);
    },
  });
  return { root, clock, sampler, sleeps: () => sleeps };
}

describe('process_get on the Pi 4 fixture', () => {
  test('a process in Tyto\'s shape: exact CPU over the short second sample, owner, RSS, threads, start time', async () => {
    // 40 jiffies over 4 CPUs pass during the sample: 10 per core; python3 takes 5 of them.
    const { sampler, sleeps } = pi4((root) => {
      bumpCpu(root, { user: 30, idle: 10 });
      bumpProcess(root, 950, 4, 1);
    });
    const detail = await sampler.detail(950);
    expect(sleeps()).toBe(1);
    expect(detail).toEqual({
      pid: 950,
      ppid: 901,
      name: 'python3',
      cmdline: 'python3 /home/pi/sensor.py --interval 5',
      user: 'pi',
      state: 'R',
      cpu: 50,
      memory: 19520 * 1024,
      threads: 1,
      // btime 1718092800 (2024-06-11T08:00:00Z) + starttime 18204001 ticks / 100.
      startTime: '2024-06-13T10:34:00Z',
    });
    expect(ProcessDetailSchema.parse(detail)).toEqual(detail!);
  });

  test('threads come from the kernel (the agent\'s Bun has 9); a kernel thread and a zombie are answered', async () => {
    const { sampler } = pi4();
    expect((await sampler.detail(800))?.threads).toBe(9);
    const kthreadd = await sampler.detail(2);
    expect(kthreadd).toMatchObject({ pid: 2, ppid: 0, name: 'kthreadd', cmdline: '', user: 'root', memory: 0 });
    const zombie = await sampler.detail(960);
    expect(zombie).toMatchObject({ pid: 960, state: 'Z', cmdline: '', memory: 0 });
  });

  test('after a list call, the list\'s baseline is used: no sleep, the same figure the list shows', async () => {
    const { root, clock, sampler, sleeps } = pi4();
    await sampler.list();
    expect(sleeps()).toBe(1);
    clock.advance(1000);
    bumpCpu(root, { user: 80, idle: 320 }); // 100 ticks per core
    bumpProcess(root, 950, 25); // a quarter of one core
    const detail = await sampler.detail(950);
    expect(sleeps()).toBe(1);
    expect(detail?.cpu).toBe(25);
    // Reading one process did not move the list's baseline: the list sees the same window.
    const listed = (await sampler.list()).find((p) => p.pid === 950);
    expect(listed?.cpu_percent).toBe(25);
  });

  test('a baseline older than a minute is not "now": a fresh short sample is taken', async () => {
    const { root, clock, sampler, sleeps } = pi4();
    await sampler.list();
    clock.advance(61_000);
    bumpCpu(root, { user: 4000, idle: 4000 });
    bumpProcess(root, 950, 3000);
    const detail = await sampler.detail(950);
    expect(sleeps()).toBe(2);
    // Nothing moved during the fresh sample: 0 %, not the minute's average.
    expect(detail?.cpu).toBe(0);
  });

  test('a pid reused during the sample counts only the new process\'s ticks', async () => {
    const { sampler } = pi4((root) => {
      bumpCpu(root, { user: 30, idle: 10 });
      setStatField(root, 950, 22, 18204900); // a new process got pid 950
      setStatField(root, 950, 14, 2);
      setStatField(root, 950, 15, 0);
    });
    expect((await sampler.detail(950))?.cpu).toBe(20);
  });

  test('missing, exited while being read, or a thread\'s id: null', async () => {
    const { root, sampler } = pi4();
    expect(await sampler.detail(4242)).toBeNull();

    const vanishing = pi4((r) => rmSync(join(r, 'proc/950'), { recursive: true }));
    expect(await vanishing.sampler.detail(950)).toBeNull();

    // /proc/TID of a thread of the agent (tgid 800): not listed, but readable.
    const stat = '801 (bun) S 1 800 800 0 -1 4194624 10 0 0 0 5 1 0 0 20 0 9 0 1411 0 0\n';
    writeFiles(root, { 'proc/801/stat': stat, 'proc/801/status': 'Name:\tbun\nTgid:\t800\nPid:\t801\nUid:\t995\t995\t995\t995\n', 'proc/801/cmdline': 'bun\0' });
    expect(await sampler.detail(801)).toBeNull();
  });
});

describe('process_get through the system capability', () => {
  const rpc = (root: string) => systemCapability(createSystemReader({ root, selfPid: 800, sleep: async () => {} })).rpc as RpcHandlers;

  test('a missing pid is PROCESS_NOT_FOUND with the pid', async () => {
    expect(await dispatchRpc(rpc(PI4), 'process_get', { pid: 4242 })).toEqual({
      ok: false,
      error: { code: 'PROCESS_NOT_FOUND', message: 'no process 4242', details: { pid: 4242 } },
    });
  });

  test('a bad pid is refused by the params check', async () => {
    for (const pid of [0, -1, 'abc', 5_000_000, 1.5]) {
      const reply = await dispatchRpc(rpc(PI4), 'process_get', { pid });
      expect(reply.ok ? 'ok' : reply.error.code).toBe('INVALID_PARAMS');
    }
  });

  test('garbage in /proc/PID is PROCESS_NOT_FOUND, not a crash', async () => {
    const root = copyFixture(PI4);
    writeFileSync(join(root, 'proc/950/stat'), 'garbage');
    const reply = await dispatchRpc(rpc(root), 'process_get', { pid: 950 });
    expect(reply.ok ? 'ok' : reply.error.code).toBe('PROCESS_NOT_FOUND');
  });
});

describe('process_get on this machine\'s /proc', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  test('a real sleep child: its name, command line, owner, state and start time', async () => {
    const before = Date.now();
    const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
    children.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    const reader = createSystemReader();
    // The child is exec'd once spawn fires; until then /proc shows the forked parent's name.
    let detail = await reader.processGet(child.pid!);
    for (let i = 0; i < 50 && detail.name !== 'sleep'; i++) {
      await Bun.sleep(20);
      detail = await reader.processGet(child.pid!);
    }
    expect(ProcessDetailSchema.parse(detail)).toEqual(detail);
    expect(detail).toMatchObject({ pid: child.pid, ppid: process.pid, name: 'sleep', cmdline: 'sleep 1000', threads: 1 });
    expect(['S', 'R']).toContain(detail.state);
    expect(detail.user).toBe(Bun.spawnSync(['id', '-un']).stdout.toString().trim());
    expect(detail.memory).toBeGreaterThan(0);
    // btime is whole seconds and the start time is rounded to them: within a couple of seconds.
    const started = Date.parse(detail.startTime);
    expect(started).toBeGreaterThanOrEqual(before - 2000);
    expect(started).toBeLessThanOrEqual(Date.now() + 2000);
  });

  test('a command line of a megabyte (any local user can start one) is cut, not carried whole', async () => {
    // 16 arguments of 64 KiB (one argument may not pass 128 KiB); `; true` keeps sh from exec'ing sleep.
    const huge = Array.from({ length: 16 }, () => 'x'.repeat(1 << 16));
    const child = spawn('sh', ['-c', 'sleep 1000; true', 'sh', ...huge], { stdio: 'ignore' });
    children.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    const detail = await createSystemReader().processGet(child.pid!);
    expect(detail.cmdline.length).toBe(MAX_CMDLINE);
    expect(detail.cmdline.startsWith('sh -c sleep 1000; true sh xxx')).toBe(true);
    expect(detail.cmdline.endsWith('x…')).toBe(true);
  });

  test('a pid above pid_max, and the id of one of this process\'s threads, are PROCESS_NOT_FOUND', async () => {
    const rpc = systemCapability(createSystemReader()).rpc as RpcHandlers;
    const code = async (pid: number) => {
      const reply = await dispatchRpc(rpc, 'process_get', { pid });
      return reply.ok ? 'ok' : reply.error.code;
    };
    expect(await code(4_194_304)).toBe('PROCESS_NOT_FOUND');
    const threads = readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid);
    expect(threads.length).toBeGreaterThan(0);
    expect(await code(threads[0]!)).toBe('PROCESS_NOT_FOUND');
    expect(await code(process.pid)).toBe('ok');
  });
});
