// One visitor HTTP request carried to a local HTTP server on the device, and its response carried
// back, both streamed: an SSE feed flows event by event, a 1 GiB download never sits in memory
// (the stream's credit window paces how fast we read the target), and when the visitor goes away
// the request to the target is aborted at once so the target's connection is freed.
import { joinBytes } from '../../shared/bytes.ts';
import { headerProblem, parseContentLength } from '../../shared/protocol/http-rules.ts';
import { MAX_DATA_CHUNK } from '../../shared/protocol/flow.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { HttpOpen } from '../../shared/protocol/tunnels.ts';
import { headerValue, requestHeaders, responseHeaders, type HeaderList } from './headers.ts';
import { BadRequestError, type Http1Agent, type Http1Response } from './http1.ts';
import { BadResponseError } from './http1-parse.ts';
import { authority, describeFailure, timeoutFailure, type ProxyDeps, type Session, type Target, type TargetFailure } from './target.ts';
import { ResetCode } from '../../shared/codes.ts';

export interface HttpDeps extends ProxyDeps {
  /** Keep-alive connections to the targets. */
  http: Http1Agent;
}

/** Requests that never carry a body here (fetch refuses one on them; targets expect none). */
const BODYLESS_METHODS = new Set(['GET', 'HEAD']);
/** Responses that have no body whatever their Content-Length says. */
const NO_BODY_STATUS = new Set([204, 205, 304]);

class VisitorGone extends Error {}

export function proxyHttp(stream: MuxStream, open: HttpOpen, target: Target, deps: HttpDeps): Session {
  const controller = new AbortController();
  let ended = false;
  let timedOut = false;
  let badBody: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;

  // The deadline covers reaching the target and getting its response head; it is re-armed while
  // the upload makes progress, so a slow link does not kill a large POST, and it is off once
  // the head is in, so long bodies (SSE, downloads) run as long as they like.
  const armTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, deps.connectTimeoutMs);
  };
  const visitorGone = () => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    controller.abort();
  };
  const fail = (failure: TargetFailure) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    controller.abort();
    deps.log.debug('http tunnel request failed', { target: authority(target), code: failure.code, reason: failure.message });
    stream.reset(failure.code, failure.message);
  };
  // A reset from the hub (the visitor left, the socket dropped) stops the request to the target.
  stream.onReset(visitorGone);

  const run = async () => {
    const method = open.method.toUpperCase();
    const declared = declaredLength(open.headers);
    // Refused before anything reaches the target (the hub answers the visitor 400).
    if (typeof declared === 'string') return fail({ code: ResetCode.BAD_REQUEST, message: declared });
    let body: ReadableStream<Uint8Array> | null = null;
    if (BODYLESS_METHODS.has(method) || declared === 0) {
      // Usually the OPEN carried FIN and there is nothing to read at all.
      if (!stream.peerFinished) void drain(stream.readable.getReader()).catch(visitorGone);
    } else if (declared !== null) {
      body = requestBody(stream.readable.getReader(), undefined, declared, { onProgress: armTimer, onVisitorGone: visitorGone, onBad: (m) => (badBody ??= m) });
    } else {
      const reader = stream.readable.getReader();
      // No length: peek, so a request without a body (DELETE, an empty POST) goes out without
      // one instead of as an empty chunked body some servers reject.
      const first = await reader.read().catch(() => null);
      if (!first) return visitorGone();
      if (!first.done) body = requestBody(reader, first.value, null, { onProgress: armTimer, onVisitorGone: visitorGone, onBad: (m) => (badBody ??= m) });
    }
    if (ended) return;

    armTimer();
    let res: Http1Response;
    try {
      res = await deps.http.request(target, {
        method,
        path: open.path,
        headers: requestHeaders(open.headers, { host: authority(target) }),
        body,
        bodyLength: body ? declared : null,
        signal: controller.signal,
      });
    } catch (e) {
      if (badBody) fail({ code: ResetCode.BAD_REQUEST, message: badBody });
      else if (timedOut) fail(timeoutFailure(target, deps.connectTimeoutMs, 'response'));
      else if (e instanceof BadRequestError) fail({ code: ResetCode.BAD_REQUEST, message: e.message });
      else if (e instanceof BadResponseError) fail({ code: ResetCode.TARGET_ERROR, message: `${authority(target)} sent a malformed response: ${e.message}` });
      else if (!ended) fail(describeFailure(e, target));
      return;
    }
    clearTimeout(timer);
    if (ended) return res.cancel();

    const headers = responseHeaders(res.headers);
    // Past the stream head limits (those of StreamAcceptSchema) accept() would throw.
    const tooLarge = headerProblem(headers);
    if (tooLarge) {
      res.cancel();
      return fail({ code: ResetCode.TARGET_ERROR, message: `${authority(target)} sent a response head too large for a tunnel: ${tooLarge}` });
    }
    const expectBody = method !== 'HEAD' && !NO_BODY_STATUS.has(res.status);
    const expected = expectBody ? parseContentLength(headerValue(res.headers, 'content-length')) : null;
    if (!expectBody || (expected !== null && expected <= MAX_DATA_CHUNK)) {
      // Small and of known length: the whole response rides in the ACCEPT frame (one frame, and
      // the hub answers with bytes instead of pumping a stream).
      let body: Uint8Array | undefined;
      if (expectBody && expected) {
        try {
          body = await readUpTo(res, expected);
        } catch {
          body = undefined;
        }
      } else res.cancel();
      if (ended) return;
      if (expectBody && (body?.byteLength ?? 0) !== expected) {
        return fail({ code: ResetCode.TARGET_ERROR, message: `${authority(target)} sent ${body?.byteLength ?? 0} of the ${expected} bytes it announced` });
      }
      ended = true;
      stream.accept({ status: res.status, headers }, { body, fin: true });
      return;
    }
    stream.accept({ status: res.status, headers });
    const writer = stream.writable.getWriter();
    let sent = 0;
    try {
      for (;;) {
        await writer.ready.catch(() => Promise.reject(new VisitorGone()));
        // Whatever arrived since the last read, joined: one frame rather than many small ones.
        const chunk = await res.read();
        if (chunk === null) break;
        sent += chunk.byteLength;
        // Not awaited: writer.ready is the backpressure signal, and a failed write shows there.
        writer.write(chunk).catch(() => {});
      }
    } catch (e) {
      res.cancel();
      if (e instanceof VisitorGone || ended) return visitorGone();
      return fail({ code: ResetCode.TARGET_ERROR, message: `${authority(target)} broke off the response after ${sent} bytes` });
    }
    if (expected !== null && sent !== expected) {
      return fail({ code: ResetCode.TARGET_ERROR, message: `${authority(target)} sent ${sent} of the ${expected} bytes it announced` });
    }
    ended = true;
    await writer.close().catch(() => {});
  };

  const done = run()
    .catch((e) => fail({ code: ResetCode.TARGET_ERROR, message: e instanceof Error ? e.message : String(e) }))
    .finally(() => clearTimeout(timer));
  return {
    abort(code, message) {
      if (ended) return;
      ended = true;
      controller.abort();
      stream.reset(code, message);
    },
    done: done.then(
      () => {},
      () => {},
    ),
  };
}

/**
 * The request body's length as the visitor declared it: a number, null when it is not declared
 * (or Transfer-Encoding framed it, which overrides a Content-Length, RFC 9112 §6.3), or why the
 * request is refused: a Content-Length we cannot read exactly (a list, a sign, a fraction, more
 * than 15 digits) or given twice, which a target might read differently from us.
 */
function declaredLength(headers: HeaderList): number | null | string {
  let value: string | null = null;
  let encoded = false;
  for (const [n, v] of headers) {
    const name = n.toLowerCase();
    if (name === 'transfer-encoding') encoded = true;
    else if (name === 'content-length') {
      if (value !== null) return 'the request has more than one Content-Length';
      value = v;
    }
  }
  if (value === null || encoded) return null;
  return parseContentLength(value) ?? `the Content-Length ${JSON.stringify(value.slice(0, 32))} is not one decimal length`;
}

/** The whole body of a response announced as `length` bytes (short if the target broke off). */
async function readUpTo(res: Http1Response, length: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  while (size < length) {
    const chunk = await res.read();
    if (chunk === null) break;
    parts.push(chunk);
    size += chunk.byteLength;
  }
  return joinBytes(parts, size);
}

/** Reads and discards whatever the visitor sends (nothing, for a GET) until the stream ends. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  for (;;) if ((await reader.read()).done) return;
}

/**
 * The visitor's upload as the request body, pulled only as fast as the target takes it
 * (each pull is what grants the hub more credit). Bytes beyond a declared Content-Length are an
 * error, never forwarded: the target would read them as the start of another request.
 */
function requestBody(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array | undefined,
  declared: number | null,
  on: { onProgress: () => void; onVisitorGone: () => void; onBad: (message: string) => void },
): ReadableStream<Uint8Array> {
  const bad = (controller: ReadableStreamDefaultController<Uint8Array>, message: string) => {
    on.onBad(message);
    controller.error(new Error(message));
  };
  let sent = 0;
  let pending = first;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let chunk = pending;
        pending = undefined;
        if (!chunk) {
          const next = await reader.read().catch((e) => {
            on.onVisitorGone();
            throw e;
          });
          if (next.done) {
            if (declared !== null && sent !== declared) bad(controller, `the request body ended after ${sent} of the ${declared} bytes announced`);
            else controller.close();
            return;
          }
          chunk = next.value;
        }
        sent += chunk.byteLength;
        if (declared !== null && sent > declared) {
          bad(controller, `the request body is longer than its Content-Length of ${declared}`);
          return;
        }
        on.onProgress();
        controller.enqueue(chunk);
      },
      // The target stopped reading (it answered early, e.g. 413): keep draining, so the hub's
      // upload completes and the visitor still gets that answer.
      cancel() {
        void drain(reader).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

