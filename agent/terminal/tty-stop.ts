// Stopping a PTY's output at once. An XOFF (^S) written to the PTY's input stops the program only
// once the kernel's tty worker has processed it, and with both cores busy (the program, the
// agent, its emulator's thread) that took up to ~200 ms measured here — 16 MB of `cat` output
// after the XOFF. tcflow(TCOOFF) on the PTY's slave side stops it in the calling thread, before
// the call returns (one chunk at most follows), and works whatever the program did to its
// terminal's modes (raw mode, IXON off). The slave is opened by the path the child's stdin has
// at spawn; libc's tcflow is called through bun:ffi. Where any of that is missing this returns
// null and the session falls back to XOFF/XON.
import { dlopen, FFIType } from 'bun:ffi';
import { closeSync, constants, openSync, readlinkSync } from 'node:fs';

/** tcflow actions (Linux termios.h). */
const TCOOFF = 0;
const TCOON = 1;

type Tcflow = (fd: number, action: number) => number;
let tcflow: Tcflow | null | undefined;

/** libc's tcflow, loaded once. */
function loadTcflow(): Tcflow | null {
  try {
    const libc = dlopen('libc.so.6', { tcflow: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
    return (fd, action) => libc.symbols.tcflow(fd, action) as number;
  } catch {
    return null;
  }
}

export interface TtyStop {
  /** Stops (true) or restarts (false) the program's output; false when the call failed. */
  set(stopped: boolean): boolean;
  close(): void;
}

/** The output switch of the PTY that `pid` (just spawned on it) has as stdin, or null. */
export function openTtyStop(pid: number): TtyStop | null {
  if (tcflow === undefined) tcflow = loadTcflow();
  if (!tcflow) return null;
  let fd: number;
  try {
    const path = readlinkSync(`/proc/${pid}/fd/0`);
    if (!/^\/dev\/pts\/\d+$/.test(path)) return null;
    // O_NOCTTY: the agent must never gain a controlling terminal by this.
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const call = tcflow;
  let open = true;
  return {
    set: (stopped) => open && call(fd, stopped ? TCOOFF : TCOON) === 0,
    close: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
