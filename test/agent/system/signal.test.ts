// process_signal for real: a `sleep` child is stopped (state T), continued and terminated through
// the system capability; the refusals are the agent's own (pid 1, itself, its parent chain, a
// kernel thread, one of its threads' ids, a signal outside the list) and come before kill(2) is
// ever called; a missing pid and a process the agent's user may not signal (a real EPERM, from an
// unprivileged copy of the code) get their codes. Refusal tests send SIGCONT, which is harmless
// to the process named should the refusal ever break. Over the Pi 4 fixture: the parent chain is
// read from /proc, and an agent reading a snapshot signals nothing.
import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SIGNALS } from '../../../shared/api/processes.ts';
import { dispatchRpc, type RpcHandlers, type RpcReply } from '../../../agent/rpc.ts';
import { systemCapability } from '../../../agent/system/index.ts';
import { parseProcStat } from '../../../agent/system/proc-pid.ts';
import { createSystemReader } from '../../../agent/system/reader.ts';
import { ancestorsOf, signalProcess } from '../../../agent/system/signal.ts';
import { PI4, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

async function sleeper(): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  return child as ChildProcess & { pid: number };
}

const stateOf = (pid: number) => parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state;
/** Alive and neither stopped nor gone: a fresh `sleep` may still be running (R) into its sleep (S) on a busy machine. */
const untouched = (pid: number) => ['R', 'S'].includes(stateOf(pid) ?? '');

async function waitFor(what: string, ok: () => boolean) {
  for (let i = 0; i < 500; i++) {
    if (ok()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The system capability on this machine's /proc, with a kill(2) that records what it was asked. */
function agent(selfPid = process.pid) {
  const killed: [number, number][] = [];
  const reader = createSystemReader({
    selfPid,
    kill: (pid, signal) => {
      killed.push([pid, signal]);
      process.kill(pid, signal);
    },
  });
  const rpc = systemCapability(reader).rpc as RpcHandlers;
  return { killed, signal: (pid: unknown, signal: unknown) => dispatchRpc(rpc, 'process_signal', { pid, signal }) };
}

const refusal = (reply: RpcReply) => (reply.ok ? { ok: true } : { code: reply.error.code, details: reply.error.details });

describe('process_signal on real processes', () => {
  test('SIGSTOP stops a sleep child (state T), SIGCONT continues it, SIGTERM ends it', async () => {
    const child = await sleeper();
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const a = agent();
    await waitFor('sleep to be exec\'d', () => readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'sleep');

    expect(await a.signal(child.pid, 19)).toEqual({ ok: true, result: { pid: child.pid, signal: 19, name: 'SIGSTOP', process: 'sleep' } });
    await waitFor('state T', () => stateOf(child.pid) === 'T');

    expect(await a.signal(child.pid, 18)).toEqual({ ok: true, result: { pid: child.pid, signal: 18, name: 'SIGCONT', process: 'sleep' } });
    await waitFor('state S', () => stateOf(child.pid) === 'S');

    expect(await a.signal(child.pid, 15)).toEqual({ ok: true, result: { pid: child.pid, signal: 15, name: 'SIGTERM', process: 'sleep' } });
    expect(await exited).toBe('SIGTERM');
    expect(a.killed).toEqual([[child.pid, 19], [child.pid, 18], [child.pid, 15]]);
  });

  test('pid 1, the agent itself, its parent and every further ancestor are refused, before kill(2)', async () => {
    const a = agent();
    expect(refusal(await a.signal(1, 18))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: 1, reason: 'init' } });
    expect(refusal(await a.signal(process.pid, 18))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: process.pid, reason: 'self' } });
    expect(refusal(await a.signal(process.ppid, 18))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: process.ppid, reason: 'parent' } });
    const chain = await ancestorsOf('/', process.pid);
    expect(chain.has(process.ppid)).toBe(true);
    for (const pid of chain) {
      if (pid === 1) continue;
      expect(refusal(await a.signal(pid, 9))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid, reason: 'parent' } });
    }
    expect(a.killed).toEqual([]);
  });

  test('the agent\'s child is not protected: only the chain above it is', async () => {
    // The agent here is the sleep child's parent process: the child itself is fair game.
    const child = await sleeper();
    const a = agent(child.pid);
    // Seen from the child as "the agent", this test process is its parent.
    expect(refusal(await a.signal(process.pid, 18))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: process.pid, reason: 'parent' } });
    expect(refusal(await a.signal(child.pid, 18))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: child.pid, reason: 'self' } });
  });

  test('a thread\'s id (here one of the agent\'s own) is not a process: PROCESS_NOT_FOUND, nothing sent', async () => {
    const a = agent();
    const threads = readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid);
    expect(threads.length).toBeGreaterThan(0);
    for (const tid of threads) expect(refusal(await a.signal(tid, 18))).toEqual({ code: 'PROCESS_NOT_FOUND', details: { pid: tid } });
    expect(a.killed).toEqual([]);
  });

  test('a kernel thread is refused (kthreadd, pid 2, where this machine has one)', async () => {
    if (!existsSync('/proc/2/stat') || !readFileSync('/proc/2/stat', 'utf8').includes('(kthreadd)')) return;
    const a = agent();
    expect(refusal(await a.signal(2, 18))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: 2, reason: 'kernel' } });
    expect(a.killed).toEqual([]);
  });

  test('a missing pid is PROCESS_NOT_FOUND: above pid_max, and one that has exited', async () => {
    const a = agent();
    expect(refusal(await a.signal(4_194_304, 15))).toEqual({ code: 'PROCESS_NOT_FOUND', details: { pid: 4_194_304 } });
    const gone = spawn('true', { stdio: 'ignore' });
    await new Promise((resolve) => gone.once('exit', resolve));
    expect(refusal(await a.signal(gone.pid!, 15))).toEqual({ code: 'PROCESS_NOT_FOUND', details: { pid: gone.pid } });
    expect(a.killed).toEqual([]);
  });

  test('a signal outside the list is SIGNAL_NOT_ALLOWED, with the list, before anything is read or sent', async () => {
    const child = await sleeper();
    const a = agent();
    for (const signal of [0, 11, 14, 31, 64, 99, -15]) {
      expect(refusal(await a.signal(child.pid, signal))).toEqual({ code: 'SIGNAL_NOT_ALLOWED', details: { signal, allowed: Object.keys(SIGNALS).map(Number) } });
    }
    // Not a number at all: the params check.
    for (const signal of ['SIGTERM', 15.5, null]) expect(refusal(await a.signal(child.pid, signal)).code).toBe('INVALID_PARAMS');
    expect(a.killed).toEqual([]);
    expect(untouched(child.pid)).toBe(true);
  });

  // A real EPERM needs an agent without the right to signal: this code run as nobody, against a
  // root-owned sleep. SIGTERM, not SIGCONT: the kernel lets any process of the same session send
  // SIGCONT, and setpriv keeps the session.
  const unprivileged = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
  test.skipIf(!unprivileged)('a process the agent\'s user may not signal is SIGNAL_DENIED (a real EPERM)', async () => {
    const child = await sleeper();
    const script = `
      import { signalProcess } from ${JSON.stringify(join(import.meta.dir, '../../../agent/system/signal.ts'))};
      try {
        console.log(JSON.stringify(await signalProcess(${child.pid}, 15, { root: '/', selfPid: process.pid, kill: (p, s) => process.kill(p, s) })));
      } catch (e) {
        console.log(JSON.stringify({ code: e.code, details: e.details }));
      }`;
    const run = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], {
      cwd: '/tmp',
      env: { PATH: process.env.PATH, HOME: '/tmp', BUN_INSTALL_CACHE_DIR: '/tmp/.bun-nobody-cache' },
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout.trim())).toEqual({ code: 'SIGNAL_DENIED', details: { pid: child.pid, signal: 15 } });
    expect(untouched(child.pid)).toBe(true);
  });
});

describe('process_signal over the Pi 4 fixture', () => {
  // The agent is pid 813 (vcgencmd, under sh 812, under bun 800, under systemd 1).
  const send = (pid: number, signal: number, kill: (pid: number, signal: number) => void = () => {}) => signalProcess(pid, signal, { root: PI4, selfPid: 813, kill });
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string; details?: unknown }) => ({ code: e.code, details: e.details }));

  test('the parent chain is read from /proc: 812 and 800 are refused, a process beside them is signalled', async () => {
    expect(await ancestorsOf(PI4, 813)).toEqual(new Set([812, 800, 1]));
    expect(await code(send(812, 15))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: 812, reason: 'parent' } });
    expect(await code(send(800, 15))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: 800, reason: 'parent' } });
    expect(await code(send(47, 15))).toEqual({ code: 'PROCESS_PROTECTED', details: { pid: 47, reason: 'kernel' } });
    const killed: [number, number][] = [];
    expect(await send(950, 15, (pid, signal) => void killed.push([pid, signal]))).toEqual({ pid: 950, signal: 15, name: 'SIGTERM', process: 'python3' });
    expect(killed).toEqual([[950, 15]]);
  });

  test('kill(2) failing: ESRCH (it exited in between) is PROCESS_NOT_FOUND, EPERM SIGNAL_DENIED, anything else thrown on', async () => {
    const failing = (code: string) => () => {
      throw Object.assign(new Error(`kill() failed: ${code}`), { code });
    };
    expect(await code(send(950, 9, failing('ESRCH')))).toEqual({ code: 'PROCESS_NOT_FOUND', details: { pid: 950 } });
    expect(await code(send(950, 9, failing('EPERM')))).toEqual({ code: 'SIGNAL_DENIED', details: { pid: 950, signal: 9 } });
    expect(await code(send(950, 9, failing('EINVAL')))).toEqual({ code: 'EINVAL', details: undefined });
  });

  test('an agent reading a snapshot (--root) signals nothing: its pids are not this machine\'s', async () => {
    const rpc = systemCapability(createSystemReader({ root: PI4, selfPid: 813 })).rpc as RpcHandlers;
    const reply = await dispatchRpc(rpc, 'process_signal', { pid: 950, signal: 18 });
    expect(refusal(reply)).toEqual({ code: 'SIGNAL_DENIED', details: { pid: 950, signal: 18 } });
  });
});
