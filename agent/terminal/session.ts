// One terminal session: a shell in a real PTY (Bun.spawn with `terminal`), the screen it draws
// (screen.ts), the viewers watching it (viewer-stream.ts) and who of them types. It outlives its
// viewers: when the last one leaves its idle window starts, and only when that runs out, or it is
// closed, or the shell exits, does it end — and then its whole process session goes (group.ts).
//
// Flow control. Bun's Terminal reads the PTY as fast as it can and has no pause, so the session
// pauses the program the way a terminal does: when the emulator's unparsed backlog or a viewer's
// queue passes HIGH_WATER it stops the PTY's output, so the program blocks in write(), and
// restarts it once everything is below LOW_WATER. It stops it with tcflow(TCOOFF) on the PTY's
// slave side (tty-stop.ts), which takes effect before the call returns whatever the program's
// modes; where that is not available, with an XOFF (^S) written to its input, which needs IXON and
// takes effect only once the kernel has processed it (up to ~200 ms on a busy machine). A viewer
// that makes no progress for STALL_MS stops holding the session back: its queue is dropped and it
// is sent a redraw once its stream moves again, so one stalled tab never freezes the session for
// the others. A viewer that reads, however slowly, is not dropped: it holds the program paused.
// STALL_BYTES is only a memory bound, for a program that cannot be paused in time (no TCOOFF, and
// IXON off or a slow XOFF). Memory per session: the viewers' queues share the chunks, so the
// output held is at most STALL_BYTES (32 MiB) plus a record per viewer, and the emulator's backlog
// at most SCREEN_BACKLOG_CAP (16 MiB, screen.ts) — whatever the program writes; paused with TCOOFF,
// both stay near HIGH_WATER (2 MiB) plus one PTY read (≤ 256 KiB measured).
// The typist's input is bounded the same way: past INPUT_HIGH bytes not yet taken by the PTY the
// viewer's stream is not read further (its mux window then holds the browser back).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Subprocess } from 'bun';
import { ResetCode } from '../../shared/codes.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { TERMINAL_SIZE, type TerminalAgentControl, type TerminalSession, type TerminalUser, type TerminalViewer, type TerminalViewerControl } from '../../shared/protocol/terminal.ts';
import type { Logger } from '../log.ts';
import { endSession } from './group.ts';
import { Screen, type Snapshot } from './screen.ts';
import type { ShellPlan } from './shell.ts';
import { openTtyStop, type TtyStop } from './tty-stop.ts';
import { Viewer, type ViewerHost } from './viewer-stream.ts';

/**
 * The pause marks. The low one is ~15 ms of the emulator's parsing (it parses ~60 MB/s): far enough
 * above empty that it still has work while the restart wakes the program and its output comes back, so
 * a flood runs at the emulator's pace rather than stopping and starting.
 */
export const HIGH_WATER = 2 << 20;
export const LOW_WATER = 1 << 20;
/**
 * A viewer's queue past this is dropped even though it reads: the bound on memory when the
 * program cannot be paused in time. Paused, a queue stays under HIGH_WATER plus what the PTY had
 * already given (one read with TCOOFF; with XOFF on a busy machine up to ~16 MB was measured). The
 * chunks are shared by every viewer, so this is per session more than per viewer.
 */
export const STALL_BYTES = 32 << 20;
export const STALL_MS = 5000;
export const INPUT_HIGH = 256 * 1024;
/** c_iflag IXON on Linux: output stop/start with ^S/^Q. */
export const IXON = 0o2000;
const XOFF = new Uint8Array([0x13]);
const XON = new Uint8Array([0x11]);
/** How often the stop is repeated while paused and output still comes (a ^C or ^Q restarted it). */
const XOFF_REPEAT_MS = 20;
/** How often IXON is looked up (a tcgetattr) while the PTY should be paused and cannot be. */
const IXON_CHECK_MS = 100;
/** How long the PTY's last output may take to arrive after the shell exited. */
const EOF_WAIT_MS = 1000;
/** At most one READ_ONLY error per viewer this often: a burst of keystrokes is told once. */
const READ_ONLY_EVERY_MS = 1000;

export function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const clamp = (n: number, min: number, max: number) => Math.min(max, Math.max(min, Math.trunc(n) || 0));
  return { cols: clamp(cols, TERMINAL_SIZE.minCols, TERMINAL_SIZE.maxCols), rows: clamp(rows, TERMINAL_SIZE.minRows, TERMINAL_SIZE.maxRows) };
}

export interface SessionOptions {
  log: Logger;
  plan: ShellPlan;
  owner: TerminalUser;
  cols: number;
  rows: number;
  idleMs: number;
  /** The session ended (after its processes are gone and its viewers were told). */
  onEnd: (session: Session) => void;
  now?: () => number;
  /** SIGHUP → SIGKILL grace (group.ts). */
  killGraceMs?: number;
}

type ExitReason = 'exited' | 'closed' | 'idle';

export class Session implements ViewerHost {
  readonly id = randomBytes(16).toString('base64url');
  readonly owner: TerminalUser;
  readonly createdAt: number;
  readonly pid: number;
  cols: number;
  rows: number;
  readonly screen: Screen;
  /** In attach order; the typist is one of them or null. */
  private readonly viewers = new Map<string, Viewer>();
  private typist: Viewer | null = null;
  private idleSince: number | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly checker: ReturnType<typeof setInterval>;
  private readonly proc: Subprocess;
  private readonly term: Bun.Terminal;
  /** The PTY's output switch (null: XOFF/XON instead). */
  private readonly stop: TtyStop | null;
  private readonly options: SessionOptions;
  private readonly now: () => number;
  private reason: ExitReason | null = null;
  private ending: Promise<void> | null = null;
  private eof!: () => void;
  private readonly eofSeen = new Promise<void>((resolve) => (this.eof = resolve));
  private readonly ended: Promise<void>;
  private paused = false;
  private xoffAt = 0;
  private ixonCheckedAt = -Infinity;
  private inputPending = 0;
  private drained: (() => void) | null = null;

  constructor(options: SessionOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.owner = options.owner;
    this.createdAt = this.now();
    ({ cols: this.cols, rows: this.rows } = clampSize(options.cols, options.rows));
    const { plan } = options;
    this.proc = Bun.spawn(plan.argv, {
      // An account whose home is missing (nobody's /nonexistent) starts in / rather than not at all.
      cwd: existsSync(plan.cwd) ? plan.cwd : '/',
      env: plan.env,
      terminal: {
        cols: this.cols,
        rows: this.rows,
        name: 'xterm-256color',
        data: (_t, data) => this.output(data),
        exit: () => this.eof(),
        drain: () => this.onDrain(),
      },
    });
    this.term = this.proc.terminal!;
    this.stop = openTtyStop(this.proc.pid);
    // After the spawn, which throws when the program cannot be started; no output comes before it.
    this.screen = new Screen(this.cols, this.rows, () => this.progress(), options.log);
    this.pid = this.proc.pid;
    this.checker = setInterval(() => this.check(), 1000);
    this.checker.unref?.();
    this.ended = this.proc.exited.then(() => this.finish());
    this.startIdle();
  }

  get command(): string[] {
    return this.options.plan.command;
  }

  /** The session as the protocol lists it. */
  describe(): TerminalSession {
    const listed = (v: Viewer) => ({ id: v.id, ...v.user, typing: v === this.typist, may_share: v.mayShare, attached_at: v.attachedAt });
    return {
      id: this.id,
      owner: this.owner,
      typist: this.typist ? listed(this.typist) : null,
      viewers: [...this.viewers.values()].map(listed),
      command: this.options.plan.command,
      user: this.options.plan.user,
      pid: this.pid,
      cols: this.cols,
      rows: this.rows,
      created_at: this.createdAt,
      idle_since: this.idleSince,
      closes_at: this.idleSince === null ? null : this.idleSince + this.options.idleMs,
    };
  }

  /** Where the output waits, for the tests and the benchmark: the bounds flow control keeps. */
  flow(): { paused: boolean; backlog: number; skipped: number; viewers: { id: string; queued: number; stalled: boolean }[] } {
    return { paused: this.paused, backlog: this.screen.backlog, skipped: this.screen.skipped, viewers: [...this.viewers.values()].map((v) => ({ id: v.id, queued: v.queued, stalled: v.stalled })) };
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  hasViewer(id: string): boolean {
    return this.viewers.has(id);
  }

  get running(): boolean {
    return this.reason === null;
  }

  /**
   * A viewer joins (the stream is accepted already). A viewer id already attached is replaced (a
   * tab re-attaching before its old stream was noticed gone): the old stream ends, and the new one
   * keeps its typing.
   */
  attach(stream: MuxStream, info: TerminalViewer, size: { cols: number; rows: number }): void {
    const viewer = new Viewer(stream, info, this, this.now);
    const old = this.viewers.get(info.id);
    let typing = false;
    if (old) {
      typing = old === this.typist;
      this.viewers.delete(info.id);
      if (typing) this.typist = null;
      old.drop(ResetCode.CLOSED, 'this viewer attached again');
    }
    this.viewers.set(viewer.id, viewer);
    this.stopIdle();
    if (typing || (!this.typist && this.isOwner(viewer))) this.typist = viewer;
    if (this.typist === viewer) this.applySize(size.cols, size.rows, viewer);
    viewer.send({ t: 'attached', session: this.describe(), viewer: viewer.id, typing: viewer === this.typist });
    viewer.redraw();
    viewer.listen();
    this.announce(viewer);
  }

  // --- ViewerHost ---

  input(viewer: Viewer, bytes: Uint8Array): Promise<void> | void {
    if (!this.running) return;
    if (viewer !== this.typist) {
      const now = this.now();
      if (now - viewer.readOnlyToldAt < READ_ONLY_EVERY_MS) return;
      viewer.readOnlyToldAt = now;
      const who = this.typist ? `${this.typist.user.name} types` : 'nobody types now';
      return viewer.send({ t: 'error', code: 'READ_ONLY', message: `this viewer is read-only: ${who}; keystrokes are refused` });
    }
    this.writePty(bytes);
    this.inputPending += bytes.byteLength;
    if (this.inputPending > INPUT_HIGH) return new Promise<void>((resolve) => (this.drained = resolve));
  }

  control(viewer: Viewer, message: TerminalViewerControl): void {
    if (!this.running) return;
    switch (message.t) {
      case 'resize':
        if (viewer === this.typist) this.applySize(message.cols, message.rows);
        else viewer.send({ t: 'size', cols: this.cols, rows: this.rows });
        return;
      case 'handover': {
        if (!this.isOwner(viewer) && viewer !== this.typist) return this.refuse(viewer, 'only the owner or the typist hands typing over');
        const to = this.viewers.get(message.to);
        if (!to) return this.refuse(viewer, `no viewer ${message.to} is attached`);
        if (!to.mayShare && !this.isOwner(to)) return this.refuse(viewer, `${to.user.name} may not be handed typing (no terminal:share)`);
        return this.handTo(viewer, to);
      }
      case 'take':
        if (!this.isOwner(viewer)) return this.refuse(viewer, 'only the owner takes typing back');
        return this.handTo(viewer, viewer);
      case 'close':
        if (!this.isOwner(viewer) && viewer !== this.typist) return this.refuse(viewer, 'only the owner or the typist closes the session');
        void this.close('closed');
    }
  }

  detach(viewer: Viewer): void {
    if (this.viewers.get(viewer.id) !== viewer) return;
    this.viewers.delete(viewer.id);
    if (this.typist === viewer) this.typist = [...this.viewers.values()].find((v) => this.isOwner(v)) ?? null;
    if (!this.running) return;
    if (!this.viewers.size) this.startIdle();
    this.announce(null);
    this.progress();
  }

  progress(): void {
    if (this.paused && this.belowLow()) this.resume();
  }

  snapshot(): Promise<Snapshot> {
    return this.screen.snapshot();
  }

  // --- ending ---

  /** Ends the session: its process session is hung up, then killed; resolves once it is over. */
  close(reason: ExitReason): Promise<void> {
    this.reason ??= reason;
    this.ending ??= endSession(this.pid, this.options.killGraceMs);
    return this.ended;
  }

  /** The socket is gone: the viewers' streams went with it, the session stays (its idle window starts). */
  dropViewers(): void {
    for (const v of [...this.viewers.values()]) v.drop(ResetCode.SOCKET_CLOSED, 'the device socket closed');
  }

  private async finish(): Promise<void> {
    this.reason ??= 'exited';
    // Our handle on the PTY's slave side would keep its end of file from coming.
    this.stop?.close();
    // The last output may still be on its way; what the shell left behind goes with it.
    await Promise.race([this.eofSeen, Bun.sleep(EOF_WAIT_MS)]);
    await (this.ending ??= endSession(this.pid, this.options.killGraceMs));
    clearInterval(this.checker);
    this.stopIdle();
    const signal = this.proc.signalCode;
    const exit = { t: 'exit', code: this.reason === 'exited' ? this.proc.exitCode : null, signal: signal === null || signal === undefined ? null : String(signal), reason: this.reason } as const;
    for (const v of this.viewers.values()) v.finish(exit);
    this.drained?.();
    try {
      this.term.close();
    } catch {
      // closed already
    }
    this.screen.dispose();
    this.options.log.info('terminal session ended', { session: this.id, reason: this.reason, code: this.proc.exitCode, signal: this.proc.signalCode });
    this.options.onEnd(this);
  }

  // --- output and flow control ---

  private output(data: Uint8Array): void {
    // No viewer: the chunk is the emulator's alone, and is handed to its thread rather than copied.
    this.screen.feed(data, { ack: this.paused, shared: this.viewers.size > 0 });
    for (const v of this.viewers.values()) {
      v.output(data);
      if (v.queued > STALL_BYTES) this.stallViewer(v);
    }
    if (this.paused) {
      // Output while paused: the tail Bun read before the XOFF took, or a ^C or ^Q restarted it.
      const now = this.now();
      if (this.belowLow()) this.resume();
      else if (now - this.xoffAt >= XOFF_REPEAT_MS) {
        this.xoffAt = now;
        this.stopOutput();
      }
    } else if (this.aboveHigh()) this.pause();
  }

  /** The PTY is closed once the session ended; a late write (an XON from the emulator catching up) is dropped. */
  private writePty(bytes: Uint8Array): void {
    if (!this.term.closed) this.term.write(bytes);
  }

  private aboveHigh(): boolean {
    if (this.screen.backlog > HIGH_WATER) return true;
    for (const v of this.viewers.values()) if (!v.stalled && v.queued > HIGH_WATER) return true;
    return false;
  }

  private belowLow(): boolean {
    if (this.screen.backlog > LOW_WATER) return false;
    for (const v of this.viewers.values()) if (!v.stalled && v.queued > LOW_WATER) return false;
    return true;
  }

  private pause(): void {
    const now = this.now();
    if (!this.stop) {
      if (now - this.ixonCheckedAt < IXON_CHECK_MS) return;
      this.ixonCheckedAt = now;
      if (!(this.term.inputFlags & IXON)) return; // raw mode: the stall and the emulator's cap bound it
    }
    this.paused = true;
    this.xoffAt = now;
    this.stopOutput();
  }

  private stopOutput(): void {
    if (!this.stop?.set(true)) this.writePty(XOFF);
  }

  private resume(): void {
    this.paused = false;
    this.ixonCheckedAt = -Infinity;
    if (!this.stop?.set(false)) this.writePty(XON);
  }

  private stallViewer(v: Viewer): void {
    this.options.log.debug('a terminal viewer fell behind; it will be redrawn', { session: this.id, viewer: v.id, queued: v.queued });
    v.stall();
    this.progress();
  }

  /** Once a second: viewers with output waiting and no progress for STALL_MS stop holding the PTY. */
  private check(): void {
    const now = this.now();
    for (const v of this.viewers.values()) if (!v.stalled && v.queued > 0 && now - v.lastProgress > STALL_MS) this.stallViewer(v);
    this.progress();
  }

  private onDrain(): void {
    this.inputPending = 0;
    const resolve = this.drained;
    this.drained = null;
    resolve?.();
  }

  // --- viewers and the typist ---

  private isOwner(v: Viewer): boolean {
    return v.user.user_id === this.owner.user_id;
  }

  private refuse(viewer: Viewer, message: string): void {
    viewer.send({ t: 'error', code: 'NOT_ALLOWED', message });
  }

  private handTo(requester: Viewer, to: Viewer): void {
    const from = this.typist;
    this.typist = to;
    if (from !== to) this.announce(null);
    requester.send({ t: 'handed_over', from: from ? from.user : null, to: to.user });
    this.options.log.info('terminal typing handed over', { session: this.id, from: from?.user.user_id ?? null, to: to.user.user_id });
  }

  /** Every viewer (but `except`, told otherwise) hears the session as it is now, with its own `typing`. */
  private announce(except: Viewer | null): void {
    const session = this.describe();
    for (const v of this.viewers.values()) if (v !== except) v.send({ t: 'session', session, typing: v === this.typist } satisfies TerminalAgentControl);
  }

  private applySize(cols: number, rows: number, except: Viewer | null = null): void {
    const size = clampSize(cols, rows);
    if (size.cols === this.cols && size.rows === this.rows) {
      if (!except) this.typist?.send({ t: 'size', ...size });
      return;
    }
    this.cols = size.cols;
    this.rows = size.rows;
    if (!this.term.closed) this.term.resize(size.cols, size.rows);
    this.screen.resize(size.cols, size.rows);
    for (const v of this.viewers.values()) if (v !== except) v.send({ t: 'size', ...size });
  }

  private startIdle(): void {
    if (this.idleSince !== null || this.viewers.size) return;
    this.idleSince = this.now();
    this.idleTimer = setTimeout(() => void this.close('idle'), this.options.idleMs);
    this.idleTimer.unref?.();
  }

  private stopIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleSince = null;
  }
}
