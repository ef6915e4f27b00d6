// Ending everything a session started. The shell leads the PTY's session (the PTY made it the
// session leader, so its pid is also its process group's id), but an interactive shell puts each
// job in a process group of its own, and a job a shell started with `nohup … &` ignores the
// hangup. So a session is ended by its members, found in /proc by their session id: SIGHUP to the
// shell's group and to every member (with SIGCONT, so a stopped job acts on it), then, after a
// grace, SIGKILL to whatever is left. Only a process that called setsid() itself leaves the
// session, as it would leave an ssh login.
import { readdirSync, readFileSync } from 'node:fs';

/** How long members may take to go after SIGHUP before they are killed. */
export const KILL_GRACE_MS = 2000;
const POLL_MS = 50;

/** The pids whose session id is `sid` (zombies excluded: they are gone, only not reaped). */
export function sessionMembers(sid: number, proc = '/proc'): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return out;
  }
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`${proc}/${name}/stat`, 'latin1');
    } catch {
      continue; // it ended while we looked
    }
    // pid (comm) state ppid pgrp session …; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && Number(fields[3]) === sid) out.push(Number(name));
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already, or never ours to signal
  }
}

/**
 * Hangs up the session led by `sid`, then kills what is left after `graceMs`. Resolves once no
 * member is left (or, for members that cannot be killed, after the SIGKILL's own grace).
 */
export async function endSession(sid: number, graceMs = KILL_GRACE_MS): Promise<void> {
  signal(-sid, 'SIGHUP');
  for (const pid of sessionMembers(sid)) {
    signal(pid, 'SIGHUP');
    signal(pid, 'SIGCONT');
  }
  const deadline = Date.now() + graceMs;
  while (sessionMembers(sid).length && Date.now() < deadline) await Bun.sleep(POLL_MS);
  const left = sessionMembers(sid);
  if (!left.length) return;
  signal(-sid, 'SIGKILL');
  for (const pid of left) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + graceMs;
  while (sessionMembers(sid).length && Date.now() < killDeadline) await Bun.sleep(POLL_MS);
}
