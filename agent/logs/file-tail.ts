// Follows one log file the user named, by polling (a stat a tick; inotify is not needed at log
// rates and works the same on every filesystem). The first time, it starts at the file's end;
// after that, where it stopped: its offset, inode and first bytes (the head, which tells a new
// file that got the old inode number) are saved once the lines before the offset are spooled.
// Rotation (the path names another file now): the old file is read to its end through the open
// descriptor, then the new one from its start. Truncation (the file is shorter than the offset, or
// its head changed): from its start. A missing file is waited for and read from its start when it
// appears. Lines end at \n; a last line without one waits for it, keeping at most a message's
// worth of bytes (the rest is counted in the truncation marker).
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { MAX_LOG_MESSAGE, type LogLine } from '../../shared/protocol/logs.ts';
import type { Logger } from '../log.ts';
import type { LogFile } from './options.ts';
import { boundMessage, levelFromText } from './level.ts';

export interface FileState {
  dev: number;
  ino: number;
  /** Bytes of the file already spooled (always just after a \n). */
  offset: number;
  /** The file's first bytes (≤ HEAD_BYTES), base64. */
  head: string;
}

export interface FileFollowerDeps {
  log: Logger;
  file: LogFile;
  /** Where it stopped last time (undefined: never followed). */
  saved: FileState | undefined;
  /** Lines read (maybe none), the state to save once they are spooled, and the offset after each line. */
  onLines: (lines: LogLine[], state: FileState, ends: number[]) => void;
  pollMs?: number;
}

export const FILE_POLL_MS = 500;
const HEAD_BYTES = 64;
const CHUNK = 256 * 1024;
/** Bytes read a tick before the follower yields to the event loop (and comes straight back). */
const TICK_BYTES = 4 * 1024 * 1024;
/** Bytes of an unfinished line kept: enough for a whole message and a cut character. */
const KEEP = MAX_LOG_MESSAGE + 4;
const NL = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: false });

interface Open {
  fd: number;
  dev: number;
  ino: number;
  /** Where the next read starts. */
  pos: number;
  /** After the last \n read: what is saved. */
  offset: number;
  head: Buffer;
  /** The unfinished line's first KEEP bytes, and how many past them (-1: skip to the next \n). */
  partial: Buffer[];
  partialLen: number;
  overflow: number;
}

function readHead(fd: number, size: number): Buffer {
  const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
  let got = 0;
  while (got < head.length) {
    const n = readSync(fd, head, got, head.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return head.subarray(0, got);
}

export class FileFollower {
  private cur: Open | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** The saved state is for the first file met at the path only. */
  private saved: FileState | undefined;
  /** The last state handed over with its lines spooled: where to reopen after a failure. */
  private lastSaved: FileState | undefined;
  /** The last failure said, so a file that stays unreadable is said once. */
  private lastError: string | undefined;
  /** Whether the path was ever seen: a file that appears later is new, read from its start. */
  private seen = false;
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(private readonly deps: FileFollowerDeps) {
    this.saved = deps.saved;
  }

  start(): void {
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.cur) closeSync(this.cur.fd);
    this.cur = null;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tick();
    }, ms);
    this.timer.unref?.();
  }

  private tick(): void {
    let more = false;
    try {
      more = this.poll();
    } catch (e) {
      // Tried again at the next tick, reopened where the last spooled line ended (said once until it works).
      const error = String(e);
      if (error !== this.lastError) this.deps.log.warn('reading a log file failed', { path: this.deps.file.path, error });
      this.lastError = error;
      if (this.cur) closeSync(this.cur.fd);
      this.cur = null;
      if (this.lastSaved) this.saved = this.lastSaved;
      this.schedule(this.deps.pollMs ?? FILE_POLL_MS);
      return;
    }
    this.lastError = undefined;
    this.schedule(more ? 0 : this.deps.pollMs ?? FILE_POLL_MS);
  }

  /** One look at the path; true when there is more to read right away. */
  private poll(): boolean {
    const { path } = this.deps.file;
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(path);
    } catch {
      st = undefined;
    }
    const cur = this.cur;
    if (cur && (!st || st.ino !== cur.ino || st.dev !== cur.dev)) {
      // Rotated (or removed): what the old file still has, through its descriptor, then it is done.
      while (this.read(cur, fstatSync(cur.fd).size)) {
        // Read to its end: nothing else will ever read it.
      }
      this.finishPartial(cur);
      closeSync(cur.fd);
      this.cur = null;
    }
    if (!st || !st.isFile()) {
      // Not there (yet): whatever appears here later is new, and read from its start.
      this.seen = true;
      return false;
    }
    if (!this.cur) this.open();
    const open = this.cur;
    if (!open) return false;
    const size = fstatSync(open.fd).size;
    if (size < open.pos || (size > open.pos && !this.sameHead(open, size))) {
      this.deps.log.info('log file truncated; reading it from its start', { path });
      this.reset(open, 0, size);
      this.emit([], this.state(open), []);
    }
    return this.read(open, size);
  }

  private open(): void {
    // Non-blocking: a FIFO swapped in between the stat and the open must not stall the agent.
    const fd = openSync(this.deps.file.path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      return;
    }
    const head = readHead(fd, st.size);
    const saved = this.saved;
    const savedHead = saved ? Buffer.from(saved.head, 'base64') : undefined;
    // The same file as last time (inode and first bytes): where we stopped. A file met for the
    // first time at start: its end. Any other (replaced meanwhile, or appeared later): its start.
    const same = saved && savedHead && saved.ino === st.ino && saved.dev === st.dev && saved.offset <= st.size && head.subarray(0, savedHead.length).equals(savedHead);
    const tail = !saved && !this.seen;
    const start = same ? saved.offset : tail ? st.size : 0;
    this.seen = true;
    this.saved = undefined;
    this.cur = { fd, dev: st.dev, ino: st.ino, pos: start, offset: start, head, partial: [], partialLen: 0, overflow: 0 };
    // Tailing a file whose last line is unfinished: the rest of that line (begun before us) is skipped.
    if (tail && start > 0 && this.lastByte(fd, start) !== NL) this.cur.overflow = -1;
    this.emit([], this.state(this.cur), []);
  }

  private lastByte(fd: number, size: number): number | undefined {
    const b = Buffer.alloc(1);
    return readSync(fd, b, 0, 1, size - 1) === 1 ? b[0] : undefined;
  }

  private sameHead(open: Open, size: number): boolean {
    // A head shorter than HEAD_BYTES grows with the file; compare what was there, while it lasts.
    if (open.head.length < HEAD_BYTES && size > open.head.length) {
      const now = readHead(open.fd, size);
      if (!now.subarray(0, open.head.length).equals(open.head)) return false;
      open.head = now;
      return true;
    }
    if (open.pos === 0 || open.head.length === 0) return true;
    return readHead(open.fd, size).equals(open.head);
  }

  private reset(open: Open, pos: number, size: number): void {
    open.pos = pos;
    open.offset = pos;
    open.partial = [];
    open.partialLen = 0;
    open.overflow = 0;
    open.head = readHead(open.fd, size);
  }

  /** Reads up to TICK_BYTES toward `size`; true when more is left. */
  private read(open: Open, size: number): boolean {
    let budget = TICK_BYTES;
    while (open.pos < size && budget > 0) {
      const n = readSync(open.fd, this.buf, 0, Math.min(CHUNK, size - open.pos), open.pos);
      if (n === 0) break;
      budget -= n;
      const lines: LogLine[] = [];
      const ends: number[] = [];
      let from = 0;
      for (let nl = this.buf.indexOf(NL, 0); nl >= 0 && nl < n; nl = this.buf.indexOf(NL, from)) {
        this.keep(open, this.buf.subarray(from, nl));
        const line = this.take(open);
        from = nl + 1;
        open.offset = open.pos + from;
        if (line) {
          lines.push(line);
          ends.push(open.offset);
        }
      }
      this.keep(open, this.buf.subarray(from, n));
      open.pos += n;
      if (lines.length) this.emit(lines, this.state(open), ends);
    }
    return open.pos < size;
  }

  private keep(open: Open, bytes: Buffer): void {
    if (open.overflow < 0) return;
    const room = KEEP - open.partialLen;
    if (bytes.length <= room) {
      if (bytes.length) open.partial.push(Buffer.from(bytes));
      open.partialLen += bytes.length;
    } else {
      if (room > 0) open.partial.push(Buffer.from(bytes.subarray(0, room)));
      open.partialLen += Math.max(0, room);
      open.overflow += bytes.length - Math.max(0, room);
    }
  }

  /** The finished line gathered so far, as a log line (null for an empty one or a skipped rest). */
  private take(open: Open): LogLine | null {
    const skipped = open.overflow < 0;
    let bytes = open.partial.length === 1 ? open.partial[0]! : Buffer.concat(open.partial, open.partialLen);
    const overflow = Math.max(0, open.overflow);
    open.partial = [];
    open.partialLen = 0;
    open.overflow = 0;
    if (skipped) return null;
    if (overflow === 0 && bytes.length && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (!bytes.length && overflow === 0) return null;
    const text = utf8.decode(bytes);
    return { ts: Date.now(), source: 'file', source_name: this.deps.file.name, level: levelFromText(text), message: boundMessage(text, overflow) };
  }

  /** A rotated file's last line without its newline: the file is finished, so the line is too. */
  private finishPartial(open: Open): void {
    if (open.partialLen === 0 && open.overflow <= 0) return;
    const line = this.take(open);
    open.offset = open.pos;
    if (line) this.emit([line], this.state(open), [open.offset]);
  }

  private emit(lines: LogLine[], state: FileState, ends: number[]): void {
    this.deps.onLines(lines, state, ends);
    this.lastSaved = state;
  }

  private state(open: Open): FileState {
    return { dev: open.dev, ino: open.ino, offset: open.offset, head: open.head.toString('base64') };
  }
}
