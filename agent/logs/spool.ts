// The on-disk spool: every log line is written here before anything else happens to it, and stays
// until the hub has acknowledged the batch that carried it, so an agent that is offline, restarted
// or killed loses nothing it had read. Crash-safe by construction, with plain files:
// - segments `seg-N.ndjson`, append-only, one JSON record a line: a log line, or a mark (`{"m":…}`,
//   where a follower was when it wrote the lines before it). A crash can tear only the last record
//   of the newest segment; opening cuts it off.
// - batches `batch-SEQ.json`: the exact `logs` message, written (temp + rename) when it is first
//   sent, so a re-send — after a reconnect or a restart — is the same (boot, seq) and the same lines.
// - `state.json` (temp + rename): the spool's id (`boot`), the next seq, where the unbatched lines
//   start, the oldest batch kept, and how many lines were dropped and not yet reported.
// The bound counts segments and batches; past it the oldest go first (a whole batch, or a whole
// segment — segments are a sixteenth of the bound) and the count rides in the next batch.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LogBatchSchema, LogLineSchema, MAX_LOG_BATCH, type LogBatch, type LogLine } from '../../shared/protocol/logs.ts';
import { readStateFile, writeStateFile } from './state-file.ts';

interface SpoolState {
  boot: string;
  nextSeq: number;
  /** Batches below it were dropped by the bound (their files may still be there after a crash). */
  minSeq: number;
  /** Lines dropped (bound, corruption) not yet reported in a batch. */
  dropped: number;
  /** The first unbatched record: segment number and byte offset in it. */
  read: { seg: number; off: number };
}

interface Segment {
  n: number;
  size: number;
  /** Log lines in it not yet batched (after read.off for the read segment). */
  lines: number;
}

interface KeptBatch {
  batch: LogBatch;
  bytes: number;
}

const MARK_PREFIX = '{"m":';
const NL = 0x0a;
const segName = (n: number) => `seg-${String(n).padStart(10, '0')}.ndjson`;
const batchName = (seq: number) => `batch-${String(seq).padStart(10, '0')}.json`;

function randomBoot(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(12))).toString('hex');
}

function isState(v: unknown): v is SpoolState {
  const s = v as SpoolState;
  return (
    !!s &&
    typeof s.boot === 'string' &&
    /^[0-9a-f]{1,64}$/.test(s.boot) &&
    Number.isSafeInteger(s.nextSeq) &&
    s.nextSeq >= 1 &&
    Number.isSafeInteger(s.minSeq) &&
    Number.isSafeInteger(s.dropped) &&
    s.dropped >= 0 &&
    !!s.read &&
    Number.isSafeInteger(s.read.seg) &&
    Number.isSafeInteger(s.read.off) &&
    s.read.off >= 0
  );
}

export interface SpoolOptions {
  dir: string;
  /** The bound on disk, bytes. */
  bytes: number;
}

export class Spool {
  readonly boot: string;
  /** The last record of the newest segment when it is a mark: possibly not yet saved by its follower. */
  readonly lastMark: unknown;
  /** Bytes one batch may carry here: MAX_LOG_BATCH, or less when the bound is small (a few batches in flight stay well inside it). */
  readonly batchBytes: number;
  private state: SpoolState;
  private readonly segs: Segment[] = [];
  private readonly batches = new Map<number, KeptBatch>();
  private fd = -1;
  private readonly segBytes: number;
  private readonly statePath: string;

  constructor(private readonly options: SpoolOptions) {
    const { dir, bytes } = options;
    mkdirSync(dir, { recursive: true });
    this.statePath = join(dir, 'state.json');
    this.segBytes = Math.max(4096, Math.min(4 * 1024 * 1024, Math.floor(bytes / 16)));
    this.batchBytes = Math.max(4096, Math.min(MAX_LOG_BATCH.bytes - 4096, Math.floor(bytes / 8)));
    const saved = readStateFile(this.statePath);
    this.state = isState(saved) ? saved : { boot: randomBoot(), nextSeq: 1, minSeq: 1, dropped: 0, read: { seg: 1, off: 0 } };
    this.boot = this.state.boot;

    const names = readdirSync(dir);
    const segNumbers: number[] = [];
    for (const name of names) {
      const seg = /^seg-(\d{10})\.ndjson$/.exec(name);
      const batch = /^batch-(\d{10})\.json$/.exec(name);
      if (seg) {
        const n = Number(seg[1]);
        // Below the read segment: batched whole before a crash kept it from being removed.
        if (n < this.state.read.seg) unlinkSync(join(dir, name));
        else segNumbers.push(n);
      } else if (batch) {
        this.loadBatch(Number(batch[1]), join(dir, name));
      } else if (name.endsWith('.tmp')) {
        unlinkSync(join(dir, name));
      }
    }
    segNumbers.sort((a, b) => a - b);
    let lastMark: unknown;
    for (const n of segNumbers) {
      const { size, lines, last } = this.scan(n, n === this.state.read.seg ? this.state.read.off : 0, n === segNumbers.at(-1));
      this.segs.push({ n, size, lines });
      if (n === this.state.read.seg) this.state.read.off = Math.min(this.state.read.off, size);
      if (n === segNumbers.at(-1) && last?.startsWith(MARK_PREFIX)) {
        try {
          lastMark = (JSON.parse(last) as { m: unknown }).m;
        } catch {
          // A mark that does not parse says nothing.
        }
      }
    }
    this.lastMark = lastMark;
    if (!this.segs.length || this.segs[0]!.n !== this.state.read.seg) {
      // The read segment is gone (or never was): unbatched lines start at the oldest one left.
      this.state.read = { seg: this.segs[0]?.n ?? this.state.read.seg, off: 0 };
    }
    if (!this.segs.length) this.segs.push({ n: this.state.read.seg, size: 0, lines: 0 });
    this.fd = openSync(join(dir, segName(this.writeSeg.n)), 'a');
    this.save();
  }

  /** Lines waiting for a batch. */
  get pendingLines(): number {
    return this.segs.reduce((sum, s) => sum + s.lines, 0);
  }

  /** Bytes the spool holds on disk (segments past the read offset, and the kept batches). */
  get bytes(): number {
    let b = -this.state.read.off;
    for (const s of this.segs) b += s.size;
    for (const k of this.batches.values()) b += k.bytes;
    return b;
  }

  /** Enough unbatched bytes for a full batch. */
  get pendingFull(): boolean {
    let b = -this.state.read.off;
    for (const s of this.segs) b += s.size;
    return b >= this.batchBytes;
  }

  /** Lines dropped and not yet reported in a batch. */
  get dropped(): number {
    return this.state.dropped;
  }

  /** The batches sent and not yet acknowledged, oldest first. */
  unacked(): LogBatch[] {
    return [...this.batches.keys()].sort((a, b) => a - b).map((seq) => this.batches.get(seq)!.batch);
  }

  /**
   * Appends lines, each segment's part ending with a mark (`markAfter(i)`: where the follower is
   * once line i is in). When this returns, the lines survive the agent's exit and the follower may
   * save its position; a crash before that leaves the newest mark as the spool's last record.
   */
  append(lines: readonly LogLine[], markAfter?: (index: number) => unknown): void {
    let piece = '';
    let pieceBytes = 0;
    let pieceLines = 0;
    const flush = (last: number) => {
      if (!piece) return;
      if (markAfter) {
        const mark = `${MARK_PREFIX}${JSON.stringify(markAfter(last))}}\n`;
        piece += mark;
        pieceBytes += Buffer.byteLength(mark);
      }
      const buf = Buffer.from(piece);
      let done = 0;
      while (done < buf.length) done += writeSync(this.fd, buf, done);
      this.writeSeg.size += buf.length;
      this.writeSeg.lines += pieceLines;
      piece = '';
      pieceBytes = 0;
      pieceLines = 0;
    };
    for (let i = 0; i < lines.length; i++) {
      const record = JSON.stringify(lines[i]) + '\n';
      const bytes = Buffer.byteLength(record);
      if (this.writeSeg.size + pieceBytes + bytes > this.segBytes && this.writeSeg.size + pieceBytes > 0) {
        flush(i - 1);
        if (this.writeSeg.size > 0) this.rotate();
      }
      piece += record;
      pieceBytes += bytes;
      pieceLines++;
    }
    flush(lines.length - 1);
    this.enforceBound();
  }

  /**
   * The next batch of unbatched lines (≤ maxLines, ≤ batchBytes of JSON, at least one line), kept
   * on disk before it is returned; null when there is none.
   */
  takeBatch(maxLines: number = MAX_LOG_BATCH.lines): LogBatch | null {
    this.skipConsumed();
    if (this.pendingLines === 0) return null;
    // Only marks left in the read segment: the lines are in a later one.
    while (this.segs[0]!.lines === 0) {
      this.state.read.off = this.segs[0]!.size;
      this.skipConsumed();
    }
    const seg = this.segs[0]!;
    const off = this.state.read.off;
    // One record is at most ~100 KiB of JSON; read enough for a full batch and that.
    const want = Math.min(seg.size - off, this.batchBytes + 256 * 1024);
    const buf = Buffer.allocUnsafe(want);
    const fd = openSync(join(this.options.dir, segName(seg.n)), 'r');
    let got = 0;
    try {
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, off + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    const lines: LogLine[] = [];
    let pos = 0;
    let bytes = 0;
    let corrupt = 0;
    let counted = 0;
    while (lines.length < maxLines) {
      const end = buf.indexOf(NL, pos);
      if (end < 0 || end >= got) break;
      const record = buf.toString('utf8', pos, end);
      if (!record.startsWith(MARK_PREFIX)) {
        if (lines.length && bytes + record.length + 1 > this.batchBytes) break;
        counted++;
        // Checked as the hub will check it: a damaged record must not cost the whole batch.
        const parsed = parseRecord(record);
        if (parsed) {
          lines.push(parsed);
          bytes += end - pos + 1;
        } else {
          corrupt++;
        }
      }
      pos = end + 1;
    }
    if (pos === 0) {
      // No whole record within reach: the segment is damaged past this point; what is left of it goes.
      this.state.dropped += seg.lines;
      seg.lines = 0;
      this.state.read = { seg: seg.n, off: seg.size };
      this.save();
      return this.takeBatch(maxLines);
    }
    seg.lines -= counted;
    this.state.read = { seg: seg.n, off: off + pos };
    this.state.dropped += corrupt;
    if (!lines.length) {
      this.save();
      return this.takeBatch(maxLines);
    }
    const batch: LogBatch = { t: 'logs', boot: this.boot, seq: this.state.nextSeq, lines, ...(this.state.dropped ? { dropped: this.state.dropped } : {}) };
    const json = JSON.stringify(batch);
    writeStateFile(join(this.options.dir, batchName(batch.seq)), batch);
    this.batches.set(batch.seq, { batch, bytes: Buffer.byteLength(json) });
    this.state.nextSeq++;
    this.state.dropped = 0;
    this.save();
    this.skipConsumed();
    return batch;
  }

  /** The hub stored batch `seq`: it leaves the spool. False when it is not (or no longer) kept. */
  ack(seq: number): boolean {
    if (!this.batches.delete(seq)) return false;
    rm(join(this.options.dir, batchName(seq)));
    return true;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private get writeSeg(): Segment {
    return this.segs.at(-1)!;
  }

  private rotate(): void {
    closeSync(this.fd);
    const n = this.writeSeg.n + 1;
    this.segs.push({ n, size: 0, lines: 0 });
    this.fd = openSync(join(this.options.dir, segName(n)), 'a');
  }

  /** Moves the read pointer past segments it has read to their end (all but the one being written). */
  private skipConsumed(): void {
    while (this.segs.length > 1 && this.state.read.off >= this.segs[0]!.size) {
      const done = this.segs.shift()!;
      this.state.read = { seg: this.segs[0]!.n, off: 0 };
      this.save();
      rm(join(this.options.dir, segName(done.n)));
    }
  }

  /** Past the bound, the oldest go: kept batches first (they are older), then whole segments. */
  private enforceBound(): void {
    while (this.bytes > this.options.bytes) {
      const oldest = Math.min(...this.batches.keys());
      if (Number.isFinite(oldest)) {
        this.state.dropped += this.batches.get(oldest)!.batch.lines.length;
        this.state.minSeq = oldest + 1;
        this.batches.delete(oldest);
        this.save();
        rm(join(this.options.dir, batchName(oldest)));
      } else if (this.segs.length > 1) {
        const gone = this.segs.shift()!;
        this.state.dropped += gone.lines;
        this.state.read = { seg: this.segs[0]!.n, off: 0 };
        this.save();
        rm(join(this.options.dir, segName(gone.n)));
      } else {
        return;
      }
    }
  }

  private loadBatch(seq: number, path: string): void {
    // Outside [minSeq, nextSeq): dropped by the bound, or written but never recorded as sent (its
    // lines are still unbatched and go out under this seq again).
    if (seq < this.state.minSeq || seq >= this.state.nextSeq) return rm(path);
    const parsed = LogBatchSchema.safeParse(readStateFile(path));
    if (!parsed.success || parsed.data.boot !== this.state.boot || parsed.data.seq !== seq) return rm(path);
    this.batches.set(seq, { batch: parsed.data, bytes: statSync(path).size });
  }

  /** A segment's size and unbatched lines, its torn last record (a crash mid-write) cut off. */
  private scan(n: number, from: number, newest: boolean): { size: number; lines: number; last?: string } {
    const path = join(this.options.dir, segName(n));
    const fd = openSync(path, 'r+');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const r = readSync(fd, buf, got, size - got, got);
        if (r === 0) break;
        got += r;
      }
      const end = buf.lastIndexOf(NL, got - 1) + 1;
      if (end < size) ftruncateSync(fd, end);
      let lines = 0;
      for (let pos = Math.min(from, end); pos < end; ) {
        const nl = buf.indexOf(NL, pos);
        if (buf.toString('latin1', pos, pos + MARK_PREFIX.length) !== MARK_PREFIX) lines++;
        pos = nl + 1;
      }
      const last = newest && end > 0 ? buf.toString('utf8', buf.lastIndexOf(NL, end - 2) + 1, end - 1) : undefined;
      return { size: end, lines, last };
    } finally {
      closeSync(fd);
    }
  }

  private save(): void {
    writeStateFile(this.statePath, this.state);
  }
}

function parseRecord(record: string): LogLine | null {
  try {
    const parsed = LogLineSchema.safeParse(JSON.parse(record));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function rm(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone: what was wanted.
  }
}

export const spoolExists = (dir: string) => existsSync(join(dir, 'state.json'));
