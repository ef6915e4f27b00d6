// A small HTTP/1.1 client for tunnel targets, over Bun's TCP sockets, with keep-alive connections
// kept per target. It replaces fetch on the agent's hot path: fetch cost about 110 µs of CPU per
// request here (a raw socket exchange about 10), and a tunnel request is mostly that exchange.
//
// It does what a forwarding proxy needs and no more: one request per connection at a time (no
// pipelining), the request body streamed with Content-Length or chunked, the response head parsed
// strictly (RFC 9112), its body framed by Content-Length, chunked coding or the connection's end
// and handed on as bytes (compressed bodies pass through untouched), 1xx interim answers skipped,
// and a connection reused only when both messages were complete and nobody asked to close it.
import type { Socket, SocketHandler, TCPSocketConnectOptions } from 'bun';
import { Buffer } from 'node:buffer';
import { joinBytes } from '../../shared/bytes.ts';
import { TOKEN } from '../../shared/protocol/http-rules.ts';
import type { HeaderList } from './headers.ts';
import { BadResponseError, MAX_CHUNK_LINE, parseChunkSize, readResponseHead, type Framing } from './http1-parse.ts';
import { unbracket, type Target } from './target.ts';

export interface Http1Request {
  method: string;
  /** Origin-form request target (path and query), already checked (service.ts checkPath). */
  path: string;
  /** The headers to send, Host included; values are byte strings (headers.ts wireValue). Any Content-Length or Transfer-Encoding among them is dropped: the framing is the client's. */
  headers: HeaderList;
  /** The body, or null for none. */
  body: ReadableStream<Uint8Array> | null;
  /** The body's length when known (sent as Content-Length); otherwise it goes chunked. */
  bodyLength: number | null;
  signal?: AbortSignal;
}

export interface Http1Response {
  status: number;
  statusText: string;
  /** As received, names lower-cased, repeated fields kept apart (every Set-Cookie line). */
  headers: HeaderList;
  /** The next body bytes (whatever arrived, joined up to READ_MAX); null once the body is complete. Rejects if the target broke off. */
  read(): Promise<Uint8Array | null>;
  /** Gives up the rest of the body; the connection is closed, not reused. */
  cancel(): void;
}

/** The request itself cannot go on the wire (a header that would split the request). */
export class BadRequestError extends Error {
  override name = 'BadRequestError';
}

/** read() joins what is queued up to this many bytes. */
const READ_MAX = 1024 * 1024;
/** The socket stops being read while this much body is queued and unread. */
const QUEUE_HIGH = 1024 * 1024;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);
/** Requests sent again on a fresh connection when a reused one turns out closed. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A target's `host:port` as a pool key (hosts unbracketed, as the socket wants them). */
const keyOf = (t: Target) => `${unbracket(t.host)}|${t.port}`;

export interface Http1AgentOptions {
  /** An idle connection is closed after this long (under the usual 5 s server keep-alive). */
  idleTimeoutMs?: number;
  /** Idle connections kept per target; more are closed when they come back. */
  maxIdlePerTarget?: number;
  /** For tests: stands in for Bun.connect. */
  connect?: (options: TCPSocketConnectOptions<Conn>) => Promise<Socket<Conn>>;
}

/** Connections to tunnel targets, kept alive between requests. */
export class Http1Agent {
  private readonly idle = new Map<string, Conn[]>();
  readonly idleTimeoutMs: number;
  private readonly maxIdle: number;
  private readonly connectImpl: NonNullable<Http1AgentOptions['connect']>;
  /** Connections made (for tests and stats). */
  connects = 0;

  constructor(opts: Http1AgentOptions = {}) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 2_000;
    this.maxIdle = opts.maxIdlePerTarget ?? 64;
    this.connectImpl = opts.connect ?? ((o) => Bun.connect(o));
  }

  /** Idle connections to all targets. */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  async request(target: Target, req: Http1Request): Promise<Http1Response> {
    const head = requestHead(req);
    const key = keyOf(target);
    const reused = this.takeIdle(key);
    if (reused) {
      try {
        return await reused.exchange(head, req);
      } catch (e) {
        // The target closed an idle connection as we used it (its keep-alive ran out): a safe
        // request without a body goes again on a fresh connection, as browsers and undici do.
        if (!(e instanceof StaleConnectionError) || req.body || !RETRYABLE.has(req.method) || req.signal?.aborted) throw e instanceof StaleConnectionError ? e.cause : e;
      }
    }
    const conn = await this.connect(target, key, req.signal);
    try {
      return await conn.exchange(head, req);
    } catch (e) {
      throw e instanceof StaleConnectionError ? e.cause : e;
    }
  }

  /** Closes every idle connection (the relay socket went away, or the agent stops). */
  closeIdle(): void {
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
  }

  private takeIdle(key: string): Conn | null {
    const list = this.idle.get(key);
    while (list?.length) {
      const c = list.pop()!;
      if (!list.length) this.idle.delete(key);
      c.leaveIdle();
      if (c.usable) return c;
    }
    return null;
  }

  /** A finished exchange hands its connection back (or it is closed). */
  release(conn: Conn): void {
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, (list = []));
    if (list.length >= this.maxIdle) return conn.destroy();
    list.push(conn);
    conn.enterIdle(this.idleTimeoutMs);
  }

  /** An idle connection closed by the target leaves the pool. */
  forget(conn: Conn): void {
    const list = this.idle.get(conn.key);
    const at = list?.indexOf(conn) ?? -1;
    if (at >= 0) {
      list!.splice(at, 1);
      if (!list!.length) this.idle.delete(conn.key);
    }
  }

  private async connect(target: Target, key: string, signal?: AbortSignal): Promise<Conn> {
    if (signal?.aborted) throw abortError(signal);
    const conn = new Conn(this, key);
    this.connects++;
    const connecting = this.connectImpl({ hostname: unbracket(target.host), port: target.port, data: conn, socket: HANDLERS });
    // A connect to a host that drops packets can hang for minutes: the abort must not wait for it.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => signal?.addEventListener('abort', (onAbort = () => reject(abortError(signal))), { once: true }));
    try {
      conn.attach(await Promise.race([connecting, aborted]));
      return conn;
    } catch (e) {
      // Whenever it does connect, nobody wants it.
      connecting.then((s) => s.terminate(), () => {});
      throw e;
    } finally {
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    }
  }
}

class StaleConnectionError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : new DOMException('The request was aborted', 'AbortError');
}

/** Whether a header name is Content-Length or Transfer-Encoding, in any case (cheap: most names fail on length). */
function isFramingHeader(name: string): boolean {
  if (name.length !== 14 && name.length !== 17) return false;
  const lower = name.toLowerCase();
  return lower === 'content-length' || lower === 'transfer-encoding';
}

/**
 * The request line and headers as bytes; refuses anything that would break the message apart.
 * Exactly one framing header goes out, decided here from the body alone (RFC 9112 §6.1–6.3):
 * Content-Length with a known length, chunked without, Content-Length 0 for a bodiless method
 * that usually has one; never both, and never one the caller passed along.
 */
function requestHead(req: Http1Request): Buffer {
  // The service checked both already (service.ts); a request line is too important to trust that.
  if (!TOKEN.test(req.method)) throw new BadRequestError(`bad method ${JSON.stringify(req.method.slice(0, 16))}`);
  if (!/^\/[\x21-\x7e]*$/.test(req.path)) throw new BadRequestError('the path must start with "/" and hold no spaces or control characters');
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  for (const [name, value] of req.headers) {
    if (!TOKEN.test(name)) throw new BadRequestError(`bad header name ${JSON.stringify(name.slice(0, 64))}`);
    if (isFramingHeader(name)) continue;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x0d || c === 0x0a || c === 0 || c > 0xff) throw new BadRequestError(`header ${name} has a character a header cannot carry`);
    }
    head += `${name}: ${value}\r\n`;
  }
  if (req.body) head += req.bodyLength === null ? 'transfer-encoding: chunked\r\n' : `content-length: ${req.bodyLength}\r\n`;
  else if (METHODS_WITH_BODY.has(req.method)) head += 'content-length: 0\r\n';
  return Buffer.from(head + '\r\n', 'latin1');
}

const HANDLERS: SocketHandler<Conn> = {
  binaryType: 'uint8array',
  open() {},
  data(s, chunk) {
    s.data.onData(chunk as Uint8Array);
  },
  drain(s) {
    s.data.onDrain();
  },
  end(s) {
    s.data.onEnd();
  },
  close(s, error) {
    s.data.onClose(error);
  },
  error(s, error) {
    s.data.onClose(error);
  },
  connectError() {
    // The Bun.connect promise rejects with the reason.
  },
};

/** One keep-alive connection and the exchange on it, if any. */
export class Conn {
  private socket: Socket<Conn> | null = null;
  private ex: Exchange | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private drainWaiter: (() => void) | null = null;
  /** Whether this connection carried an exchange already (a stale one is retried then). */
  private used = false;

  constructor(
    private readonly agent: Http1Agent,
    readonly key: string,
  ) {}

  get usable(): boolean {
    return !this.closed && this.socket !== null;
  }

  attach(socket: Socket<Conn>): void {
    this.socket = socket;
  }

  enterIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.agent.forget(this);
      this.destroy();
    }, ms);
  }

  leaveIdle(): void {
    clearTimeout(this.idleTimer);
  }

  exchange(head: Buffer, req: Http1Request): Promise<Http1Response> {
    const ex = new Exchange(this, req, this.used);
    this.used = true;
    this.ex = ex;
    void ex.send(head);
    return ex.response;
  }

  /** Writes all of `bytes`, waiting for the socket to drain when the kernel buffer is full. */
  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      if (this.closed || !this.socket) throw new Error('the connection closed');
      const n = this.socket.write(bytes, offset, bytes.byteLength - offset);
      if (n < 0) throw new Error('the connection closed');
      offset += n;
      if (offset < bytes.byteLength) await new Promise<void>((resolve) => (this.drainWaiter = resolve));
    }
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    if (!this.closed) this.socket?.resume();
  }

  onData(chunk: Uint8Array): void {
    if (this.ex) this.ex.onData(chunk);
    // Bytes nobody asked for on an idle connection: it can no longer be trusted.
    else this.destroy();
  }

  onDrain(): void {
    const wake = this.drainWaiter;
    this.drainWaiter = null;
    wake?.();
  }

  onEnd(): void {
    if (this.ex) this.ex.onEnd();
    else {
      this.agent.forget(this);
      this.destroy();
    }
  }

  onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.agent.forget(this);
    this.onDrain();
    this.ex?.onClose(error);
  }

  /** The exchange is over: back to the pool when both messages ended cleanly, else closed. */
  done(ex: Exchange, reusable: boolean): void {
    if (this.ex !== ex) return;
    this.ex = null;
    if (reusable && !this.closed) this.agent.release(this);
    else this.destroy();
  }

  destroy(): void {
    clearTimeout(this.idleTimer);
    if (this.socket && !this.closed) this.socket.terminate();
    this.closed = true;
  }
}

/** One request and its response on a connection. */
class Exchange {
  readonly response: Promise<Http1Response>;
  private resolveHead!: (r: Http1Response) => void;
  private rejectHead!: (e: Error) => void;
  state: 'head' | 'body' | 'done' = 'head';
  /** Head bytes not yet parsed (a head may arrive in pieces). */
  private buffered: Uint8Array | null = null;
  private framing: Framing = { kind: 'none' };
  private reusable = false;
  private requestSent = false;
  private responseDone = false;
  private gotBytes = false;
  private failure: Error | null = null;
  // Body bytes not yet read, and the reader waiting for them.
  private queue: Uint8Array[] = [];
  private queued = 0;
  private paused = false;
  private waiter: (() => void) | null = null;
  // Chunked decoding.
  private chunkState: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size';
  private chunkLeft = 0;
  private line = '';
  private bodyReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private readonly onAbort = () => this.fail(abortError(this.req.signal!));

  constructor(
    private readonly conn: Conn,
    private readonly req: Http1Request,
    private readonly reused: boolean,
  ) {
    this.response = new Promise((resolve, reject) => {
      this.resolveHead = resolve;
      this.rejectHead = reject;
    });
    this.response.catch(() => {});
    req.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The request: its head in one write, then the body streamed (chunk-framed when unsized). */
  async send(head: Buffer): Promise<void> {
    try {
      await this.conn.write(head);
      const body = this.req.body;
      if (body) {
        const length = this.req.bodyLength;
        const reader = (this.bodyReader = body.getReader());
        let sent = 0;
        for (;;) {
          const next = await reader.read();
          if (next.done) break;
          if (this.failure || this.responseDone) return void reader.cancel().catch(() => {});
          const chunk = next.value;
          if (!chunk.byteLength) continue;
          sent += chunk.byteLength;
          // Bytes past the Content-Length would be read by the target as the next request.
          if (length !== null && sent > length) throw new BadRequestError(`the body is longer than its length of ${length}`);
          await this.conn.write(length === null ? joinBytes([Buffer.from(chunk.byteLength.toString(16) + '\r\n', 'latin1'), chunk, CRLF], chunk.byteLength + chunk.byteLength.toString(16).length + 4) : chunk);
        }
        if (length === null) await this.conn.write(LAST_CHUNK);
        else if (sent !== length) throw new BadRequestError(`the body ended after ${sent} of its ${length} bytes`);
      }
      this.requestSent = true;
      this.maybeDone();
    } catch (e) {
      // The response may already be complete (the target answered early and closed): that stands.
      if (!this.responseDone) this.fail(this.stale(e instanceof Error ? e : new Error(String(e))));
    }
  }

  onData(chunk: Uint8Array): void {
    if (this.state === 'done') return this.conn.destroy();
    this.gotBytes = true;
    if (this.state === 'head') {
      const data: Uint8Array = this.buffered ? joinBytes([this.buffered, chunk], this.buffered.byteLength + chunk.byteLength) : chunk;
      this.buffered = null;
      let rest: Uint8Array | null;
      try {
        rest = this.parseHeads(data);
      } catch (e) {
        return this.fail(e as Error);
      }
      if (rest === null) return;
      if ((this.state as Exchange['state']) === 'done') {
        // A response without a body: anything after its head is not ours to read.
        if (rest.byteLength) this.reusable = false;
        return this.finishBody();
      }
      if (!rest.byteLength) return;
      chunk = rest;
    }
    this.body(chunk);
  }

  /** Parses the response head at the start of `data` (http1-parse.ts); the bytes after it, or null while it is incomplete. */
  private parseHeads(data: Uint8Array): Uint8Array | null {
    const head = readResponseHead(data, this.req.method);
    if (head.partial) {
      this.buffered = head.rest;
      return null;
    }
    const { status, statusText, headers, framing, reusable } = head;
    this.framing = framing;
    this.reusable = reusable;
    this.state = framing.kind === 'none' || (framing.kind === 'length' && framing.left === 0) ? 'done' : 'body';
    this.resolveHead({ status, statusText, headers, read: () => this.read(), cancel: () => this.cancel() });
    return head.rest;
  }

  /** Body bytes off the wire, by the response's framing. */
  private body(chunk: Uint8Array): void {
    const f = this.framing;
    if (f.kind === 'close') return this.push(chunk);
    if (f.kind === 'length') {
      const n = Math.min(f.left, chunk.byteLength);
      this.push(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
      f.left -= n;
      if (f.left === 0) {
        if (n < chunk.byteLength) this.reusable = false; // bytes past the response
        this.finishBody();
      }
      return;
    }
    try {
      this.chunked(chunk);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** Chunked transfer coding (RFC 9112 §7.1): hands on the data, drops sizes, extensions and trailers. */
  private chunked(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength && this.state === 'body') {
      if (this.chunkState === 'data') {
        const n = Math.min(this.chunkLeft, chunk.byteLength - at);
        this.push(chunk.subarray(at, at + n));
        at += n;
        this.chunkLeft -= n;
        if (this.chunkLeft === 0) this.chunkState = 'data-crlf';
        continue;
      }
      // A line: the size line, the CRLF after data, or a trailer line.
      const lf = chunk.indexOf(10, at);
      const stop = lf < 0 ? chunk.byteLength : lf;
      this.line += Buffer.from(chunk.buffer, chunk.byteOffset + at, stop - at).toString('latin1');
      if (this.line.length > MAX_CHUNK_LINE) throw new BadResponseError('a chunk line is too long');
      if (lf < 0) return;
      at = lf + 1;
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      if (this.chunkState === 'data-crlf') {
        if (line) throw new BadResponseError('chunk data is not followed by CRLF');
        this.chunkState = 'size';
      } else if (this.chunkState === 'size') {
        this.chunkLeft = parseChunkSize(line);
        this.chunkState = this.chunkLeft === 0 ? 'trailer' : 'data';
      } else if (!line) {
        // The empty line after the trailers: the body is complete.
        if (at < chunk.byteLength) this.reusable = false;
        this.finishBody();
      }
    }
  }

  private push(bytes: Uint8Array): void {
    if (!bytes.byteLength) return;
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
    if (this.queued > QUEUE_HIGH && !this.paused) {
      this.paused = true;
      this.conn.pause();
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.queue.length) {
        let size = 0;
        let n = 0;
        while (n < this.queue.length && (n === 0 || size + this.queue[n]!.byteLength <= READ_MAX)) size += this.queue[n++]!.byteLength;
        const out = joinBytes(n === this.queue.length ? this.queue : this.queue.slice(0, n), size);
        this.queue = n === this.queue.length ? [] : this.queue.slice(n);
        this.queued -= size;
        if (this.paused && this.queued <= QUEUE_HIGH / 2) {
          this.paused = false;
          this.conn.resume();
        }
        return out;
      }
      if (this.failure) throw this.failure;
      if (this.responseDone) return null;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  cancel(): void {
    if (this.responseDone && !this.queue.length) return;
    this.queue = [];
    this.queued = 0;
    this.reusable = false;
    this.fail(new Error('the body was cancelled'));
  }

  private finishBody(): void {
    this.state = 'done';
    this.responseDone = true;
    this.wake();
    // An answer before the whole upload (413, a redirect…): the rest of the upload goes nowhere.
    if (!this.requestSent) {
      this.reusable = false;
      this.bodyReader?.cancel().catch(() => {});
    }
    this.maybeDone();
  }

  /** Once the response is complete the connection is handed back; it is reused only if the request went out whole too. */
  private maybeDone(): void {
    if (!this.responseDone) return;
    this.req.signal?.removeEventListener('abort', this.onAbort);
    this.conn.done(this, this.reusable && this.requestSent);
  }

  onEnd(): void {
    // The target's FIN: the end of a close-delimited body, or a broken-off response.
    if (this.state === 'body' && this.framing.kind === 'close') return this.finishBody();
    this.onClose();
  }

  onClose(error?: Error): void {
    if (this.state === 'body' && this.framing.kind === 'close' && !error) return this.finishBody();
    if (this.responseDone) return;
    const why = error ?? new Error(this.state === 'head' ? 'the target closed the connection without a response' : 'the target closed the connection before the response was complete');
    this.fail(this.stale(why));
  }

  /** A reused connection that died before any answer was probably closed while idle. */
  private stale(e: Error): Error {
    return this.state === 'head' && this.reused && !this.gotBytes && !this.req.signal?.aborted ? new StaleConnectionError(e) : e;
  }

  private fail(e: Error): void {
    if (this.failure || (this.responseDone && !this.queue.length && e.name !== 'AbortError')) return;
    this.failure = e;
    this.reusable = false;
    this.req.signal?.removeEventListener('abort', this.onAbort);
    this.bodyReader?.cancel(e).catch(() => {});
    this.rejectHead(e);
    this.wake();
    this.conn.done(this, false);
  }
}
