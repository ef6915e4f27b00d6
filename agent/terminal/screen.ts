// A session's screen as a terminal sees it: @xterm/headless fed every byte the PTY writes, so a
// viewer attaching later (or one that fell behind) is sent the screen as it is — the visible
// screen, the scrollback, the alternate screen of a full-screen program, the cursor, the modes —
// rather than a tail of raw output. This module imports the emulator, so it is loaded with the
// first terminal (sessions.ts), never by an idle agent.
//
// The emulator parses asynchronously (its write buffer works in time slices), so the bytes it has
// not parsed yet are counted: the session pauses the PTY when the backlog passes the high-water mark.
// A program that turned flow control off (raw mode, IXON clear) cannot be paused; past
// SCREEN_BACKLOG_CAP unparsed bytes its output is not fed to the emulator until it catches up, so
// the kept screen may miss those bytes until the program next redraws (Ctrl-L, or any full
// repaint) — viewers reading live still get every byte.
import { SerializeAddon } from '@xterm/addon-serialize';
import { Terminal } from '@xterm/headless';
import { TERMINAL_MAX_RECORD } from '../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordKind } from '../../shared/protocol/ws-records.ts';

/** Lines of scrollback kept and replayed. */
export const SCROLLBACK = 1000;
/** Unparsed bytes past which output is no longer fed to the emulator (only reached with IXON off). */
export const SCREEN_BACKLOG_CAP = 16 << 20;
/** The backlog is measured at marks this far apart, not per chunk: one callback per 64 KiB, not per read. */
const MARK_EVERY = 64 * 1024;
/** A full reset, then the serialized state: the viewer's screen ends up exactly as ours. */
const RESET = '\x1bc';

const encoder = new TextEncoder();

export interface Snapshot {
  cols: number;
  rows: number;
  /** BINARY records (each ≤ TERMINAL_MAX_RECORD bytes of payload) that redraw the screen. */
  records: Uint8Array[];
}

export class Screen {
  private readonly term: Terminal;
  private readonly serializer = new SerializeAddon();
  /** Bytes handed to the emulator, and those it is known to have parsed (at the last mark). */
  private fed = 0;
  private parsed = 0;
  private marked = 0;
  /** Bytes not fed because the backlog was over the cap. */
  skipped = 0;
  private disposed = false;

  constructor(
    cols: number,
    rows: number,
    /** Called when the backlog shrank (the session may resume the PTY). */
    private readonly onProgress: () => void,
  ) {
    this.term = new Terminal({ cols, rows, scrollback: SCROLLBACK, allowProposedApi: true, logLevel: 'off' });
    // The addon is typed against @xterm/xterm's Terminal; the headless one has the same API it uses.
    this.term.loadAddon(this.serializer as unknown as Parameters<Terminal['loadAddon']>[0]);
  }

  /** Bytes fed and not yet parsed, as of the last mark (over by at most MARK_EVERY). */
  get backlog(): number {
    return this.fed - this.parsed;
  }

  get cols(): number {
    return this.term.cols;
  }

  get rows(): number {
    return this.term.rows;
  }

  /**
   * The PTY's output, in order. The chunk is kept by the emulator until parsed; it must not be
   * reused. `mark`: report its parsing (while the PTY is paused, every chunk counts toward XON).
   */
  feed(chunk: Uint8Array, mark = false): void {
    if (this.disposed) return;
    if (this.fed - this.parsed > SCREEN_BACKLOG_CAP) {
      this.skipped += chunk.byteLength;
      return;
    }
    this.fed += chunk.byteLength;
    if (!mark && this.fed - this.marked < MARK_EVERY) return this.term.write(chunk);
    const at = (this.marked = this.fed);
    this.term.write(chunk, () => {
      this.parsed = at;
      this.onProgress();
    });
  }

  /** Resizes in order with the output: bytes written before it are parsed at the old size. */
  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    this.term.write('', () => {
      if (!this.disposed) this.term.resize(cols, rows);
    });
  }

  /**
   * The screen once everything fed so far is parsed, and no later byte: output fed after this
   * call must reach a viewer after the snapshot, and it will, since it is parsed after it.
   */
  snapshot(): Promise<Snapshot> {
    return new Promise((resolve) => {
      this.term.write('', () => {
        if (this.disposed) return resolve({ cols: this.cols, rows: this.rows, records: [] });
        const bytes = encoder.encode(RESET + this.serializer.serialize({ scrollback: SCROLLBACK }));
        const records: Uint8Array[] = [];
        for (let at = 0; at < bytes.byteLength; at += TERMINAL_MAX_RECORD) records.push(encodeWsRecord(WsRecordKind.BINARY, bytes.subarray(at, at + TERMINAL_MAX_RECORD)));
        resolve({ cols: this.cols, rows: this.rows, records });
      });
    });
  }

  /** The emulator, for tests that compare screens. */
  get terminal(): Terminal {
    return this.term;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.term.dispose();
  }
}
