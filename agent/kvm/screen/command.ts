// Runs one capture command (ffmpeg, grim) and hands back what it printed, killing it when it does
// not finish in time: a capture card that lost its signal can leave ffmpeg blocked forever in the
// driver, and a capture that never returns must not hold a screenshot request or a live view.
import { joinBytes } from '../../../shared/bytes.ts';
import { ScreenError } from './types.ts';

export interface CommandResult {
  stdout: Uint8Array;
  /** The end of what it wrote to stderr (enough for the error message). */
  stderr: string;
  exitCode: number | null;
  timedOut: boolean;
}

export interface CommandOptions {
  timeoutMs: number;
  stdin?: Uint8Array;
  /** Output beyond this is an error (a runaway command must not fill memory). */
  maxBytes?: number;
}

/** How backends run commands; tests pass a fake one to check the argv without spawning. */
export type CommandRunner = (argv: string[], options: CommandOptions) => Promise<CommandResult>;

const STDERR_KEPT = 2048;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export const runCommand: CommandRunner = async (argv, options) => {
  const binary = argv[0]!;
  if (!Bun.which(binary)) throw new ScreenError('SCREEN_UNAVAILABLE', `${binary} is not installed (not found in PATH)`);
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(argv, { stdin: options.stdin ?? 'ignore', stdout: 'pipe', stderr: 'pipe' });
  } catch (e) {
    throw new ScreenError('CAPTURE_FAILED', `could not start ${binary}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, options.timeoutMs);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  try {
    const [stdout, stderr] = await Promise.all([readBounded(proc.stdout as ReadableStream<Uint8Array>, maxBytes, () => proc.kill('SIGKILL')), new Response(proc.stderr as ReadableStream<Uint8Array>).text()]);
    const exitCode = await proc.exited;
    if (stdout === null) throw new ScreenError('CAPTURE_FAILED', `${binary} printed more than ${maxBytes} bytes`);
    return { stdout, stderr: stderr.slice(-STDERR_KEPT), exitCode: timedOut ? null : exitCode, timedOut };
  } finally {
    clearTimeout(timer);
  }
};

async function readBounded(stream: ReadableStream<Uint8Array>, maxBytes: number, kill: () => void): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let over = false;
  for await (const chunk of stream as ReadableStream<Uint8Array> & AsyncIterable<Uint8Array>) {
    if (over) continue;
    total += chunk.byteLength;
    if (total > maxBytes) {
      over = true;
      chunks.length = 0;
      kill();
      continue;
    }
    chunks.push(chunk);
  }
  if (over) return null;
  return joinBytes(chunks, total);
}

/** The last non-empty line a command wrote to stderr, for an error message. */
export function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? '';
}
