// One viewer's live input: their WebSocket bridged onto one `hid` stream to the agent. Every text
// message is checked here (HidInputSchema) and only a valid one goes on, as one NDJSON line, so
// the agent never parses a viewer's mistakes; what the agent sends back (HidOutput lines) goes to
// the viewer as text messages. The stream's end is the viewer's end: the agent releases every key
// and button that viewer held, so closing the tab can never leave a key stuck.
//
// A WebSocket cannot be paused, so what the viewer sends while the stream's writer waits for the
// agent's credit is queued here, bounded (a viewer that floods is closed 1013), and mouse moves
// are coalesced in it: a move replaces the move queued just before it (same buttons, no wheel),
// so the pointer goes to the latest position, while keys, clicks and wheel turns keep their order.
import { ResetCode } from '../../shared/codes.ts';
import { StreamResetError, type MuxStream } from '../../shared/protocol/mux.ts';
import { HidInputSchema, type HidInput } from '../../shared/api/kvm.ts';
import { planText } from '../../shared/hid/typing.ts';

/** Lines and bytes a viewer may have queued toward a slow device before it is closed (1013). */
export const INPUT_QUEUE_LIMITS = { lines: 1024, bytes: 1 << 20 } as const;
/** The longest line the agent may send back (its messages are states and type jobs: small). */
const MAX_OUTPUT_LINE = 64 * 1024;
/** What the agent may send a viewer (HidOutput's `t`); other lines are dropped. */
const OUTPUT_KINDS = new Set(['state', 'type', 'error']);
/** WebSocket close codes: try again later (too much queued), and the server's failure. */
const CLOSE_OVERFLOW = 1013;
const CLOSE_FAILED = 1011;

const encoder = new TextEncoder();

type Move = { buttons: number };

/** A pure move (no wheel): the only message that may be coalesced with the one queued before it. */
function moveOf(msg: HidInput): Move | null {
  return msg.t === 'mouse' && msg.wheel === 0 && msg.hwheel === 0 ? { buttons: msg.buttons } : null;
}

/**
 * The lines waiting for the stream's writer, in order. `write` sends one line and resolves when
 * the stream took it (the agent's credit); while it waits, lines queue up and moves coalesce.
 */
export class InputQueue {
  private readonly entries: { line: Uint8Array; move: Move | null }[] = [];
  private bytes = 0;
  private writing = false;
  private stopped = false;

  constructor(
    private readonly write: (line: Uint8Array) => Promise<void>,
    private readonly limits: { lines: number; bytes: number } = INPUT_QUEUE_LIMITS,
  ) {}

  /** Lines queued and not yet handed to the writer. */
  get size(): number {
    return this.entries.length;
  }

  /** Queues a checked message; false when the queue is over its limits (the caller closes the viewer). */
  push(msg: HidInput): boolean {
    if (this.stopped) return true;
    const line = encoder.encode(`${JSON.stringify(msg)}\n`);
    const move = moveOf(msg);
    const last = this.entries[this.entries.length - 1];
    if (move && last?.move && last.move.buttons === move.buttons) {
      this.bytes += line.byteLength - last.line.byteLength;
      last.line = line;
    } else {
      this.entries.push({ line, move });
      this.bytes += line.byteLength;
    }
    if (this.entries.length > this.limits.lines || this.bytes > this.limits.bytes) {
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
        this.bytes -= next.line.byteLength;
        await this.write(next.line);
      }
    } catch {
      this.stop(); // the stream ended: its end is handled where it is read
    } finally {
      this.writing = false;
    }
  }
}

/** Splits the agent's bytes into lines, refusing one longer than MAX_OUTPUT_LINE. */
class LineReader {
  private readonly decoder = new TextDecoder();
  private pending = '';

  push(chunk: Uint8Array): string[] | null {
    const text = this.pending + this.decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    this.pending = lines.pop()!;
    if (this.pending.length > MAX_OUTPUT_LINE || lines.some((l) => l.length > MAX_OUTPUT_LINE)) return null;
    return lines.filter((l) => l.trim() !== '');
  }
}

function send(ws: WebSocket, msg: Record<string, unknown> | string): void {
  try {
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
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

/** Why a viewer's message is refused, or the message (with its defaults) to forward. */
function checkInput(data: string): { ok: true; msg: HidInput } | { ok: false; code: string; message: string; details: Record<string, unknown> } {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { ok: false, code: 'BAD_MESSAGE', message: 'messages are JSON objects, e.g. {"t":"down","code":"KeyA"}', details: {} };
  }
  const parsed = HidInputSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message }));
    return { ok: false, code: 'BAD_MESSAGE', message: `not a live input message: ${issues[0]?.path ? `${issues[0].path}: ` : ''}${issues[0]?.message ?? 'invalid'}`, details: { issues } };
  }
  const msg = parsed.data;
  // A text is checked against its layout before it goes anywhere, as the REST route does.
  if (msg.t === 'type') {
    const plan = planText(msg.text, msg.layout);
    if (!plan.ok) return { ok: false, code: plan.code, message: plan.message, details: { index: plan.index ?? null, char: plan.char ?? null, layout: msg.layout } };
  }
  return { ok: true, msg };
}

/** Accepts the viewer's socket and bridges it onto `stream` (already accepted by the agent). */
export function bridgeInput(stream: MuxStream): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  const writer = stream.writable.getWriter();
  const queue = new InputQueue((line) => writer.write(line));
  let ended = false;
  /** Ends both sides once: the stream (so the agent releases what this viewer held) and the socket. */
  const end = (code: number, reason: string, resetCode: string = ResetCode.CANCELLED) => {
    if (ended) return;
    ended = true;
    queue.stop();
    stream.reset(resetCode, reason);
    safeClose(server, code, reason);
  };

  server.addEventListener('message', (ev) => {
    if (ended) return;
    if (typeof ev.data !== 'string') {
      send(server, { t: 'error', code: 'BAD_MESSAGE', message: 'live input takes JSON text messages, not binary ones' });
      return;
    }
    const checked = checkInput(ev.data);
    if (!checked.ok) {
      send(server, { t: 'error', code: checked.code, message: checked.message, details: checked.details });
      return;
    }
    if (!queue.push(checked.msg)) {
      send(server, { t: 'error', code: 'TOO_MUCH_INPUT', message: 'the device is not keeping up with this viewer\'s input' });
      end(CLOSE_OVERFLOW, 'the device is not keeping up');
    }
  });
  server.addEventListener('close', () => end(1000, 'the viewer closed'));
  server.addEventListener('error', () => end(CLOSE_FAILED, 'the viewer socket failed'));

  void (async () => {
    const lines = new LineReader();
    try {
      for await (const chunk of stream.readable) {
        const got = lines.push(chunk);
        if (!got) {
          send(server, { t: 'error', code: 'BAD_DEVICE_RESPONSE', message: 'the device sent a line that is too long' });
          return end(CLOSE_FAILED, 'the device sent a line that is too long', ResetCode.PROTOCOL_ERROR);
        }
        for (const line of got) if (isOutput(line)) send(server, line);
      }
      // The device ended its side: ours ends too (a reset, since what is queued for it is moot).
      end(1000, 'the device ended live input');
    } catch (e) {
      if (ended) return;
      const err = e instanceof StreamResetError ? e : new StreamResetError(ResetCode.INTERNAL_ERROR, String(e));
      const offline = err.code === ResetCode.SOCKET_CLOSED;
      send(server, { t: 'error', code: offline ? 'DEVICE_OFFLINE' : err.code, message: offline ? 'the device went offline' : err.message.slice(0, 1024) });
      end(CLOSE_FAILED, offline ? 'the device went offline' : 'the device ended live input');
    }
  })();

  return new Response(null, { status: 101, webSocket: client });
}

/** A line the agent may send the viewer: a JSON object whose `t` is a HidOutput kind. */
function isOutput(line: string): boolean {
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) && OUTPUT_KINDS.has((v as { t?: unknown }).t as string);
  } catch {
    return false;
  }
}
