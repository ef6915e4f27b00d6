// One terminal viewer: their WebSocket bridged onto one `terminal` stream to the agent, whose
// records (shared/protocol/ws-records.ts) carry terminal bytes (BINARY) and control messages
// (TEXT) both ways. The hub keeps nothing of the session; it checks and paces:
//
// - Toward the viewer, output is counted until the viewer acknowledges it ({t:"ack", n}); with
//   more than TERMINAL_WINDOW unacknowledged the hub stops reading the stream, so the mux grants
//   the agent no more credit and the agent stops reading the PTY: a slow browser slows the
//   program, and nothing piles up in the agent, the hub or the browser. Every text record is
//   checked (TerminalAgentControlSchema) and sent on re-serialised; an invalid one is dropped and
//   counted. No message to the viewer is larger than TERMINAL_MAX_RECORD (binary) or a record the
//   decoder took (text, under 1 MiB).
// - Toward the agent, a WebSocket cannot be paused, so what the viewer sends while the stream's
//   writer waits for credit is queued, bounded (TERMINAL_INPUT_LIMIT; past it the viewer is closed
//   1013), adjacent keystrokes merged into one record. Text messages are checked
//   (TerminalClientMessageSchema): an ack is the hub's, a control goes on re-serialised, anything
//   else is answered {t:"error", code:"BAD_MESSAGE"} and never reaches the device.
//
// The stream's end is the viewer's end and the other way round: a viewer that goes is a reset
// stream (the agent drops that viewer; the session lives), and the socket closes with a
// TerminalCloseCode saying why the stream ended.
import { ResetCode } from '../../shared/codes.ts';
import { StreamResetError, type MuxStream } from '../../shared/protocol/mux.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordKind, type WsRecord } from '../../shared/protocol/ws-records.ts';
import { TERMINAL_MAX_RECORD, TERMINAL_WINDOW, TerminalAgentControlSchema, type TerminalUser } from '../../shared/protocol/terminal.ts';
import { TERMINAL_INPUT_LIMIT, TERMINAL_SUBPROTOCOL, TerminalClientMessageSchema, TerminalCloseCode, type TerminalServerMessage } from '../../shared/api/terminal.ts';

/**
 * The largest record the agent may send. A BINARY record should be at most TERMINAL_MAX_RECORD
 * (a longer one is sent on in slices of that size); a TEXT one may be longer (an `attached` with a
 * long command line), and stays under the 1 MiB a WebSocket message may have.
 */
export const MAX_AGENT_RECORD = TERMINAL_WINDOW - 1024;
/** Messages a viewer may have queued toward the device, whatever their size. */
const MAX_QUEUED = 1024;

const encoder = new TextEncoder();

/** What the bridge tells the capability as the viewer's attachment goes on. */
export interface BridgeHooks {
  /** The agent attached this viewer to `session`: the resume token the viewer is sent. */
  attached(session: string): Promise<{ token: string; expires_at: number }>;
  /** The agent handed typing over at this viewer's request. */
  handedOver(session: string | null, from: TerminalUser | null, to: TerminalUser): void;
  /** An agent's text record was not a control message; it was dropped. */
  dropped(): void;
  /** The bridge ended; `exited`: after the session's `exit`. */
  ended(exited: boolean): void;
}

type Queued = { kind: typeof WsRecordKind.TEXT | typeof WsRecordKind.BINARY; payload: Uint8Array };

/**
 * What the viewer sent, waiting for the stream's writer. Adjacent binary messages become one
 * record (up to TERMINAL_MAX_RECORD), so a typist's keystrokes behind a busy device take one place.
 */
export class RecordQueue {
  private readonly entries: Queued[] = [];
  private bytes = 0;
  private writing = false;
  private stopped = false;

  constructor(
    private readonly write: (record: Uint8Array) => Promise<void>,
    private readonly limits: { bytes: number; entries: number } = { bytes: TERMINAL_INPUT_LIMIT, entries: MAX_QUEUED },
  ) {}

  /** Bytes queued and not yet handed to the writer. */
  get size(): number {
    return this.bytes;
  }

  /** Queues a record's payload; false when the queue is past its limits (the caller closes the viewer). */
  push(kind: Queued['kind'], payload: Uint8Array): boolean {
    if (this.stopped) return true;
    const last = this.entries[this.entries.length - 1];
    if (kind === WsRecordKind.BINARY && last?.kind === WsRecordKind.BINARY && last.payload.byteLength + payload.byteLength <= TERMINAL_MAX_RECORD) {
      const joined = new Uint8Array(last.payload.byteLength + payload.byteLength);
      joined.set(last.payload);
      joined.set(payload, last.payload.byteLength);
      last.payload = joined;
    } else {
      // Copied: the viewer's message buffer is not ours to keep.
      this.entries.push({ kind, payload: payload.slice() });
    }
    this.bytes += payload.byteLength;
    if (this.bytes > this.limits.bytes || this.entries.length > this.limits.entries) {
      this.stop();
      return false;
    }
    if (!this.writing) void this.pump();
    return true;
  }

  /** Drops what is queued and writes nothing more. */
  stop(): void {
    this.stopped = true;
    this.entries.length = 0;
    this.bytes = 0;
  }

  private async pump(): Promise<void> {
    this.writing = true;
    try {
      for (let next = this.entries.shift(); next && !this.stopped; next = this.entries.shift()) {
        this.bytes -= next.payload.byteLength;
        await this.write(encodeWsRecord(next.kind, next.payload, MAX_AGENT_RECORD));
      }
    } catch {
      this.stop(); // the stream ended: its end is handled where it is read
    } finally {
      this.writing = false;
    }
  }
}

/** Output bytes sent to the viewer and not yet acknowledged; reading waits while there are too many. */
export class OutputWindow {
  private unacked = 0;
  private waiter: (() => void) | null = null;

  constructor(private readonly window = TERMINAL_WINDOW) {}

  get open(): boolean {
    return this.unacked <= this.window;
  }

  get outstanding(): number {
    return this.unacked;
  }

  sent(n: number): void {
    this.unacked += n;
  }

  /** The viewer wrote `n` bytes to its screen. Acking more than was sent is the page's mistake, not a credit. */
  ack(n: number): void {
    this.unacked = Math.max(0, this.unacked - n);
    if (this.open) this.wake();
  }

  /** Resolves once the window is open again, or the bridge ended (wake). */
  wait(): Promise<void> {
    if (this.open) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = resolve));
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

function send(ws: WebSocket, msg: TerminalServerMessage | Uint8Array): void {
  try {
    ws.send(msg instanceof Uint8Array ? msg : JSON.stringify(msg));
  } catch {
    // closed already
  }
}

function safeClose(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // closed already
  }
}

/** A viewer's text message, checked: what to do with it, or why it is refused. */
function checkClientMessage(data: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { ok: false as const, message: 'text messages are JSON objects, e.g. {"t":"resize","cols":120,"rows":40}' };
  }
  const parsed = TerminalClientMessageSchema.safeParse(raw);
  if (parsed.success) return { ok: true as const, msg: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false as const, message: `not a terminal message: ${issue?.path.length ? `${issue.path.join('.')}: ` : ''}${issue?.message ?? 'invalid'}`.slice(0, 1024) };
}

/** Accepts the viewer's socket and bridges it onto `stream` (the agent ACCEPTed it). */
export function bridgeTerminal(stream: MuxStream, hooks: BridgeHooks): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  // Binary messages as bytes, not Blobs (the default at this compatibility date).
  server.binaryType = 'arraybuffer';
  const writer = stream.writable.getWriter();
  const queue = new RecordQueue((record) => writer.write(record));
  const output = new OutputWindow();
  let ended = false;
  let exited = false;
  let session: string | null = null;
  let resumed = false;

  /** Ends both sides once: the stream (the agent drops this viewer) and the socket. */
  const end = (code: number, reason: string, resetCode: string = ResetCode.CANCELLED) => {
    if (ended) return;
    ended = true;
    queue.stop();
    output.wake();
    stream.reset(resetCode, reason);
    safeClose(server, code, reason);
    hooks.ended(exited);
  };

  server.addEventListener('message', (ev) => {
    if (ended) return;
    if (typeof ev.data !== 'string') {
      const bytes = new Uint8Array(ev.data as ArrayBuffer);
      for (let at = 0; at < bytes.byteLength; at += TERMINAL_MAX_RECORD) {
        if (!queue.push(WsRecordKind.BINARY, bytes.subarray(at, at + TERMINAL_MAX_RECORD))) return overflow();
      }
      return;
    }
    const checked = checkClientMessage(ev.data);
    if (!checked.ok) return send(server, { t: 'error', code: 'BAD_MESSAGE', message: checked.message });
    if (checked.msg.t === 'ack') return output.ack(checked.msg.n);
    if (!queue.push(WsRecordKind.TEXT, encoder.encode(JSON.stringify(checked.msg)))) overflow();
  });
  server.addEventListener('close', () => end(TerminalCloseCode.ENDED, 'the viewer closed'));
  server.addEventListener('error', () => end(TerminalCloseCode.FAILED, 'the viewer socket failed'));

  function overflow() {
    send(server, { t: 'error', code: 'TOO_MUCH_INPUT', message: 'the device is not keeping up with this viewer\'s input' });
    end(TerminalCloseCode.INPUT_OVERFLOW, 'the device is not keeping up');
  }

  async function onRecord(record: WsRecord): Promise<void> {
    if (record.kind === 'binary') {
      for (let at = 0; at < record.data.byteLength; at += TERMINAL_MAX_RECORD) {
        const slice = record.data.subarray(at, at + TERMINAL_MAX_RECORD);
        send(server, slice);
        output.sent(slice.byteLength);
      }
      return;
    }
    if (record.kind !== 'text') return hooks.dropped(); // a close record means nothing on a terminal stream
    let raw: unknown;
    try {
      raw = JSON.parse(record.text);
    } catch {
      return hooks.dropped();
    }
    const parsed = TerminalAgentControlSchema.safeParse(raw);
    if (!parsed.success) return hooks.dropped();
    const msg = parsed.data;
    send(server, msg);
    if (msg.t === 'attached') {
      session = msg.session.id;
      // One resume token per attachment: a second `attached` (a confused agent) gets none.
      if (!resumed) {
        resumed = true;
        const resume = await hooks.attached(session);
        if (!ended) send(server, { t: 'resume', ...resume });
      }
    } else if (msg.t === 'handed_over') {
      hooks.handedOver(session, msg.from, msg.to);
    } else if (msg.t === 'exit') {
      exited = true;
    }
  }

  void (async () => {
    const reader = stream.readable.getReader();
    const decoder = new WsRecordDecoder(MAX_AGENT_RECORD);
    try {
      for (;;) {
        // Not reading is the flow control: the mux grants the agent credit only for what is read.
        if (!output.open) await output.wait();
        if (ended) return;
        const next = await reader.read();
        if (next.done) break;
        let records: WsRecord[];
        try {
          records = decoder.push(next.value);
        } catch (e) {
          send(server, { t: 'error', code: 'BAD_DEVICE_RESPONSE', message: `the device broke the terminal protocol: ${String(e instanceof Error ? e.message : e).slice(0, 500)}` });
          return end(TerminalCloseCode.FAILED, 'the device broke the terminal protocol', ResetCode.PROTOCOL_ERROR);
        }
        for (const record of records) {
          if (ended) return;
          await onRecord(record);
          // Nothing follows an `exit`: the viewer is closed now rather than when the stream's end
          // arrives, which the device may send late or not at all.
          if (exited) return end(TerminalCloseCode.ENDED, 'the session ended');
        }
      }
      // The device ended its side without an `exit`: something failed there.
      send(server, { t: 'error', code: 'TERMINAL_ENDED', message: 'the device ended this terminal without saying why' });
      end(TerminalCloseCode.FAILED, 'the device ended the terminal');
    } catch (e) {
      if (ended) return;
      const err = e instanceof StreamResetError ? e : new StreamResetError(ResetCode.INTERNAL_ERROR, String(e));
      const offline = err.code === ResetCode.SOCKET_CLOSED;
      send(server, { t: 'error', code: offline ? 'DEVICE_OFFLINE' : err.code.slice(0, 64), message: offline ? 'the device went offline' : err.message.slice(0, 1024) });
      end(offline ? TerminalCloseCode.DEVICE_OFFLINE : TerminalCloseCode.FAILED, offline ? 'the device went offline' : 'the device ended the terminal');
    }
  })();

  return new Response(null, { status: 101, webSocket: client, headers: { 'sec-websocket-protocol': TERMINAL_SUBPROTOCOL } });
}
