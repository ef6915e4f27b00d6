// One visitor HTTP request carried to a local HTTP server on the device, and its response carried
// back, both streamed: an SSE feed flows event by event, a 1 GiB download never sits in memory
// (the stream's credit window paces how fast we read the target), and when the visitor goes away
// the request to the target is aborted at once so the target's connection is freed.
import { headerProblem, MAX_DATA_CHUNK, type MuxStream, type StreamOpen } from '../../shared/protocol/streams.ts';
import { headerValue, requestHeaders, responseHeaders } from './headers.ts';
import { authority, describeFailure, timeoutFailure, type ProxyDeps, type Session, type Target, type TargetFailure } from './target.ts';

export type HttpOpen = Extract<StreamOpen, { kind: 'http' }>;

export interface HttpDeps extends ProxyDeps {
  fetch: typeof fetch;
}

/** fetch refuses a body on these. */
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
  // A reset from the hub (the visitor left, the socket dropped) stops the fetch.
  stream.onReset(visitorGone);

  const run = async () => {
    const method = open.method.toUpperCase();
    const declared = parseLength(headerValue(open.headers, 'content-length'));
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
    const url = `http://${authority(target)}${open.path}`;
    let res: Response;
    try {
      res = await deps.fetch(url, {
        method,
        headers: requestHeaders(open.headers, { host: authority(target), hasBody: body !== null }),
        body,
        redirect: 'manual',
        signal: controller.signal,
        // Bun extensions: pass compressed bytes through untouched (so Content-Encoding and
        // Content-Length stay true), and never send a device-local request through a proxy
        // from the environment (HTTP_PROXY would otherwise apply even to 127.0.0.1).
        decompress: false,
        proxy: false,
        duplex: 'half',
      } as RequestInit);
    } catch (e) {
      if (badBody) fail({ code: 'BAD_REQUEST', message: badBody });
      else if (timedOut) fail(timeoutFailure(target, deps.connectTimeoutMs, 'response'));
      else if (!ended) fail(describeFailure(e, target));
      return;
    }
    clearTimeout(timer);
    if (ended) {
      await res.body?.cancel().catch(() => {});
      return;
    }

    const headers = responseHeaders(res.headers);
    // Past the stream head limits (those of StreamAcceptSchema) accept() would throw.
    const tooLarge = headerProblem(headers);
    if (tooLarge) {
      await res.body?.cancel().catch(() => {});
      return fail({ code: 'TARGET_ERROR', message: `${authority(target)} sent a response head too large for a tunnel: ${tooLarge}` });
    }
    const expectBody = method !== 'HEAD' && !NO_BODY_STATUS.has(res.status);
    const expected = expectBody ? parseLength(res.headers.get('content-length')) : null;
    if (!expectBody || (expected !== null && expected <= MAX_DATA_CHUNK)) {
      // Small and of known length: the whole response rides in the ACCEPT frame (one frame, and
      // the hub answers with bytes instead of pumping a stream).
      const body = expectBody && expected ? new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0))) : undefined;
      if (!expectBody) await res.body?.cancel().catch(() => {});
      if (ended) return;
      if (expectBody && (body?.byteLength ?? 0) !== expected) {
        return fail({ code: 'TARGET_ERROR', message: `${authority(target)} sent ${body?.byteLength ?? 0} of the ${expected} bytes it announced` });
      }
      ended = true;
      stream.accept({ status: res.status, headers }, { body, fin: true });
      return;
    }
    stream.accept({ status: res.status, headers });
    const writer = stream.writable.getWriter();
    let sent = 0;
    if (res.body && expectBody) {
      const source = res.body.getReader();
      try {
        for (;;) {
          await writer.ready.catch(() => Promise.reject(new VisitorGone()));
          const next = await source.read();
          if (next.done) break;
          sent += next.value.byteLength;
          // Not awaited: writer.ready is the backpressure signal, and a failed write shows there.
          writer.write(next.value).catch(() => {});
        }
      } catch (e) {
        void source.cancel().catch(() => {});
        if (e instanceof VisitorGone || ended) return visitorGone();
        return fail({ code: 'TARGET_ERROR', message: `${authority(target)} broke off the response after ${sent} bytes` });
      }
    } else {
      await res.body?.cancel().catch(() => {});
    }
    if (expected !== null && sent !== expected) {
      return fail({ code: 'TARGET_ERROR', message: `${authority(target)} sent ${sent} of the ${expected} bytes it announced` });
    }
    ended = true;
    await writer.close().catch(() => {});
  };

  const done = run()
    .catch((e) => fail({ code: 'TARGET_ERROR', message: e instanceof Error ? e.message : String(e) }))
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

function parseLength(value: string | null | undefined): number | null {
  if (value == null || !/^\d{1,15}$/.test(value.trim())) return null;
  return Number(value.trim());
}

/** Reads and discards whatever the visitor sends (nothing, for a GET) until the stream ends. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  for (;;) if ((await reader.read()).done) return;
}

/**
 * The visitor's upload as fetch's request body, pulled only as fast as the target takes it
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

