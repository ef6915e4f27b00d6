// StreamMux: stream multiplexing over the one device socket, the one implementation both the
// DeviceHub and the agent run, so the two ends cannot disagree.
//
// Streams carry a capability's traffic (tunnels: HTTP requests, WebSockets, TCP connections) as
// binary frames [type u8][streamId u32][payload] (frames.ts). Either side may open a stream: the
// hub allocates even ids (2, 4, …), the agent odd ids (1, 3, …), so ids never collide. Flow control
// is credit-based per stream and per socket (flow.ts), so one bulk transfer can neither exhaust
// memory nor starve a terminal or a small request. Apart from OPEN and ACCEPT (JSON, once per
// stream, heads.ts) nothing on the data path is parsed or copied more than once.
import { batchEntries, decodeFrame, encodeFrame, FRAME_HEADER_BYTES, FrameFlag, FrameType, isBatch, MAX_STREAM_ID, type Frame } from './frames.ts';
import { INITIAL_WINDOW, MAX_BUFFERED_BYTES, MAX_CREDIT, MAX_DATA_CHUNK, MAX_STREAM_WINDOW, MAX_STREAMS, ReceiveWindow, SOCKET_ACK_BYTES, SOCKET_STREAM_ID, SocketCredit, WINDOW_GROWTH_BUDGET, type WindowPool } from './flow.ts';
import { parseJson, quickStreamAccept, quickStreamOpen, StreamAcceptSchema, type AcceptOptions, type Accepted, type StreamAccept } from './heads.ts';
import { StreamOpenSchema, type StreamOpen } from './messages.ts';
import { ResetCode } from '../codes.ts';

/**
 * Why a stream ended abnormally. On the wire a RESET's payload is "CODE: message"; the codes the
 * hub and the agent send are ResetCode (shared/codes.ts), but a peer may send any.
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
  if (!m) return new StreamResetError(ResetCode.RESET_BY_PEER, text);
  return new StreamResetError(m[1]!, m[2] ?? '');
}

function readU32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What the mux and its streams share: the socket, its credit (flow.ts), and the table of live streams. */
class Link extends SocketCredit implements WindowPool {
  readonly streams = new Map<number, Stream>();
  private scratch: Uint8Array | undefined;

  constructor(
    private readonly transport: MuxTransport,
    private readonly onError: ((message: string) => void) | undefined,
    readonly window: number,
    maxBuffered: number,
    readonly maxWindow: number,
    /** Window growth still available to streams whose readers keep up. */
    public growthBudget: number,
    readonly now: () => number,
  ) {
    super(maxBuffered);
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

  override report(message: string): void {
    try {
      this.onError?.(message);
    } catch {
      // A logger that throws must not break the socket.
    }
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
   * Sends OPEN; throws StreamResetError(ResetCode.STREAM_LIMIT) when this side already has maxStreams open.
   * With `fin` this side sends no data at all (e.g. a GET): no CLOSE frame follows.
   */
  open(open: StreamOpen, options: { fin?: boolean } = {}): MuxStream {
    const { streams } = this.link;
    if (streams.size >= this.maxStreams) throw new StreamResetError(ResetCode.STREAM_LIMIT, `at most ${this.maxStreams} streams per socket`);
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
    const grant = this.link.socketAckFor(bytes);
    if (grant) this.link.send(encodeFrame(FrameType.WINDOW, SOCKET_STREAM_ID, u32(grant)));
  }

  private onPeerOpen(id: number, payload: Uint8Array, existing: Stream | undefined, fin: boolean): void {
    const link = this.link;
    if (existing) return existing.protocolError('OPEN for an id already in use');
    if (!this.isPeerId(id)) {
      link.report(`OPEN with stream id ${id}, which belongs to this side`);
      return link.sendReset(id, ResetCode.PROTOCOL_ERROR, 'stream id of the wrong parity');
    }
    if (id > this.highestPeerId) this.highestPeerId = id;
    const open = parseJson(StreamOpenSchema, payload, quickStreamOpen);
    if (!open) {
      link.report(`OPEN for stream ${id} is not a valid StreamOpen`);
      return link.sendReset(id, ResetCode.PROTOCOL_ERROR, 'OPEN payload is not a valid StreamOpen');
    }
    if (link.streams.size >= this.maxStreams) return link.sendReset(id, ResetCode.STREAM_LIMIT, `at most ${this.maxStreams} streams per socket`);
    if (!this.onOpen) return link.sendReset(id, ResetCode.REFUSED, 'this side accepts no streams');
    const stream = new Stream(link, id, open, false);
    link.streams.set(id, stream);
    if (fin) stream.onClose();
    this.grantExtraWindow(id);
    try {
      this.onOpen(stream, open);
    } catch (e) {
      link.report(`onOpen for stream ${id} threw: ${describe(e)}`);
      stream.reset(ResetCode.INTERNAL_ERROR, 'the stream handler failed');
    }
  }
}

/** One stream's state. Its two directions end independently; the id is freed when both have. */
class Stream extends ReceiveWindow implements MuxStream {
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

  // Receiving: chunks not yet handed to a reader (at most one window); the credit is ReceiveWindow's.
  private queue: (Uint8Array | undefined)[] = [];
  private queueHead = 0;
  private readerWaiting = false;
  private readDone = false;
  private remoteClosed = false;

  // Sending.
  private sendCredit = INITIAL_WINDOW;
  private creditWaiter: (() => void) | null = null;
  private localClosed = false;
  private error: StreamResetError | null = null;
  private freed = false;
  private resetListeners: ((error: StreamResetError) => void)[] | null = null;

  constructor(link: Link, id: number, open: StreamOpen | null, local: boolean) {
    super(link);
    this.link = link;
    this.id = id;
    this.open = open;
    this.local = local;
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
          if (this.localClosed) c.error(this.error ?? new StreamResetError(ResetCode.CLOSED, 'this direction of the stream already ended'));
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
    this.wc?.error(new StreamResetError(ResetCode.CLOSED, 'this direction of the stream already ended'));
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
      return this.reset(ResetCode.FLOW_CONTROL, 'DATA beyond the granted window');
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
    if (this.sendCredit > MAX_CREDIT) return this.reset(ResetCode.FLOW_CONTROL, 'window larger than 2^31-1');
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
    this.reset(ResetCode.PROTOCOL_ERROR, message);
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

  /** Bytes reached the consumer: grant them back (flow.ts decides when, and whether the window grows). */
  private consume(n: number): void {
    if (this.remoteClosed || this.freed) return;
    const grant = this.grantFor(n, this.queueHead === this.queue.length, this.link);
    if (grant) this.link.send(encodeFrame(FrameType.WINDOW, this.id, u32(grant)));
  }

  private onCancel(): void {
    this.readDone = true;
    this.queue = [];
    this.queueHead = 0;
    // After the peer's CLOSE nothing more is coming, so giving up reading needs no RESET.
    if (!this.remoteClosed) this.reset(ResetCode.CANCELLED, 'the reader cancelled');
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
    if (this.localClosed && !this.error) throw new StreamResetError(ResetCode.CLOSED, 'this direction of the stream already ended');
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
    else this.reset(ResetCode.CANCELLED, reason === undefined ? 'the writer aborted' : describe(reason));
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
    this.releaseGrowth(this.link);
    if (this.acceptState === 'pending') {
      this.acceptState = 'failed';
      this.rejectAccepted(this.error ?? new StreamResetError(ResetCode.CLOSED, 'the stream closed without ACCEPT'));
    }
    this.resolveClosed();
    if (!this.error) this.resetListeners = null; // a clean end: nobody is told anything
  }
}
