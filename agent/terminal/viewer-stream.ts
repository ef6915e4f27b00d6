// One viewer of a session: one `terminal` stream, records both ways (shared/protocol/ws-records.ts).
// Outward, an ordered queue of control messages (TEXT) and output (BINARY), written as the mux's
// credit allows: the output chunks queued while the previous record waited for credit go out
// together as one record of at most TERMINAL_MAX_RECORD, so the output path does one copy per
// record and no per-byte work. A viewer that stops reading is counted (queued bytes, time since
// its last progress); the session decides when it has stalled, and then its queue is dropped and,
// once its stream moves again, it is sent a redraw of the screen instead of what it missed.
// Inward, the records are decoded with the cap TERMINAL_MAX_RECORD (a larger one resets the
// stream PROTOCOL_ERROR), a TEXT record must be one TerminalViewerControl (else an error
// BAD_MESSAGE), and BINARY records are keystrokes the session takes only from its typist.
import { ResetCode } from '../../shared/codes.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { TERMINAL_MAX_RECORD, TerminalViewerControlSchema, type TerminalAgentControl, type TerminalUser, type TerminalViewer, type TerminalViewerControl } from '../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordError, WsRecordKind, WS_RECORD_HEADER_BYTES } from '../../shared/protocol/ws-records.ts';
import type { Snapshot } from './screen.ts';

/** What a viewer asks of its session. */
export interface ViewerHost {
  /** Keystrokes from this viewer; resolves when more may be read (the PTY's input buffer drained). */
  input(viewer: Viewer, bytes: Uint8Array): Promise<void> | void;
  control(viewer: Viewer, message: TerminalViewerControl): void;
  /** The viewer's stream ended (closed, reset, or the socket gone). */
  detach(viewer: Viewer): void;
  /** The viewer's queue shrank. */
  progress(): void;
  /** The screen as it is once everything fed so far is parsed. */
  snapshot(): Promise<Snapshot>;
}

/** Control messages waiting past this many are dropped, except `exit` (a viewer that does not read learns nothing more). */
const MAX_PENDING_TEXT = 64;
/** How long a session that ended waits for a viewer to take its last output before resetting its stream. */
const FINISH_MS = 10_000;

type Item = { t: 'text'; record: Uint8Array; key: string | null } | { t: 'bytes'; data: Uint8Array } | { t: 'redraw'; records: Uint8Array[] | null };

export class Viewer {
  readonly id: string;
  readonly user: TerminalUser;
  readonly mayShare: boolean;
  readonly attachedAt: number;
  /** Output bytes queued or being written (what holds memory for this viewer). */
  queued = 0;
  /** When it last took a record, or when its queue last became non-empty. */
  lastProgress = 0;
  /** Its queue was dropped; it gets a redraw once its stream moves again. */
  stalled = false;
  /** The session's size this viewer was last told. */
  toldCols = 0;
  toldRows = 0;
  /** When it was last told it may not type (one error per burst). */
  readOnlyToldAt = -Infinity;

  private items: Item[] = [];
  private head = 0;
  private texts = 0;
  private pumping = false;
  private ended = false;
  private finishing = false;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(
    private readonly stream: MuxStream,
    viewer: TerminalViewer,
    private readonly host: ViewerHost,
    private readonly now: () => number,
  ) {
    this.id = viewer.id;
    this.user = { user_id: viewer.user_id, name: viewer.name };
    this.mayShare = viewer.may_share;
    this.attachedAt = now();
    this.writer = stream.writable.getWriter();
    this.writer.closed.catch(() => this.gone());
    stream.onReset(() => this.gone());
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Starts reading the viewer's records. */
  listen(): void {
    this.read().then(
      () => this.gone(),
      () => this.gone(),
    );
  }

  send(message: TerminalAgentControl): void {
    if (this.ended || this.finishing) return;
    if (message.t === 'size') {
      this.toldCols = message.cols;
      this.toldRows = message.rows;
    } else if (message.t === 'attached') {
      this.toldCols = message.session.cols;
      this.toldRows = message.session.rows;
    }
    const key = message.t === 'session' || message.t === 'size' ? message.t : null;
    const record = encodeWsRecord(WsRecordKind.TEXT, JSON.stringify(message));
    if (key) {
      for (let i = this.head; i < this.items.length; i++) {
        const item = this.items[i]!;
        if (item.t === 'text' && item.key === key) {
          item.record = record; // the latest news replaces what is still waiting
          return;
        }
      }
    }
    if (this.texts >= MAX_PENDING_TEXT && message.t !== 'exit') return;
    this.texts++;
    this.push({ t: 'text', record, key });
  }

  /** Live output. Not queued while stalled: the redraw replaces it. */
  output(chunk: Uint8Array): void {
    if (this.ended || this.stalled || this.finishing) return;
    if (this.queued === 0) this.lastProgress = this.now();
    this.queued += chunk.byteLength;
    this.push({ t: 'bytes', data: chunk });
  }

  /** Queues a redraw of the screen as it is now; output pushed after this call follows it. */
  redraw(): void {
    if (this.ended || this.finishing) return;
    const item: Item = { t: 'redraw', records: null };
    this.push(item);
    void this.host.snapshot().then((snapshot) => {
      const size = snapshot.cols !== this.toldCols || snapshot.rows !== this.toldRows;
      const records = size ? [encodeWsRecord(WsRecordKind.TEXT, JSON.stringify({ t: 'size', cols: snapshot.cols, rows: snapshot.rows } satisfies TerminalAgentControl)), ...snapshot.records] : snapshot.records;
      this.toldCols = snapshot.cols;
      this.toldRows = snapshot.rows;
      item.records = records;
      this.kick();
    });
  }

  /**
   * It fell too far behind: what is queued for it is dropped (what is being written cannot be),
   * and it stops holding the session back. Once the record in flight is taken, it gets a redraw.
   * A redraw already at the head of its queue is kept (it may be half sent, and it guarantees the
   * viewer progress even while a flood keeps overrunning the newer ones); control messages too.
   */
  stall(): void {
    if (this.stalled || this.ended || this.finishing) return;
    this.stalled = true;
    const kept: Item[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (item.t === 'text' || (item.t === 'redraw' && i === this.head)) kept.push(item);
      else if (item.t === 'bytes') this.queued -= item.data.byteLength;
    }
    this.items = kept;
    this.head = 0;
    if (!this.pumping) this.recover();
  }

  /** The session ended: its last output and `exit` go out, then the stream ends (FIN). */
  finish(exit: TerminalAgentControl & { t: 'exit' }): void {
    if (this.ended || this.finishing) return;
    this.send(exit);
    this.finishing = true;
    const timer = setTimeout(() => this.stream.reset(ResetCode.CANCELLED, 'the viewer did not take the end of the session'), FINISH_MS);
    this.stream.closed.then(() => clearTimeout(timer));
    this.kick();
  }

  /** Ends the stream now, whatever is queued (the viewer was replaced, or the agent is going away). */
  drop(code: string, message: string): void {
    if (this.ended) return;
    this.stream.reset(code, message);
    this.gone();
  }

  private push(item: Item): void {
    this.items.push(item);
    this.kick();
  }

  /** Starts the pump in a microtask, so the chunks of one turn share a record. */
  private kick(): void {
    if (this.pumping || this.ended) return;
    this.pumping = true;
    queueMicrotask(() => void this.pump());
  }

  /** The stream moves again after a stall: a redraw (behind what was kept), then live output. */
  private recover(): void {
    this.stalled = false;
    this.redraw();
  }

  private async pump(): Promise<void> {
    try {
      while (!this.ended) {
        if (this.head === this.items.length) break;
        this.compact();
        const item = this.items[this.head]!;
        let record: Uint8Array;
        let bytes = 0;
        if (item.t === 'redraw') {
          if (!item.records) return; // redraw() kicks again when the snapshot is there
          const next = item.records.shift();
          if (!item.records.length) this.shift();
          if (!next) continue;
          record = next;
        } else if (item.t === 'text') {
          this.shift();
          this.texts--;
          record = item.record;
        } else {
          [record, bytes] = this.coalesce();
        }
        await this.writer.write(record);
        this.queued -= bytes;
        this.lastProgress = this.now();
        if (this.stalled) this.recover();
        if (bytes) this.host.progress();
      }
      if (this.finishing && this.head === this.items.length && !this.ended) {
        await this.writer.close();
        this.gone();
      }
    } catch {
      this.gone();
    } finally {
      this.pumping = false;
      if (!this.ended && this.head < this.items.length && this.readyAtHead()) this.kick();
    }
  }

  private readyAtHead(): boolean {
    const item = this.items[this.head];
    return item !== undefined && (item.t !== 'redraw' || item.records !== null);
  }

  private shift(): void {
    this.items[this.head++] = undefined as unknown as Item;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
  }

  /** Drops the taken slots at the front once they are most of the array (a long queue stays O(1) per item). */
  private compact(): void {
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** The output chunks at the head of the queue as one BINARY record of at most TERMINAL_MAX_RECORD. */
  private coalesce(): [Uint8Array, number] {
    const first = this.items[this.head] as Item & { t: 'bytes' };
    if (first.data.byteLength >= TERMINAL_MAX_RECORD) {
      const part = first.data.subarray(0, TERMINAL_MAX_RECORD);
      first.data = first.data.subarray(TERMINAL_MAX_RECORD);
      if (!first.data.byteLength) this.shift();
      return [encodeWsRecord(WsRecordKind.BINARY, part), part.byteLength];
    }
    let n = 0;
    let end = this.head;
    while (end < this.items.length) {
      const item = this.items[end]!;
      if (item.t !== 'bytes' || n + item.data.byteLength > TERMINAL_MAX_RECORD) break;
      n += item.data.byteLength;
      end++;
    }
    const record = new Uint8Array(WS_RECORD_HEADER_BYTES + n);
    record[0] = WsRecordKind.BINARY;
    new DataView(record.buffer).setUint32(1, n, false);
    let at = WS_RECORD_HEADER_BYTES;
    // shift() empties the array when it takes the last item, so count rather than compare indices.
    for (let k = end - this.head; k > 0; k--) {
      const data = (this.items[this.head] as Item & { t: 'bytes' }).data;
      record.set(data, at);
      at += data.byteLength;
      this.shift();
    }
    return [record, n];
  }

  private async read(): Promise<void> {
    const decoder = new WsRecordDecoder(TERMINAL_MAX_RECORD);
    for await (const chunk of this.stream.readable) {
      let records;
      try {
        records = decoder.push(chunk);
      } catch (e) {
        // Reset before leaving the loop: leaving it cancels the readable, which would reset CANCELLED.
        this.stream.reset(ResetCode.PROTOCOL_ERROR, e instanceof WsRecordError ? e.message : String(e));
        return;
      }
      for (const record of records) {
        if (this.ended) return;
        if (record.kind === 'binary') {
          if (record.data.byteLength) await this.host.input(this, record.data);
        } else if (record.kind === 'text') this.onText(record.text);
        else return; // a close record: the viewer is leaving
      }
    }
  }

  private onText(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.send({ t: 'error', code: 'BAD_MESSAGE', message: 'a text message is not JSON' });
    }
    const parsed = TerminalViewerControlSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.send({ t: 'error', code: 'BAD_MESSAGE', message: `not a terminal control message${issue ? ` (${issue.path.join('.') || 't'}: ${issue.message})` : ''}`.slice(0, 1024) });
    }
    this.host.control(this, parsed.data);
  }

  /** The stream is over, however it ended: nothing more is sent, and the session forgets it. */
  private gone(): void {
    if (this.ended) return;
    this.ended = true;
    this.items = [];
    this.head = 0;
    this.queued = 0;
    this.host.detach(this);
  }
}
