// Stream multiplexing over the one device socket: the wire rules, and StreamMux, the one
// implementation both the DeviceHub and the agent run, so the two ends cannot disagree.
//
// Streams carry tunnel traffic (HTTP requests, WebSockets, TCP connections) as binary frames
// [type u8][streamId u32][payload] (frames.ts). Either side may open a stream: the hub allocates
// even ids (2, 4, …), the agent odd ids (1, 3, …), so ids never collide. Flow control is
// credit-based per stream (like HTTP/2): a sender never has more unacknowledged DATA bytes in
// flight than the window its peer granted (INITIAL_WINDOW at open, then WINDOW frames as the
// receiver's consumer reads; a reader that keeps up on a fast link has its window doubled, up
// to MAX_STREAM_WINDOW), and the whole socket has a cap too, so one bulk transfer can neither
// exhaust memory nor starve a terminal or a small request.
//
// The socket cap is a second window on stream id 0 (as in HTTP/2): the receiver grants DATA bytes
// back as soon as it has *received* them (their memory is already bounded by the stream windows),
// so the cap bounds what sits in the socket and on the network, not what slow readers hold, and a
// few streams nobody reads can never block the others. Apart from OPEN and ACCEPT (JSON, once per
// stream) nothing on the data path is parsed or copied more than once.
import { z } from 'zod';
import { batchEntries, decodeFrame, encodeFrame, FRAME_HEADER_BYTES, FrameFlag, FrameType, isBatch, MAX_STREAM_ID, type Frame } from './frames.ts';

/** Per-stream window each side grants at open. */
export const INITIAL_WINDOW = 256 * 1024;
/**
 * Largest DATA payload; well under the 32 MiB Durable Object message limit. Each WebSocket
 * message costs the hub a fixed price, so bulk transfers go in large frames.
 */
export const MAX_DATA_CHUNK = 256 * 1024;
/**
 * Window auto-tuning: a stream whose reader keeps up, and whose last quarter window came within
 * WINDOW_GROWTH_PERIOD_MS, has its window doubled at the grant, up to MAX_STREAM_WINDOW. A fast
 * link thus gets the window it needs, while on a slow one a window only grows to what arrives in a
 * few such periods, so a small request never waits behind more than that much of a bulk stream.
 */
export const MAX_STREAM_WINDOW = 4 * 1024 * 1024;
export const WINDOW_GROWTH_PERIOD_MS = 10;
/** Default cap on the sum of what all streams' windows grew beyond their initial window. */
export const WINDOW_GROWTH_BUDGET = 16 * 1024 * 1024;
/** At most this many open streams per socket; more OPENs are reset with STREAM_LIMIT. */
export const MAX_STREAMS = 4096;
/** Default socket-wide cap on DATA bytes sent and not yet received by the peer. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** A receiver grants socket credit back (WINDOW on stream 0) once this many DATA bytes arrived. */
export const SOCKET_ACK_BYTES = 128 * 1024;
/** The stream id of socket-wide WINDOW frames; neither side ever allocates it. */
export const SOCKET_STREAM_ID = 0;

/** What a stream's head may carry (OPEN and ACCEPT): more is refused before it is sent. */
export const HEAD_LIMITS = { headers: 256, name: 256, value: 16 * 1024, path: 16 * 1024 } as const;
/** Why a header list exceeds HEAD_LIMITS, or null when it fits. */
export function headerProblem(headers: readonly (readonly [string, string])[]): string | null {
  if (headers.length > HEAD_LIMITS.headers) return `${headers.length} headers (at most ${HEAD_LIMITS.headers})`;
  for (const [name, value] of headers) {
    if (name.length > HEAD_LIMITS.name) return `a header name of ${name.length} characters (at most ${HEAD_LIMITS.name})`;
    if (value.length > HEAD_LIMITS.value) return `the ${name.slice(0, 64)} header is ${value.length} bytes long (at most ${HEAD_LIMITS.value})`;
  }
  return null;
}

/** Methods no tunnel carries: CONNECT would ask a proxy on the device for another host; TRACE and TRACK echo credentials back. */
export const REFUSED_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** A Content-Length value as a number (1 to 15 digits, surrounding whitespace allowed); null for anything else. */
export function parseContentLength(value: string | null | undefined): number | null {
  if (value == null) return null;
  const t = value.trim();
  return /^\d{1,15}$/.test(t) ? Number(t) : null;
}
const Headers = z.array(z.tuple([z.string().max(HEAD_LIMITS.name), z.string().max(HEAD_LIMITS.value)])).max(HEAD_LIMITS.headers);

/** OPEN payload (JSON). `tunnel` is the tunnel id: the agent looks up the target itself. */
export const StreamOpenSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('http'), tunnel: z.string().max(64), method: z.string().max(16), path: z.string().max(HEAD_LIMITS.path), headers: Headers }),
  z.object({ kind: z.literal('websocket'), tunnel: z.string().max(64), path: z.string().max(HEAD_LIMITS.path), headers: Headers, protocols: z.array(z.string().max(256)).max(32) }),
  z.object({ kind: z.literal('tcp'), tunnel: z.string().max(64) }),
]);
export type StreamOpen = z.infer<typeof StreamOpenSchema>;

/** ACCEPT payload (JSON): an HTTP response head, the WebSocket subprotocol chosen, or {} for tcp. */
export const StreamAcceptSchema = z.object({
  status: z.number().int().min(100).max(599).optional(),
  headers: Headers.optional(),
  protocol: z.string().max(256).optional(),
});
export type StreamAccept = z.infer<typeof StreamAcceptSchema>;

/** What `accepted` resolves with: the ACCEPT, plus the whole body when it came inside it (FIN). */
export type Accepted = StreamAccept & { complete?: Uint8Array };

/** Options of an ACCEPT: the first bytes of the body ride in it, and FIN ends this direction. */
export interface AcceptOptions {
  body?: Uint8Array;
  fin?: boolean;
}

/**
 * WebSocket messages ride a websocket-kind stream as records: [kind u8 (0 text, 1 binary,
 * 2 close)][length u32 BE][payload]; a close record's payload is [code u16 BE][reason UTF-8].
 * Records may be split across DATA frames arbitrarily; the receiver reassembles them (ws-records.ts).
 */
export const WsRecordKind = { TEXT: 0, BINARY: 1, CLOSE: 2 } as const;
export type WsRecordKind = (typeof WsRecordKind)[keyof typeof WsRecordKind];

/**
 * Why a stream ended abnormally. On the wire a RESET's payload is "CODE: message"; codes in use:
 * RESET_BY_PEER (no code given), SOCKET_CLOSED, STREAM_LIMIT, PROTOCOL_ERROR, FLOW_CONTROL,
 * TARGET_REFUSED, REFUSED (the side takes no streams), CANCELLED (a reader or writer gave up).
 */
export class StreamResetError extends Error {
  readonly code: string;
  constructor(code: string, message = '') {
    super(message || code);
    this.name = 'StreamResetError';
    this.code = code;
  }
}

/** Sends one binary WebSocket message. */
export interface MuxTransport {
  send(frame: Uint8Array): void;
  /**
   * True when send() copies the bytes before returning (Bun's WebSocket does): the mux then
   * builds DATA frames in one reused buffer instead of allocating one per frame.
   */
  readonly copiesOnSend?: boolean;
}

export interface MuxOptions {
  /** The hub allocates even stream ids, the agent odd ones. */
  side: 'hub' | 'agent';
  /** The peer opened a stream; the handler must call stream.accept(...) or stream.reset(...). */
  onOpen?: (stream: MuxStream, open: StreamOpen) => void;
  /** Malformed or unexpected frames, for logging; receive() itself never throws. */
  onError?: (message: string) => void;
  /** Window this side grants each stream; at least INITIAL_WINDOW (the rest is granted at open). */
  initialWindow?: number;
  maxStreams?: number;
  /** Socket-wide cap on DATA bytes sent and not yet received by the peer: writers wait beyond it. */
  maxBufferedBytes?: number;
  /** How far a fast stream's receive window may grow (auto-tuning); initialWindow turns it off. */
  maxStreamWindow?: number;
  /** Cap on the sum of all window growth, so streams that grew and then stalled bound memory. */
  windowGrowthBudget?: number;
  /** Clock in ms for window auto-tuning (tests pass their own); Date.now by default. */
  now?: () => number;
}

export interface MuxStream {
  readonly id: number;
  /** What the peer sent, for streams the peer opened; null for streams this side opened. */
  readonly open: StreamOpen | null;
  /**
   * Bytes from the peer; closes at the peer's CLOSE, errors with StreamResetError on RESET.
   * Cancelling it resets the stream unless the peer already closed. Async-iterable on every
   * runtime this runs on (the DOM and WebWorker libs just do not declare it).
   */
  readonly readable: ReadableStream<Uint8Array> & AsyncIterable<Uint8Array>;
  /** Bytes to the peer; a write resolves once it fits the peer's window. close() half-closes, abort() resets. */
  readonly writable: WritableStream<Uint8Array>;
  /** The peer's ACCEPT (or, for streams the peer opened, what accept() sent); rejects with StreamResetError. */
  readonly accepted: Promise<Accepted>;
  /**
   * Answers OPEN. `body` (≤ MAX_DATA_CHUNK) travels in the same frame and `fin` ends this
   * direction there, so a small complete response is one frame; the writable is then done.
   */
  accept(info: StreamAccept, options?: AcceptOptions): void;
  reset(code: string, message?: string): void;
  /** Both directions are done (closed or reset) and the id is free again; never rejects. */
  readonly closed: Promise<void>;
  /** The peer will send nothing more: its CLOSE (or a FIN) came, or the stream was reset. */
  readonly peerFinished: boolean;
  /**
   * Calls `listener` once when the stream is reset, by either side or with its socket (at once if
   * it already was); never for a clean end. Cheaper than watching the web streams for errors.
   */
  onReset(listener: (error: StreamResetError) => void): void;
}

const MAX_CREDIT = 0x7fffffff;
const MAX_RESET_MESSAGE = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const FRAME_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));

function u32(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function resetPayload(code: string, message: string): Uint8Array {
  code = code.slice(0, 64);
  const text = message && message !== code ? `${code}: ${message.slice(0, MAX_RESET_MESSAGE)}` : code;
  return encoder.encode(text);
}

function parseReset(payload: Uint8Array): StreamResetError {
  const text = decoder.decode(payload);
  const m = /^([A-Za-z][A-Za-z0-9_.-]{0,63})(?:: ([\s\S]*))?$/.exec(text);
  if (!m) return new StreamResetError('RESET_BY_PEER', text);
  return new StreamResetError(m[1]!, m[2] ?? '');
}

/**
 * A JSON payload checked against its schema. `quick`, when given, vets the common well-formed
 * case by hand under the very rules of the schema (a zod parse cost the agent about 60 µs per
 * OPEN under Bun); whatever it does not accept goes to zod, which decides. quick-parse.test.ts
 * holds each quick check to its schema on valid and mangled payloads alike.
 */
function parseJson<T extends z.ZodType>(schema: T, payload: Uint8Array, quick?: (value: unknown) => z.infer<T> | undefined): z.infer<T> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(payload));
    const fast = quick?.(value);
    if (fast !== undefined) return fast;
    const parsed = schema.safeParse(value);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

function isHeaderList(v: unknown): v is [string, string][] {
  if (!Array.isArray(v) || v.length > HEAD_LIMITS.headers) return false;
  for (const h of v) if (!Array.isArray(h) || h.length !== 2 || !isText(h[0], HEAD_LIMITS.name) || !isText(h[1], HEAD_LIMITS.value)) return false;
  return true;
}

/** An http or tcp OPEN that StreamOpenSchema accepts, as it would return it; undefined for anything else (zod decides). */
export function quickStreamOpen(v: unknown): StreamOpen | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!isText(o.tunnel, 64)) return undefined;
  if (o.kind === 'http' && isText(o.method, 16) && isText(o.path, HEAD_LIMITS.path) && isHeaderList(o.headers)) {
    return { kind: 'http', tunnel: o.tunnel, method: o.method, path: o.path, headers: o.headers };
  }
  if (o.kind === 'tcp') return { kind: 'tcp', tunnel: o.tunnel };
  return undefined;
}

/** An ACCEPT that StreamAcceptSchema accepts, as it would return it; undefined for anything else (zod decides). */
export function quickStreamAccept(v: unknown): StreamAccept | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const out: StreamAccept = {};
  if (o.status !== undefined) {
    if (typeof o.status !== 'number' || !Number.isInteger(o.status) || o.status < 100 || o.status > 599) return undefined;
    out.status = o.status;
  }
  if (o.headers !== undefined) {
    if (!isHeaderList(o.headers)) return undefined;
    out.headers = o.headers;
  }
  if (o.protocol !== undefined) {
    if (!isText(o.protocol, 256)) return undefined;
    out.protocol = o.protocol;
  }
  return out;
}

function readU32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What the mux and its streams share: the socket, its credit, and the table of live streams. */
class Link {
  readonly streams = new Map<number, Stream>();
  /** DATA bytes this side may still send before the peer confirms it received earlier ones. */
  socketCredit: number;
  private socketWaiters: (() => void)[] = [];
  private scratch: Uint8Array | undefined;

  constructor(
    private readonly transport: MuxTransport,
    private readonly onError: ((message: string) => void) | undefined,
    readonly window: number,
    readonly maxBuffered: number,
    readonly maxWindow: number,
    /** Window growth still available to streams whose readers keep up. */
    public growthBudget: number,
    readonly now: () => number,
  ) {
    this.socketCredit = maxBuffered;
  }

  send(frame: Uint8Array): void {
    try {
      this.transport.send(frame);
    } catch (e) {
      this.report(`transport send failed: ${describe(e)}`);
    }
  }

  /** DATA is built here rather than with encodeFrame: it is the one copy on the data path. */
  sendData(id: number, chunk: Uint8Array, offset: number, length: number): void {
    const frame = this.transport.copiesOnSend
      ? (this.scratch ??= new Uint8Array(FRAME_HEADER_BYTES + MAX_DATA_CHUNK)).subarray(0, FRAME_HEADER_BYTES + length)
      : new Uint8Array(FRAME_HEADER_BYTES + length);
    frame[0] = FrameType.DATA;
    frame[1] = id >>> 24;
    frame[2] = (id >>> 16) & 255;
    frame[3] = (id >>> 8) & 255;
    frame[4] = id & 255;
    frame.set(offset === 0 && length === chunk.byteLength ? chunk : chunk.subarray(offset, offset + length), FRAME_HEADER_BYTES);
    this.send(frame);
  }

  sendReset(id: number, code: string, message: string): void {
    this.send(encodeFrame(FrameType.RESET, id, resetPayload(code, message)));
  }

  report(message: string): void {
    try {
      this.onError?.(message);
    } catch {
      // A logger that throws must not break the socket.
    }
  }

  /** Waiters are woken in arrival order, so streams short of socket credit take turns. */
  waitForSocketCredit(wake: () => void): void {
    this.socketWaiters.push(wake);
  }

  grantSocketCredit(n: number): void {
    this.socketCredit += n;
    if (this.socketCredit > this.maxBuffered) {
      this.report(`peer acknowledged ${this.socketCredit - this.maxBuffered} bytes more than were sent`);
      this.socketCredit = this.maxBuffered;
    }
    this.wakeSocketWaiters();
  }

  /** A new socket starts with nothing in flight. */
  restoreSocketCredit(): void {
    this.socketCredit = this.maxBuffered;
    this.wakeSocketWaiters();
  }

  private wakeSocketWaiters(): void {
    const waiters = this.socketWaiters;
    this.socketWaiters = [];
    for (const wake of waiters) wake();
  }
}

export class StreamMux {
  private readonly link: Link;
  private readonly onOpen: MuxOptions['onOpen'];
  private readonly maxStreams: number;
  private readonly firstId: number;
  private nextId: number;
  private idsWrapped = false;
  private highestPeerId = 0;
  private socketUnacked = 0;

  constructor(transport: MuxTransport, options: MuxOptions) {
    const window = options.initialWindow ?? INITIAL_WINDOW;
    const maxBuffered = options.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
    this.maxStreams = options.maxStreams ?? MAX_STREAMS;
    // The peer assumes INITIAL_WINDOW, so a smaller window could not be enforced without resets.
    if (!(window >= INITIAL_WINDOW && window <= MAX_CREDIT)) throw new RangeError(`initialWindow must be ${INITIAL_WINDOW}..${MAX_CREDIT}`);
    if (!(this.maxStreams >= 1)) throw new RangeError('maxStreams must be at least 1');
    // Below two receiver ack batches the sender would stall waiting for acks that come late or never.
    if (!(maxBuffered >= 2 * SOCKET_ACK_BYTES)) throw new RangeError(`maxBufferedBytes must be at least ${2 * SOCKET_ACK_BYTES}`);
    const maxWindow = Math.max(window, options.maxStreamWindow ?? MAX_STREAM_WINDOW);
    if (!(maxWindow <= MAX_CREDIT)) throw new RangeError(`maxStreamWindow must be at most ${MAX_CREDIT}`);
    this.link = new Link(transport, options.onError, window, maxBuffered, maxWindow, options.windowGrowthBudget ?? WINDOW_GROWTH_BUDGET, options.now ?? Date.now);
    this.onOpen = options.onOpen;
    this.firstId = options.side === 'hub' ? 2 : 1;
    this.nextId = this.firstId;
  }

  /** Open streams (either side opened them). */
  get size(): number {
    return this.link.streams.size;
  }

  /**
   * Sends OPEN; throws StreamResetError('STREAM_LIMIT') when this side already has maxStreams open.
   * With `fin` this side sends no data at all (e.g. a GET): no CLOSE frame follows.
   */
  open(open: StreamOpen, options: { fin?: boolean } = {}): MuxStream {
    const { streams } = this.link;
    if (streams.size >= this.maxStreams) throw new StreamResetError('STREAM_LIMIT', `at most ${this.maxStreams} streams per socket`);
    // Our own callers build this from typed values; the receiving side validates it with zod.
    const valid = open;
    const id = this.allocateId();
    const frame = encodeFrame(FrameType.OPEN, id, encoder.encode(JSON.stringify(valid)), options.fin ? FrameFlag.FIN : 0);
    const stream = new Stream(this.link, id, null, true);
    streams.set(id, stream);
    this.link.send(frame);
    if (options.fin) stream.finishedWriting();
    this.grantExtraWindow(id);
    return stream;
  }

  /** Feeds one binary message from the socket; never throws. The mux keeps views of it: pass a buffer nobody reuses. */
  receive(data: ArrayBuffer | Uint8Array): void {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (!isBatch(bytes)) return this.receiveFrame(bytes);
    try {
      for (const frame of batchEntries(bytes)) this.receiveFrame(frame);
    } catch (e) {
      // The rest of the message cannot be framed; the frames before the fault were handled.
      this.link.report(`malformed batch: ${describe(e)}`);
    }
  }

  private receiveFrame(data: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(data);
    } catch (e) {
      const stream = data.byteLength >= FRAME_HEADER_BYTES ? this.link.streams.get(readU32(data.subarray(1))) : undefined;
      if (stream) stream.protocolError(`malformed frame: ${describe(e)}`);
      else this.link.report(`malformed frame: ${describe(e)}`);
      return;
    }
    try {
      this.dispatch(frame);
    } catch (e) {
      this.link.report(`failed to handle ${FRAME_NAMES[frame.type]} on stream ${frame.streamId}: ${describe(e)}`);
    }
  }

  /** The socket is gone: every stream errors with StreamResetError(code), nothing is sent. The mux stays usable for a new socket. */
  resetAll(code: string, message: string): void {
    const error = new StreamResetError(code, message);
    for (const stream of [...this.link.streams.values()]) stream.fail(error);
    this.link.streams.clear();
    this.highestPeerId = 0;
    this.socketUnacked = 0;
    this.link.restoreSocketCredit();
  }

  private grantExtraWindow(id: number): void {
    const extra = this.link.window - INITIAL_WINDOW;
    if (extra > 0) this.link.send(encodeFrame(FrameType.WINDOW, id, u32(extra)));
  }

  private allocateId(): number {
    // open() checked the stream limit, so a free id turns up long before this could loop forever.
    for (;;) {
      const id = this.nextId;
      this.nextId += 2;
      if (this.nextId > MAX_STREAM_ID) {
        this.nextId = this.firstId;
        this.idsWrapped = true;
      }
      if (!this.link.streams.has(id)) return id;
    }
  }

  private isPeerId(id: number): boolean {
    return id % 2 !== this.firstId % 2;
  }

  /** Whether an id not in the table was ever in use, so a late frame for it is a normal race. */
  private wasUsed(id: number): boolean {
    return this.isPeerId(id) ? id <= this.highestPeerId : this.idsWrapped || id < this.nextId;
  }

  private dispatch({ type, flags, streamId: id, payload }: Frame): void {
    if (id === SOCKET_STREAM_ID) return this.onSocketFrame(type, payload);
    if (type === FrameType.DATA) this.ackReceived(payload.byteLength);
    const stream = this.link.streams.get(id);
    if (type === FrameType.OPEN) return this.onPeerOpen(id, payload, stream, (flags & FrameFlag.FIN) !== 0);
    if (!stream) {
      // DATA, WINDOW, CLOSE, ACCEPT or RESET racing a reset that freed the id is normal.
      if (!this.wasUsed(id)) this.link.report(`${FRAME_NAMES[type]} for stream ${id}, which was never opened`);
      return;
    }
    switch (type) {
      case FrameType.DATA:
        stream.onData(payload);
        if (flags & FrameFlag.FIN && this.link.streams.get(id) === stream) stream.onClose();
        return;
      case FrameType.WINDOW:
        if (payload.byteLength !== 4) return stream.protocolError(`WINDOW payload of ${payload.byteLength} bytes`);
        return stream.onWindow(readU32(payload));
      case FrameType.CLOSE:
        return stream.onClose();
      case FrameType.RESET:
        return stream.fail(parseReset(payload));
      case FrameType.ACCEPT:
        return stream.onAccept(payload, flags, (n) => this.ackReceived(n));
    }
  }

  private onSocketFrame(type: FrameType, payload: Uint8Array): void {
    if (type !== FrameType.WINDOW || payload.byteLength !== 4) {
      this.link.report(`unexpected ${FRAME_NAMES[type]} of ${payload.byteLength} bytes on stream 0`);
      return;
    }
    this.link.grantSocketCredit(readU32(payload));
  }

  /** Socket credit goes back on receipt: the stream windows already bound what receivers hold. */
  private ackReceived(bytes: number): void {
    this.socketUnacked += bytes;
    if (this.socketUnacked >= SOCKET_ACK_BYTES) {
      this.link.send(encodeFrame(FrameType.WINDOW, SOCKET_STREAM_ID, u32(this.socketUnacked)));
      this.socketUnacked = 0;
    }
  }

  private onPeerOpen(id: number, payload: Uint8Array, existing: Stream | undefined, fin: boolean): void {
    const link = this.link;
    if (existing) return existing.protocolError('OPEN for an id already in use');
    if (!this.isPeerId(id)) {
      link.report(`OPEN with stream id ${id}, which belongs to this side`);
      return link.sendReset(id, 'PROTOCOL_ERROR', 'stream id of the wrong parity');
    }
    if (id > this.highestPeerId) this.highestPeerId = id;
    const open = parseJson(StreamOpenSchema, payload, quickStreamOpen);
    if (!open) {
      link.report(`OPEN for stream ${id} is not a valid StreamOpen`);
      return link.sendReset(id, 'PROTOCOL_ERROR', 'OPEN payload is not a valid StreamOpen');
    }
    if (link.streams.size >= this.maxStreams) return link.sendReset(id, 'STREAM_LIMIT', `at most ${this.maxStreams} streams per socket`);
    if (!this.onOpen) return link.sendReset(id, 'REFUSED', 'this side accepts no streams');
    const stream = new Stream(link, id, open, false);
    link.streams.set(id, stream);
    if (fin) stream.onClose();
    this.grantExtraWindow(id);
    try {
      this.onOpen(stream, open);
    } catch (e) {
      link.report(`onOpen for stream ${id} threw: ${describe(e)}`);
      stream.reset('INTERNAL_ERROR', 'the stream handler failed');
    }
  }
}

/** One stream's state. Its two directions end independently; the id is freed when both have. */
class Stream implements MuxStream {
  readonly id: number;
  readonly open: StreamOpen | null;
  readonly accepted: Promise<Accepted>;
  readonly closed: Promise<void>;

  // The web streams are made on first use: a small request answered in one ACCEPT never needs
  // them, and making them is a measurable part of a tunnel request's cost.
  private _readable?: ReadableStream<Uint8Array> & AsyncIterable<Uint8Array>;
  private _writable?: WritableStream<Uint8Array>;
  private readonly link: Link;
  private readonly local: boolean;
  private rc?: ReadableStreamDefaultController<Uint8Array>;
  private wc?: WritableStreamDefaultController;
  private resolveAccepted!: (info: Accepted) => void;
  private rejectAccepted!: (e: StreamResetError) => void;
  private resolveClosed!: () => void;
  private acceptState: 'pending' | 'accepted' | 'failed' = 'pending';

  // Receiving: chunks not yet handed to a reader (at most one window), and credit bookkeeping.
  private queue: (Uint8Array | undefined)[] = [];
  private queueHead = 0;
  private readerWaiting = false;
  private readDone = false;
  private remoteClosed = false;
  private recvCredit: number;
  private consumed = 0;
  /** This stream's receive window: link.window, grown while the reader keeps up. */
  private window: number;
  /** When this stream last granted credit (or opened), for window auto-tuning. */
  private grantedAt: number;

  // Sending.
  private sendCredit = INITIAL_WINDOW;
  private creditWaiter: (() => void) | null = null;
  private localClosed = false;
  private error: StreamResetError | null = null;
  private freed = false;
  private resetListeners: ((error: StreamResetError) => void)[] | null = null;

  constructor(link: Link, id: number, open: StreamOpen | null, local: boolean) {
    this.link = link;
    this.id = id;
    this.open = open;
    this.local = local;
    this.recvCredit = link.window;
    this.window = link.window;
    this.grantedAt = link.now();
    this.accepted = new Promise<Accepted>((resolve, reject) => {
      this.resolveAccepted = resolve;
      this.rejectAccepted = reject;
    });
    this.accepted.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  get peerFinished(): boolean {
    return this.remoteClosed || this.error !== null;
  }

  onReset(listener: (error: StreamResetError) => void): void {
    const error = this.error;
    if (error) queueMicrotask(() => listener(error));
    else (this.resetListeners ??= []).push(listener);
  }

  get readable(): ReadableStream<Uint8Array> & AsyncIterable<Uint8Array> {
    // highWaterMark 0: pull() runs only when a reader asks, so "handed to a reader" is what
    // consumed means, and the WINDOW we send tracks the consumer, not our own buffering.
    return (this._readable ??= new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.rc = c;
          if (this.error) c.error(this.error);
        },
        pull: () => this.pull(),
        cancel: () => this.onCancel(),
      },
      { highWaterMark: 0 },
    ) as ReadableStream<Uint8Array> & AsyncIterable<Uint8Array>);
  }

  get writable(): WritableStream<Uint8Array> {
    return (this._writable ??= new WritableStream<Uint8Array>(
      {
        start: (c) => {
          this.wc = c;
          if (this.localClosed) c.error(this.error ?? new StreamResetError('CLOSED', 'this direction of the stream already ended'));
        },
        write: (chunk) => this.write(chunk),
        close: () => this.closeWrite(),
        abort: (reason) => this.abortWrite(reason),
      },
      { highWaterMark: 1 },
    ));
  }

  accept(info: StreamAccept, options: AcceptOptions = {}): void {
    if (this.local) throw new Error('accept() answers a stream the peer opened');
    if (this.acceptState === 'accepted') throw new Error(`stream ${this.id} was already accepted`);
    if (this.acceptState === 'failed' || this.freed) return; // the peer reset it first: a normal race
    const valid = info;
    const json = encoder.encode(JSON.stringify(valid));
    let body = options.body && options.body.byteLength > 0 ? options.body : undefined;
    if (body && body.byteLength > MAX_DATA_CHUNK) throw new RangeError(`an ACCEPT carries at most ${MAX_DATA_CHUNK} body bytes`);
    const link = this.link;
    // The inline body is DATA for flow control; without the credit it goes out as DATA later.
    const inline = body !== undefined && body.byteLength <= this.sendCredit && body.byteLength <= link.socketCredit;
    let flags = 0;
    let payload = json;
    if (inline && body) {
      payload = new Uint8Array(4 + json.byteLength + body.byteLength);
      payload.set(u32(json.byteLength), 0);
      payload.set(json, 4);
      payload.set(body, 4 + json.byteLength);
      flags |= FrameFlag.BODY;
      this.sendCredit -= body.byteLength;
      link.socketCredit -= body.byteLength;
      body = undefined;
    }
    if (options.fin && !body) flags |= FrameFlag.FIN;
    link.send(encodeFrame(FrameType.ACCEPT, this.id, payload, flags));
    this.acceptState = 'accepted';
    this.resolveAccepted(valid);
    if (flags & FrameFlag.FIN) this.finishedWriting();
    else if (body) {
      const writer = this.writable.getWriter();
      void writer.write(body).then(() => (options.fin ? writer.close() : writer.releaseLock())).catch(() => {});
    }
  }

  /** This side will send nothing more (OPEN or ACCEPT carried FIN): as if the writable closed. */
  finishedWriting(): void {
    if (this.localClosed) return;
    this.localClosed = true;
    this.wc?.error(new StreamResetError('CLOSED', 'this direction of the stream already ended'));
    if (this.remoteClosed) this.free();
  }

  reset(code: string, message = ''): void {
    if (this.freed) return;
    this.link.sendReset(this.id, code, message);
    this.fail(new StreamResetError(code, message));
  }

  // --- frames from the peer ---

  onData(payload: Uint8Array): void {
    if (this.remoteClosed) return this.protocolError('DATA after CLOSE');
    const n = payload.byteLength;
    if (n > this.recvCredit) {
      this.link.report(`stream ${this.id}: peer sent ${n} bytes with ${this.recvCredit} of credit`);
      return this.reset('FLOW_CONTROL', 'DATA beyond the granted window');
    }
    this.recvCredit -= n;
    if (n === 0 || this.readDone) return;
    if (this.readerWaiting) {
      this.readerWaiting = false;
      this.rc!.enqueue(payload);
      this.consume(n);
    } else {
      this.queue.push(payload);
    }
  }

  onWindow(n: number): void {
    if (n === 0) return this.protocolError('WINDOW of 0 bytes');
    if (this.localClosed) return; // nothing more to send: a grant racing our CLOSE
    this.sendCredit += n;
    if (this.sendCredit > MAX_CREDIT) return this.reset('FLOW_CONTROL', 'window larger than 2^31-1');
    this.wakeWriter();
  }

  onClose(): void {
    if (this.remoteClosed) return this.protocolError('second CLOSE');
    this.remoteClosed = true;
    if (this.readerWaiting) {
      this.readerWaiting = false;
      this.finishRead();
    }
    if (this.localClosed) this.free();
  }

  onAccept(payload: Uint8Array, flags: number, ackReceived: (n: number) => void): void {
    if (!this.local) return this.protocolError('ACCEPT for a stream this side did not open');
    if (this.acceptState !== 'pending') return this.protocolError('second ACCEPT');
    let json = payload;
    let body: Uint8Array | null = null;
    if (flags & FrameFlag.BODY) {
      if (payload.byteLength < 4) return this.protocolError('ACCEPT with a body but no length');
      const n = readU32(payload);
      if (4 + n > payload.byteLength) return this.protocolError('ACCEPT body length past the frame');
      json = payload.subarray(4, 4 + n);
      body = payload.subarray(4 + n);
      ackReceived(body.byteLength);
    }
    const info = parseJson(StreamAcceptSchema, json, quickStreamAccept);
    if (!info) return this.protocolError('ACCEPT payload is not a valid StreamAccept');
    this.acceptState = 'accepted';
    if (body && body.byteLength) this.onData(body);
    const fin = (flags & FrameFlag.FIN) !== 0;
    if (fin && this.streamAlive()) this.onClose();
    this.resolveAccepted(fin ? { ...info, complete: body ?? new Uint8Array(0) } : info);
  }

  private streamAlive(): boolean {
    return !this.freed;
  }

  protocolError(message: string): void {
    this.link.report(`stream ${this.id}: ${message}`);
    this.reset('PROTOCOL_ERROR', message);
  }

  /** Ends both directions with `error` and frees the id; sends nothing (reset() sends first). */
  fail(error: StreamResetError): void {
    if (this.freed) return;
    this.error = error;
    if (!this.readDone) {
      this.readDone = true;
      this.queue = [];
      this.queueHead = 0;
      this.rc?.error(error);
    }
    if (!this.localClosed) {
      this.localClosed = true;
      this.wc?.error(error);
    }
    this.wakeWriter();
    this.free();
    const listeners = this.resetListeners;
    this.resetListeners = null;
    for (const listener of listeners ?? []) {
      try {
        listener(error);
      } catch (e) {
        this.link.report(`stream ${this.id}: a reset listener threw: ${describe(e)}`);
      }
    }
  }

  // --- the readable side ---

  private pull(): void {
    if (this.queueHead < this.queue.length) {
      const chunk = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined;
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
      }
      this.rc!.enqueue(chunk);
      this.consume(chunk.byteLength);
    } else if (this.remoteClosed) {
      this.finishRead();
    } else {
      this.readerWaiting = true;
    }
  }

  private finishRead(): void {
    if (this.readDone) return;
    this.readDone = true;
    this.rc!.close();
  }

  /**
   * Bytes reached the consumer: grant them back in batches, so a slow reader stops the sender.
   * A reader that has taken everything queued, on a link that brought the last quarter window
   * quickly, is limited by the window: it doubles (within the mux's growth budget). Slow readers
   * and slow links never grow.
   */
  private consume(n: number): void {
    if (this.remoteClosed || this.freed) return;
    this.consumed += n;
    if (this.consumed < this.window >>> 2) return;
    const link = this.link;
    const now = link.now();
    const quick = now - this.grantedAt <= WINDOW_GROWTH_PERIOD_MS;
    this.grantedAt = now;
    let grant = this.consumed;
    if (quick && this.queueHead === this.queue.length && this.window < link.maxWindow && link.growthBudget >= this.window) {
      link.growthBudget -= this.window;
      grant += this.window;
      this.window *= 2;
    }
    link.send(encodeFrame(FrameType.WINDOW, this.id, u32(grant)));
    this.recvCredit += grant;
    this.consumed = 0;
  }

  private onCancel(): void {
    this.readDone = true;
    this.queue = [];
    this.queueHead = 0;
    // After the peer's CLOSE nothing more is coming, so giving up reading needs no RESET.
    if (!this.remoteClosed) this.reset('CANCELLED', 'the reader cancelled');
  }

  // --- the writable side ---

  private async write(input: Uint8Array): Promise<void> {
    // Callers outside TypeScript's reach (pipeTo from a stream of mixed views) may hand us other bytes.
    const raw = input as unknown;
    let chunk: Uint8Array;
    if (raw instanceof Uint8Array) chunk = raw;
    else if (raw instanceof ArrayBuffer) chunk = new Uint8Array(raw);
    else if (ArrayBuffer.isView(raw)) chunk = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    else throw new TypeError('a stream carries bytes: write Uint8Array chunks');
    const link = this.link;
    const length = chunk.byteLength;
    let offset = 0;
    if (this.localClosed && !this.error) throw new StreamResetError('CLOSED', 'this direction of the stream already ended');
    while (offset < length) {
      if (this.error) throw this.error;
      if (this.sendCredit <= 0) {
        await new Promise<void>((resolve) => (this.creditWaiter = resolve));
        continue;
      }
      if (link.socketCredit <= 0) {
        // Woken by socket credit or by a reset (wakeWriter); a stale wake-up only re-checks.
        await new Promise<void>((resolve) => {
          this.creditWaiter = resolve;
          link.waitForSocketCredit(() => this.wakeWriter());
        });
        continue;
      }
      const n = Math.min(length - offset, MAX_DATA_CHUNK, this.sendCredit, link.socketCredit);
      this.sendCredit -= n;
      link.socketCredit -= n;
      link.sendData(this.id, chunk, offset, n);
      offset += n;
    }
  }

  private closeWrite(): void {
    if (this.error) throw this.error;
    if (this.localClosed) return;
    this.localClosed = true;
    this.link.send(encodeFrame(FrameType.CLOSE, this.id));
    if (this.remoteClosed) this.free();
  }

  private abortWrite(reason: unknown): void {
    if (reason instanceof StreamResetError) this.reset(reason.code, reason.message);
    else this.reset('CANCELLED', reason === undefined ? 'the writer aborted' : describe(reason));
  }

  private wakeWriter(): void {
    const wake = this.creditWaiter;
    this.creditWaiter = null;
    wake?.();
  }

  private free(): void {
    if (this.freed) return;
    this.freed = true;
    this.link.streams.delete(this.id);
    this.link.growthBudget += this.window - this.link.window;
    if (this.acceptState === 'pending') {
      this.acceptState = 'failed';
      this.rejectAccepted(this.error ?? new StreamResetError('CLOSED', 'the stream closed without ACCEPT'));
    }
    this.resolveClosed();
    if (!this.error) this.resetListeners = null; // a clean end: nobody is told anything
  }
}
