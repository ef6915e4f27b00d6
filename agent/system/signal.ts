// The process_signal RPC: sends one signal of the allow-list to one process, and refuses the
// processes whose death would take the agent (and the way back to the device) with it: pid 1, the
// agent itself and every ancestor up to pid 1 (killing the shell or service manager that runs the
// agent kills or orphans it), and kernel threads (which take no signals from user space: a "sent"
// would be a lie). The Worker checks the signal too; this is the device's own line, so a relay
// that is wrong, or lies, still cannot make the agent do either.
//
// A race remains that no check here closes: between reading the process and kill(2) it may exit
// and its pid be given to a new process, which then gets the signal. Protected processes are not
// exposed to it (they are alive, so their pids cannot be reused), and pids are handed out in
// order up to pid_max before any is reused, so the window is a wrap-around of the pid space
// within a millisecond or so. Closing it would take a pidfd (pidfd_open + pidfd_send_signal),
// which neither Bun nor Node offers, plus the caller naming the process by its start time too;
// Tyto's API names it by pid alone.
import { SIGNALS, type SignalResult } from '../../shared/api/processes.ts';
import { RpcFailure } from '../rpc.ts';
import { isKernelThread, readProcDetails, readProcStat } from './proc-pid.ts';

/** Why a process may not be signalled (details.reason of PROCESS_PROTECTED). */
export type ProtectedReason = 'init' | 'self' | 'parent' | 'kernel';

export interface SignalOptions {
  /** Where /proc lives: '/' on a device, a fixture snapshot in tests. */
  root: string;
  /** The agent's own pid, whose parent chain is walked. */
  selfPid: number;
  /** kill(2); throws an error with code ESRCH or EPERM as Node's process.kill does. */
  kill: (pid: number, signal: number) => void;
}

/** Longest parent chain walked: deeper than any real one, and a bound if /proc were garbage. */
const MAX_CHAIN = 1024;

/** The agent's ancestors, from its parent up to (not including) pid 0, as /proc has them now. */
export async function ancestorsOf(root: string, pid: number): Promise<Set<number>> {
  const chain = new Set<number>();
  let next = (await readProcStat(root, pid))?.ppid ?? 0;
  while (next > 0 && !chain.has(next) && chain.size < MAX_CHAIN) {
    chain.add(next);
    next = (await readProcStat(root, next))?.ppid ?? 0;
  }
  return chain;
}

function protectedProcess(pid: number, reason: ProtectedReason): RpcFailure {
  const why: Record<ProtectedReason, string> = {
    init: 'is init (pid 1)',
    self: 'is the agent itself',
    parent: "is in the agent's parent chain",
    kernel: 'is a kernel thread',
  };
  return new RpcFailure('PROCESS_PROTECTED', `process ${pid} ${why[reason]}: the agent will not signal it`, { pid, reason });
}

const notFound = (pid: number) => new RpcFailure('PROCESS_NOT_FOUND', `no process ${pid}`, { pid });

export async function signalProcess(pid: number, signal: number, { root, selfPid, kill }: SignalOptions): Promise<SignalResult> {
  if (!Object.hasOwn(SIGNALS, signal)) {
    throw new RpcFailure('SIGNAL_NOT_ALLOWED', `signal ${signal} is not one the agent sends`, { signal, allowed: Object.keys(SIGNALS).map(Number) });
  }
  const name = SIGNALS[signal as keyof typeof SIGNALS];
  if (pid === 1) throw protectedProcess(pid, 'init');
  if (pid === selfPid) throw protectedProcess(pid, 'self');
  if ((await ancestorsOf(root, selfPid)).has(pid)) throw protectedProcess(pid, 'parent');
  const target = await readProcDetails(root, pid);
  // kill(2) on a thread's id signals its whole process: a thread is not a process here, as in the
  // list, so the agent's own threads cannot be reached that way either.
  if (target === null || (target.tgid !== null && target.tgid !== target.pid)) throw notFound(pid);
  if (isKernelThread(target)) throw protectedProcess(pid, 'kernel');
  try {
    kill(pid, signal);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ESRCH') throw notFound(pid);
    if (code === 'EPERM') throw new RpcFailure('SIGNAL_DENIED', `the agent's user may not signal process ${pid}`, { pid, signal });
    throw e;
  }
  return { pid, signal, name, process: target.comm };
}
