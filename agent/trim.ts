// Most of an idle agent's resident memory is pages of its own executable (Bun: JavaScriptCore and
// the runtime) that only starting touched: the parser, the TypeScript transpiler, the JIT
// compilers' first runs, module linking and schema construction. They are clean pages of a
// read-only file mapping, which the kernel can read back from the file at any time. Once the
// agent has settled, trim() drops them from this process (madvise MADV_DONTNEED), and what is
// resident from then on is what the agent really uses; trimming again now and then releases what a
// passing burst (a terminal, a KVM session) touched. Only read-only mappings of the executable
// that hold no private (copy-on-write) page are trimmed: their contents are the file's, so
// nothing is lost, and the next use of a page reads it again (a minor fault: it is still in the
// page cache). Where libc or bun:ffi cannot be had, nothing is trimmed.
import { readFileSync } from 'node:fs';

const MADV_DONTNEED = 4;

type Madvise = (addr: bigint, length: bigint, advice: number) => number;

/** madvise from libc through bun:ffi, or null where either is missing (musl, a build without FFI). */
async function loadMadvise(): Promise<Madvise | null> {
  try {
    const { dlopen, FFIType } = await import('bun:ffi');
    for (const name of ['libc.so.6', 'libc.so']) {
      try {
        const lib = dlopen(name, { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
        return (addr, length, advice) => lib.symbols.madvise(addr, length, advice) as number;
      } catch {
        // the next name
      }
    }
  } catch {
    // no bun:ffi here
  }
  return null;
}

/** The address ranges of `smaps` that trimming may drop: read-only mappings of `path` with no private page. */
export function trimmable(smaps: string, path: string): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = block.slice(0, block.indexOf('\n'));
    const [range, perms, , , , ...name] = head.split(/\s+/);
    if (name.join(' ') !== path || !perms || perms.includes('w')) continue;
    // A mapping without the field is not one we understand: left alone.
    const anonymous = /^Anonymous:\s+(\d+) kB/m.exec(block);
    if (!anonymous || anonymous[1] !== '0') continue;
    const [start, end] = range!.split('-').map((h) => BigInt(`0x${h}`));
    if (start !== undefined && end !== undefined && end > start) out.push([start, end]);
  }
  return out;
}

export interface Trimmer {
  /** Drops the executable's trimmable pages from this process; the bytes of the mappings trimmed (0 when it cannot). */
  trim(): number;
}

export async function createTrimmer(executable = process.execPath): Promise<Trimmer> {
  const madvise = process.platform === 'linux' ? await loadMadvise() : null;
  return {
    trim() {
      if (!madvise) return 0;
      let smaps: string;
      try {
        smaps = readFileSync('/proc/self/smaps', 'utf8');
      } catch {
        return 0;
      }
      let bytes = 0;
      for (const [start, end] of trimmable(smaps, executable)) {
        if (madvise(start, end - start, MADV_DONTNEED) === 0) bytes += Number(end - start);
      }
      return bytes;
    },
  };
}
