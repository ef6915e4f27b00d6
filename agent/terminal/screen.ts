// A session's screen as a terminal sees it: an emulator (@xterm/headless) fed every byte the PTY
// writes, so a viewer attaching later (or one that fell behind) is sent the screen as it is — the
// visible screen, the scrollback, the alternate screen of a full-screen program, the cursor, the
// modes — rather than a tail of raw output. The emulator runs on its own thread (screen-worker.ts):
// parsing costs as much as carrying the output, and on the main thread it halved a flood's
// throughput. This module is the main thread's side; it is loaded with the first terminal
// (sessions.ts), and the thread is started with the first session and ended with the last, so an
// idle agent loads neither.
//
// The output of one turn of the event loop goes to the thread as one message (copied once into
// one buffer, or the chunk itself handed over when it is the only one and no viewer holds it). The
// bytes posted and not yet reported parsed are the backlog: the session pauses the PTY when it
// passes the high-water mark (session.ts). Should the program not be paused in time (no TCOOFF,
// and IXON clear), past SCREEN_BACKLOG_CAP unparsed bytes its output is not fed to the emulator
// until it catches up, so the kept screen may miss those bytes until the program next redraws
// (Ctrl-L, or any full repaint) — viewers reading live still get every byte.
import { TERMINAL_MAX_RECORD } from '../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordKind } from '../../shared/protocol/ws-records.ts';
import type { Logger } from '../log.ts';
import type { FromScreenThread, ToScreenThread } from './screen-worker.ts';

/** Unparsed bytes past which output is no longer fed to the emulator (only reached when the program cannot be paused). */
export const SCREEN_BACKLOG_CAP = 16 << 20;
/**
 * The thread's code: beside this file, or in a compiled agent its entrypoint, which the
 * executable keeps at its path from the build's root (`npm run build:agent` builds with
 * `--root .` and agent/terminal/screen-worker.ts as a second entrypoint).
 */
const WORKER = Bun.main.startsWith('/$bunfs/') ? '/$bunfs/root/agent/terminal/screen-worker.ts' : new URL('./screen-worker.ts', import.meta.url).href;
/** The output of one turn goes as one message, unless it passes this many bytes first. */
const BATCH_BYTES = 1 << 20;

export interface Snapshot {
  cols: number;
  rows: number;
  /** BINARY records (each ≤ TERMINAL_MAX_RECORD bytes of payload) that redraw the screen. */
  records: Uint8Array[];
}

/**
 * The emulator's thread, shared by every screen of the agent. If it fails (an exception, or it
 * exits), it is started again with every screen blank: a screen that waits on a dead thread would
 * hold its session paused for ever. If it fails before it ever answered (it cannot be loaded: a
 * compiled agent built without its entrypoint), the screens go on without an emulator — no
 * backlog, empty redraws — until the last one ends.
 */
class ScreenThread {
  private worker: Worker | null = null;
  private answered = false;
  private broken = false;
  private readonly screens = new Map<number, Screen>();
  private ids = 0;

  /** Whether a thread is running (the tests check it is started with the first session and ended with the last). */
  get running(): boolean {
    return this.worker !== null;
  }

  add(screen: Screen, cols: number, rows: number): number {
    const id = ++this.ids;
    this.screens.set(id, screen);
    if (this.worker) this.worker.postMessage({ t: 'open', id, cols, rows } satisfies ToScreenThread);
    else if (!this.broken) this.start();
    return id;
  }

  remove(id: number): void {
    if (!this.screens.delete(id)) return;
    this.post({ t: 'close', id });
    if (this.screens.size) return;
    this.worker?.terminate();
    this.worker = null;
    this.broken = false;
  }

  /** False when there is no emulator (the thread could not be loaded). */
  post(message: ToScreenThread, transfer: Transferable[] = []): boolean {
    if (!this.worker) return false;
    this.worker.postMessage(message, transfer);
    return true;
  }

  private start(): void {
    let worker: Worker;
    this.answered = false;
    try {
      worker = new Worker(WORKER);
    } catch (e) {
      return this.fail(null, e instanceof Error ? e.message : String(e));
    }
    this.worker = worker;
    // The sessions keep the agent alive, not their emulator.
    (worker as Worker & { unref(): void }).unref();
    worker.onmessage = ({ data }: MessageEvent<FromScreenThread>) => {
      if (this.worker !== worker) return;
      this.answered = true;
      if (data.t === 'failed') return this.fail(worker, data.message);
      this.screens.get(data.id)?.receive(data);
    };
    worker.onerror = (e) => this.fail(worker, e.message);
    worker.addEventListener('close', () => this.fail(worker, 'the thread exited'));
    for (const [id, s] of this.screens) worker.postMessage({ t: 'open', id, cols: s.cols, rows: s.rows } satisfies ToScreenThread);
  }

  private fail(worker: Worker | null, message: string): void {
    if (worker !== this.worker) return;
    const restart = this.answered;
    this.worker = null;
    worker?.terminate();
    if (!restart) this.broken = true;
    for (const s of this.screens.values()) s.lost(message, restart);
    if (restart && this.screens.size) this.start();
  }
}

const thread = new ScreenThread();

/** Whether the emulator's thread is running. */
export const screenThreadRunning = () => thread.running;

export class Screen {
  cols: number;
  rows: number;
  /** Bytes not fed because the backlog was over the cap. */
  skipped = 0;
  private readonly id: number;
  /** Bytes fed (posted or about to be), and those the thread reported parsed. */
  private fed = 0;
  private parsed = 0;
  /** The output of this turn, not yet posted. */
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private batchShared = false;
  private batchAck = false;
  private scheduled = false;
  private readonly requests = new Map<number, (s: Snapshot) => void>();
  private requestIds = 0;
  private disposed = false;

  constructor(
    cols: number,
    rows: number,
    /** Called when the backlog shrank (the session may resume the PTY). */
    private readonly onProgress: () => void,
    private readonly log: Logger,
  ) {
    this.cols = cols;
    this.rows = rows;
    this.id = thread.add(this, cols, rows);
  }

  /** Bytes fed and not yet parsed (those parsed since the thread's last report, at most MARK_EVERY, count too). */
  get backlog(): number {
    return this.fed - this.parsed;
  }

  /**
   * The PTY's output, in order. `ack`: report its parsing at once (while the PTY is paused, every
   * chunk counts toward XON). `shared`: a viewer may hold the chunk too (else it is handed to the
   * thread, and must not be used after this call).
   */
  feed(chunk: Uint8Array, { ack = false, shared = true }: { ack?: boolean; shared?: boolean } = {}): void {
    if (this.disposed || !chunk.byteLength) return;
    if (this.fed - this.parsed > SCREEN_BACKLOG_CAP) {
      this.skipped += chunk.byteLength;
      return;
    }
    this.fed += chunk.byteLength;
    this.batch.push(chunk);
    this.batchBytes += chunk.byteLength;
    this.batchShared ||= shared;
    this.batchAck ||= ack;
    if (this.batchBytes >= BATCH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Resizes in order with the output: bytes fed before it are parsed at the old size. */
  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    this.flush();
    this.cols = cols;
    this.rows = rows;
    thread.post({ t: 'resize', id: this.id, cols, rows });
  }

  /**
   * The screen once everything fed so far is parsed, and no later byte: output fed after this
   * call must reach a viewer after the snapshot, and it will, since it is parsed after it.
   */
  snapshot(): Promise<Snapshot> {
    if (this.disposed) return Promise.resolve(this.blank());
    this.flush();
    const req = ++this.requestIds;
    if (!thread.post({ t: 'snapshot', id: this.id, req })) return Promise.resolve(this.blank());
    return new Promise((resolve) => this.requests.set(req, resolve));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.batch = [];
    thread.remove(this.id);
    this.answerAll();
  }

  /** A message from the thread for this screen. */
  receive(m: FromScreenThread): void {
    if (m.t === 'parsed') {
      if (m.at <= this.parsed) return;
      this.parsed = m.at;
      return this.onProgress();
    }
    if (m.t !== 'snapshot') return;
    const resolve = this.requests.get(m.req);
    if (!resolve) return;
    this.requests.delete(m.req);
    const records: Uint8Array[] = [];
    for (let at = 0; at < m.data.byteLength; at += TERMINAL_MAX_RECORD) records.push(encodeWsRecord(WsRecordKind.BINARY, m.data.subarray(at, at + TERMINAL_MAX_RECORD)));
    resolve({ cols: m.cols, rows: m.rows, records });
  }

  /** The thread failed: what it had is gone (`restarted`: a blank screen replaces it). */
  lost(message: string, restarted: boolean): void {
    this.log.error(restarted ? 'the terminal emulator failed; the screen starts again blank' : 'the terminal emulator could not be started; screens are not kept', { error: message });
    this.parsed = this.fed;
    this.answerAll();
    this.onProgress();
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const { batch, batchBytes } = this;
    if (!batch.length) return;
    this.batch = [];
    this.batchBytes = 0;
    let data = batch[0]!;
    if (batch.length > 1 || this.batchShared || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) {
      data = new Uint8Array(batchBytes);
      let at = 0;
      for (const chunk of batch) {
        data.set(chunk, at);
        at += chunk.byteLength;
      }
    }
    const ack = this.batchAck;
    this.batchShared = false;
    this.batchAck = false;
    if (!thread.post({ t: 'feed', id: this.id, data, end: this.fed, ack }, [data.buffer as ArrayBuffer])) this.parsed = this.fed;
  };

  private blank(): Snapshot {
    return { cols: this.cols, rows: this.rows, records: [] };
  }

  private answerAll(): void {
    for (const resolve of this.requests.values()) resolve(this.blank());
    this.requests.clear();
  }
}
