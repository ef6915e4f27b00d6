// Carries a visitor's traffic over one stream of the device socket: an HTTP request and its
// response (bodies streamed both ways, never buffered whole), a WebSocket (messages as records),
// or a TCP connection reached through a client WebSocket (raw bytes, half-close as {"t":"eof"}).
// The Worker has already checked access; the agent picks the target from its own tunnel table.
import { ResetCode } from '../../../shared/codes.ts';
import { HEAD_LIMITS, headerProblem, parseContentLength } from '../../../shared/protocol/http-rules.ts';
import { StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import { WsRecordKind } from '../../../shared/protocol/ws-records.ts';
import { TCP_CLIENT_WINDOW, TCP_EOF_MESSAGE, TCP_FLOW_ACK, TcpClientMessageSchema, type TcpClientMessage } from '../../../shared/protocol/tcp-client.ts';
import type { Accepted, StreamAccept } from '../../../shared/protocol/heads.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { encodeWsRecord, wsClosePayload, WsRecordDecoder } from '../../../shared/protocol/ws-records.ts';
import type { HubTunnel } from './table.ts';
import { visitorError } from '../../../shared/http-pages.ts';
import { LEGACY_SESSION_COOKIE, SESSION_COOKIE } from '../../../shared/api/auth.ts';
import type { VisitHead } from '../../hub/contract.ts';
import { coalesce } from './coalesce.ts';
import type { Deadline, Deadlines } from './deadlines.ts';

/** Opens a stream to the agent for this tunnel (the hub tracks it so it can reset it later). */
export type OpenStream = (open: StreamOpen, options?: { fin?: boolean }) => MuxStream;

/** What a visit needs from its hub. */
export interface StreamContext {
  open: OpenStream;
  /** The hub's deadlines (one timer for all its streams). */
  deadlines: Deadlines;
  /** How long the target may take to answer with a response head (or accept a connection), counted from the end of the upload. */
  acceptTimeoutMs: number;
}

/** Statuses whose responses have no body. */
const NULL_BODY = new Set([204, 205, 304]);
/** Bytes a visitor WebSocket may queue toward a slow device before it is closed (1013). */
const MAX_WS_QUEUE = 16 * 1024 * 1024;

function headerList(headers: Headers, skip: (name: string) => boolean): [string, string][] {
  const out: [string, string][] = [];
  headers.forEach((value, name) => {
    if (!skip(name)) out.push([name, value]);
  });
  return out;
}

const isInternal = (name: string) => name.startsWith('x-pirelay-');
const WS_HANDSHAKE = new Set(['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

/**
 * The visit's method, path and forwarded headers: the Worker's x-pirelay-head (forward.ts
 * buildHttpVisit, checked by the hub's contract), or else (a Worker of an older deploy) the
 * request itself, whose headers the Worker cleaned already.
 */
function visitHead(request: Request, head: VisitHead | undefined): VisitHead {
  if (head) return head;
  const url = new URL(request.url);
  return { method: request.method, path: url.pathname + url.search, headers: headerList(request.headers, isInternal) };
}

/**
 * The stream's ACCEPT, or a reset with TARGET_TIMEOUT (sent to the agent too) when none comes in
 * time; either way the rejection is the StreamResetError. `progress` is handed the deadline, so
 * an upload can restart the wait while it makes progress (a slow link is not a stuck target).
 */
async function acceptWithin(stream: MuxStream, ctx: StreamContext, progress?: (deadline: Deadline) => void): Promise<Accepted> {
  const ms = ctx.acceptTimeoutMs;
  const deadline = ctx.deadlines.add(ms, () => stream.reset(ResetCode.TARGET_TIMEOUT, `the target did not answer within ${ms / 1000} s`));
  progress?.(deadline);
  try {
    return await stream.accepted;
  } finally {
    deadline.cancel();
  }
}

/** 414 or 431 for a request whose head the stream could not carry (HEAD_LIMITS), before any stream opens. */
function headTooLarge(request: Request, path: string, headers: [string, string][]): Response | null {
  if (path.length > HEAD_LIMITS.path) return visitorError(request, 414, 'URI_TOO_LONG', `The path and query are ${path.length} bytes long; a tunnel carries at most ${HEAD_LIMITS.path}.`);
  const problem = headerProblem(headers);
  return problem ? visitorError(request, 431, 'HEADERS_TOO_LARGE', `The request has ${problem}.`) : null;
}

/** The most of a reset's reason a visitor's error page shows (the device wrote it: it is escaped there too). */
const MAX_SHOWN_REASON = 500;

/**
 * Turns a failed stream into the visitor's answer: 400 for a request the agent refused (what the
 * Worker did not catch), 502 for the target's faults, 503 for ours, 504 for a slow target.
 */
export function streamFailure(request: Request, e: unknown): Response {
  const err = e instanceof StreamResetError ? e : new StreamResetError(ResetCode.TARGET_ERROR, e instanceof Error ? e.message : String(e));
  const offline = err.code === ResetCode.SOCKET_CLOSED || err.code === ResetCode.STREAM_LIMIT;
  const reason = err.message.length > MAX_SHOWN_REASON ? `${err.message.slice(0, MAX_SHOWN_REASON)}…` : err.message;
  if (err.code === ResetCode.BAD_REQUEST) return visitorError(request, 400, 'BAD_REQUEST', `The request cannot go through a tunnel: ${reason}`);
  const status = err.code === ResetCode.TARGET_TIMEOUT ? 504 : offline ? 503 : 502;
  const what = offline ? 'The device went offline' : err.code === ResetCode.TARGET_TIMEOUT ? 'The target did not answer in time' : 'The target could not be reached';
  return visitorError(request, status, offline ? 'DEVICE_OFFLINE' : err.code.slice(0, 64), `${what}: ${reason}`);
}

/**
 * The target's response headers as the visitor gets them. Dropped: every x-pirelay-* (the relay's
 * own words), and a Set-Cookie that names the relay's session cookie or carries a Domain other
 * than the visit's own host: a browser only takes the host or a parent of it, and a parent (the
 * tunnel domain, or above) is shared with every other tunnel and the relay's API.
 */
function visitorHeaders(headers: readonly [string, string][] | undefined, url: string): Headers {
  const out = new Headers();
  for (const [name, value] of headers ?? []) {
    const lower = name.toLowerCase();
    if (lower.startsWith('x-pirelay-')) continue;
    if (lower === 'set-cookie' && !cookieAllowed(value, url)) continue;
    out.append(name, value);
  }
  return out;
}

function cookieAllowed(setCookie: string, url: string): boolean {
  const parts = setCookie.split(';');
  const name = parts[0]!.split('=', 1)[0]!.trim();
  if (name === SESSION_COOKIE || name === LEGACY_SESSION_COOKIE) return false;
  for (let i = 1; i < parts.length; i++) {
    const attr = parts[i]!;
    const eq = attr.indexOf('=');
    if (eq < 0 || attr.slice(0, eq).trim().toLowerCase() !== 'domain') continue;
    // RFC 6265 §5.2.3: a leading dot is ignored, an empty value means host-only.
    const domain = attr.slice(eq + 1).trim().replace(/^\./, '').toLowerCase();
    if (domain && domain !== new URL(url).hostname) return false;
  }
  return true;
}

async function openAndAccept(ctx: StreamContext, open: StreamOpen): Promise<{ stream: MuxStream; head: StreamAccept }> {
  const stream = ctx.open(open);
  try {
    return { stream, head: await acceptWithin(stream, ctx) };
  } catch (e) {
    stream.reset(e instanceof StreamResetError ? e.code : 'CANCELLED', 'no answer');
    throw e;
  }
}

export async function proxyHttp(ctx: StreamContext, tunnel: HubTunnel, request: Request, sentHead?: VisitHead): Promise<Response> {
  const visit = visitHead(request, sentHead);
  const tooLarge = headTooLarge(request, visit.path, visit.headers);
  if (tooLarge) return tooLarge;
  const body = request.body;
  const stream = ctx.open({ kind: 'http', tunnel: tunnel.id, method: visit.method, path: visit.path, headers: visit.headers }, { fin: !body });
  let head: Accepted;
  try {
    // The request body flows while we wait for the head: an upload can be answered early (413…),
    // and the wait for the head restarts with each piece the upload sends.
    head = await acceptWithin(stream, ctx, body ? (deadline) => void sendBody(body, stream, deadline) : undefined);
  } catch (e) {
    stream.reset(e instanceof StreamResetError ? e.code : 'CANCELLED', 'no response head');
    return streamFailure(request, e);
  }
  const status = head.status ?? 502;
  if (status < 200 || status > 599) {
    stream.reset(ResetCode.PROTOCOL_ERROR, `status ${status} is not allowed here`);
    return visitorError(request, 502, 'BAD_TARGET_RESPONSE', `The target answered with status ${status}`);
  }
  let responseHeaders: Headers;
  try {
    responseHeaders = visitorHeaders(head.headers, request.url);
  } catch (e) {
    // A header the runtime refuses (a NUL or a CR in a value, say): the target's fault, not a crash.
    stream.reset(ResetCode.PROTOCOL_ERROR, 'response headers not allowed');
    return visitorError(request, 502, 'BAD_TARGET_RESPONSE', `The target's response headers were refused: ${e instanceof Error ? e.message : String(e)}`);
  }
  // The target's bytes go out as they are: with the default ("automatic"), workerd would compress a
  // body whose Content-Encoding says it already is (gzip'd twice).
  const init: ResponseInit = { status, headers: responseHeaders, encodeBody: 'manual' };
  if (NULL_BODY.has(status) || request.method === 'HEAD') {
    stream.readable.cancel().catch(() => {});
    return new Response(null, init);
  }
  // A small response that arrived whole in its ACCEPT goes out as bytes: no stream to pump.
  if (head.complete) return new Response(head.complete.byteLength ? (head.complete as Uint8Array<ArrayBuffer>) : null, init);
  // Through a native pipe rather than our own stream: workerd then reliably reports a visitor
  // that disconnects mid-body (the pipe fails, pipeTo cancels our readable, which resets the
  // stream up to the target). Returned directly, a paused body was sometimes never cancelled.
  // A body of known length goes through a FixedLengthStream: the visitor gets its Content-Length
  // (progress, resumable downloads), and a body cut short (the device vanished) closes the
  // connection early, which every client reports. workerd ends a chunked body whose stream failed
  // as if it were complete (workerd#6818), so without a length a cut is not visible.
  const length = declaredLength(head.headers);
  const pipe = length !== null ? new FixedLengthStream(length) : new IdentityTransformStream();
  stream.readable.pipeTo(pipe.writable).catch(() => {});
  return new Response(pipe.readable, init);
}

/** The Content-Length a response head declares, when it declares exactly one valid value. */
function declaredLength(headers: readonly (readonly [string, string])[] | undefined): number | null {
  let length: number | null = null;
  for (const [name, value] of headers ?? []) {
    if (name.toLowerCase() !== 'content-length') continue;
    const parsed = parseContentLength(value);
    if (length !== null || parsed === null) return null;
    length = parsed;
  }
  return length;
}

/** Streams a visitor's request body into the stream in frame-sized pieces, then half-closes. */
async function sendBody(body: ReadableStream<Uint8Array>, stream: MuxStream, deadline: Deadline): Promise<void> {
  const writer = stream.writable.getWriter();
  try {
    for await (const chunk of coalesce(body)) {
      await writer.write(chunk);
      deadline.extend();
    }
    await writer.close();
  } catch (e) {
    stream.reset(ResetCode.CANCELLED, `the visitor stopped sending: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Relays a visitor's WebSocket to the target's, message for message. */
export async function proxyWebSocket(ctx: StreamContext, tunnel: HubTunnel, request: Request): Promise<Response> {
  const url = new URL(request.url);
  const protocols = (request.headers.get('sec-websocket-protocol') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const path = url.pathname + url.search;
  const headers = headerList(request.headers, (n) => isInternal(n) || WS_HANDSHAKE.has(n));
  const tooLarge = headTooLarge(request, path, headers);
  if (tooLarge) return tooLarge;
  let opened: { stream: MuxStream; head: StreamAccept };
  try {
    opened = await openAndAccept(ctx, { kind: 'websocket', tunnel: tunnel.id, path, headers, protocols });
  } catch (e) {
    return streamFailure(request, e);
  }
  const { stream, head } = opened;
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  // Server sockets default to Blob for binary messages under current compatibility dates.
  server.binaryType = 'arraybuffer';
  const toDevice = queuedWriter(stream, () => server.close(1013, 'device is not keeping up'));
  server.addEventListener('message', (ev) => {
    const data = ev.data;
    toDevice.write(typeof data === 'string' ? encodeWsRecord(WsRecordKind.TEXT, data) : encodeWsRecord(WsRecordKind.BINARY, new Uint8Array(data as ArrayBuffer)));
  });
  server.addEventListener('close', (ev) => {
    toDevice.write(encodeWsRecord(WsRecordKind.CLOSE, wsClosePayload(ev.code || 1000, ev.reason)));
    toDevice.close();
  });
  server.addEventListener('error', () => stream.reset(ResetCode.CANCELLED, 'visitor socket error'));
  void (async () => {
    const decoder = new WsRecordDecoder();
    try {
      for await (const chunk of stream.readable) {
        for (const rec of decoder.push(chunk)) {
          if (rec.kind === 'text') server.send(rec.text);
          else if (rec.kind === 'binary') server.send(rec.data);
          else server.close(validCloseCode(rec.code), rec.reason);
        }
      }
      server.close(1000, 'target closed');
    } catch {
      safeClose(server, 1011, 'target connection lost');
    }
  })();
  return new Response(null, { status: 101, webSocket: client, headers: head.protocol ? { 'sec-websocket-protocol': head.protocol } : {} });
}

/**
 * A TCP connection for a client WebSocket: binary messages are bytes, {"t":"eof"} a half-close.
 * A WebSocket cannot tell the hub that its far end reads slowly, so a client that connects with
 * `?flow=ack` acknowledges what it passed on ({"t":"ack","n":bytes}) and the hub keeps at most
 * TCP_CLIENT_WINDOW bytes unacknowledged: past that it stops reading the stream, its credit to the
 * agent runs out, and the target waits. `pirelay tcp` does this; a plain WebSocket client does not
 * have to (the hub then sends as fast as the device does).
 */
export async function proxyTcp(ctx: StreamContext, tunnel: HubTunnel, request: Request): Promise<Response> {
  const acks = new URL(request.url).searchParams.get('flow') === TCP_FLOW_ACK;
  let stream: MuxStream;
  try {
    ({ stream } = await openAndAccept(ctx, { kind: 'tcp', tunnel: tunnel.id }));
  } catch (e) {
    return streamFailure(request, e);
  }
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  // Server sockets default to Blob for binary messages under current compatibility dates.
  server.binaryType = 'arraybuffer';
  const toDevice = queuedWriter(stream, () => server.close(1013, 'device is not keeping up'));
  let sentEof = false;
  /** Bytes sent to the client and not yet acknowledged (with acks), and the pump waiting on them. */
  let unacked = 0;
  let ackWaiter: (() => void) | null = null;
  const wakePump = () => {
    const wake = ackWaiter;
    ackWaiter = null;
    wake?.();
  };
  const refuse = (message: string) => {
    try {
      server.send(JSON.stringify({ t: 'error', code: 'BAD_MESSAGE', message }));
    } catch {
      // already closed
    }
    stream.reset(ResetCode.CANCELLED, `client protocol error: ${message}`);
    safeClose(server, 1008, 'bad message');
  };
  server.addEventListener('message', (ev) => {
    if (typeof ev.data !== 'string') {
      if (!sentEof) toDevice.write(new Uint8Array(ev.data as ArrayBuffer));
      return;
    }
    let msg: TcpClientMessage;
    if (ev.data === TCP_EOF_MESSAGE) msg = { t: 'eof' };
    else {
      let parsed: ReturnType<typeof TcpClientMessageSchema.safeParse>;
      try {
        parsed = TcpClientMessageSchema.safeParse(JSON.parse(ev.data));
      } catch {
        return refuse('text messages are JSON: {"t":"eof"} or {"t":"ack","n":bytes}');
      }
      if (!parsed.success) return refuse(`not a TCP client message: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      msg = parsed.data;
    }
    if (msg.t === 'eof') {
      if (!sentEof) {
        sentEof = true;
        toDevice.close();
      }
      return;
    }
    if (!acks) return refuse('an ack needs ?flow=ack on the connect URL');
    if (msg.n > unacked) return refuse(`acknowledged ${msg.n} bytes with only ${unacked} unacknowledged`);
    unacked -= msg.n;
    if (unacked < TCP_CLIENT_WINDOW) wakePump();
  });
  server.addEventListener('close', () => {
    // Answer the client's close frame first (workerd does not, and drops the connection), so its
    // goodbye ends cleanly rather than in the 1011 the stream's end would otherwise send.
    safeClose(server, 1000, 'closed');
    wakePump();
    // After an eof the client may close at once: let its queued bytes and the half-close reach
    // the target first, then end the stream (nobody is left to read the target's answer).
    if (sentEof) void toDevice.flushed().then(() => stream.reset(ResetCode.CANCELLED, 'client closed'));
    else stream.reset(ResetCode.CANCELLED, 'client closed');
  });
  server.addEventListener('error', () => {
    wakePump();
    stream.reset(ResetCode.CANCELLED, 'client socket error');
  });
  void (async () => {
    try {
      const reader = stream.readable.getReader();
      for (;;) {
        while (acks && unacked >= TCP_CLIENT_WINDOW && !stream.peerFinished) await new Promise<void>((resolve) => (ackWaiter = resolve));
        const next = await reader.read();
        if (next.done) break;
        server.send(next.value);
        if (acks) unacked += next.value.byteLength;
      }
      server.send(TCP_EOF_MESSAGE);
      await stream.closed;
      safeClose(server, 1000, 'closed');
    } catch (e) {
      const err = e instanceof StreamResetError ? e : null;
      try {
        server.send(JSON.stringify({ t: 'error', code: err?.code ?? 'TARGET_ERROR', message: err?.message ?? String(e) }));
      } catch {
        // already closed
      }
      safeClose(server, 1011, 'connection lost');
    }
  })();
  return new Response(null, { status: 101, webSocket: client });
}

/**
 * Writes into a stream without awaiting each write (WebSocket events cannot be paused), keeping
 * track of what is queued so a device that stops reading cannot grow the hub's memory forever.
 */
function queuedWriter(stream: MuxStream, onOverflow: () => void) {
  const writer = stream.writable.getWriter();
  let queued = 0;
  let failed = false;
  let closing: Promise<void> | null = null;
  return {
    /** Resolves once everything written (and the close, if any) has gone into the stream. */
    flushed(): Promise<void> {
      return (closing ?? writer.ready).catch(() => {});
    },
    write(chunk: Uint8Array) {
      if (failed) return;
      queued += chunk.byteLength;
      if (queued > MAX_WS_QUEUE) {
        failed = true;
        stream.reset(ResetCode.CANCELLED, 'write queue overflow');
        onOverflow();
        return;
      }
      writer.write(chunk).then(
        () => (queued -= chunk.byteLength),
        () => (failed = true),
      );
    },
    close() {
      if (!failed && !closing) closing = writer.close();
      closing?.catch(() => {});
    },
  };
}

/** Close codes a server may send (1005/1006/1015 are reserved for reporting, never sending). */
function validCloseCode(code: number): number {
  return code === 1000 || (code >= 1001 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999) ? code : 1000;
}

function safeClose(ws: WebSocket, code: number, reason: string) {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
