// A visitor's WebSocket carried to a local WebSocket server on the device. The hub has already
// done the visitor's handshake; here the agent makes its own to the target, and the two are
// joined message for message: each text, binary or close travels as a ws-record on the stream.
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { WebSocketOpen } from '../../shared/protocol/tunnels.ts';
import { encodeWsRecord, wsClosePayload, WsRecordDecoder, WsRecordKind } from '../../shared/protocol/ws-records.ts';
import { requestHeaders } from './headers.ts';
import { authority, describeFailure, timeoutFailure, type ProxyDeps, type Session, type Target, type TargetFailure } from './target.ts';
import { ResetCode } from '../../shared/codes.ts';

/**
 * A target's messages cannot be paused (the WebSocket API has no backpressure), so what the
 * visitor has not taken yet is queued here; past this much we give up on that visitor rather
 * than on the device's memory.
 */
const MAX_QUEUED_TO_VISITOR = 16 * 1024 * 1024;
/** Stop reading the stream (and so stop granting the hub credit) while this much is unsent. */
const MAX_BUFFERED_TO_TARGET = 1024 * 1024;
/** After the target closed, how long the visitor has to finish its side of the closing. */
const CLOSE_GRACE_MS = 10_000;

export function proxyWebSocket(stream: MuxStream, open: WebSocketOpen, target: Target, deps: ProxyDeps): Session {
  const url = `ws://${authority(target)}${open.path}`;
  const writer = stream.writable.getWriter();
  /** The stream was reset (by us or by the hub): nothing more goes either way. */
  let dead = false;
  let opened = false;
  let visitorDone = false;
  let lastError = '';
  let queued = 0;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  let settleTarget!: () => void;
  const targetClosed = new Promise<void>((resolve) => (settleTarget = resolve));
  let pumpDone: Promise<void> = Promise.resolve();

  const options: Bun.WebSocketOptions = {
    headers: requestHeaders(open.headers, { host: authority(target), websocket: true }),
    protocols: open.protocols,
    // Compressing over loopback only costs the device CPU.
    perMessageDeflate: false,
  };
  // The DOM typing of the constructor does not know Bun's options object.
  const ws = new WebSocket(url, options as unknown as string[]);
  ws.binaryType = 'arraybuffer';

  const closeTarget = (code?: number, reason?: string) => {
    if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
    try {
      if (code !== undefined && isSendableCloseCode(code)) ws.close(code, truncateReason(reason ?? ''));
      else ws.close();
    } catch {
      ws.close();
    }
  };
  const end = () => {
    dead = true;
    clearTimeout(connectTimer);
    clearTimeout(graceTimer);
  };
  const fail = (failure: TargetFailure) => {
    if (dead) return;
    end();
    deps.log.debug('websocket tunnel failed', { target: authority(target), code: failure.code, reason: failure.message });
    stream.reset(failure.code, failure.message);
    closeTarget(1011, 'tunnel failed');
  };
  const visitorGone = () => {
    if (dead || (visitorDone && ws.readyState === WebSocket.CLOSED)) return;
    end();
    closeTarget(1001, 'visitor went away');
  };

  const connectTimer = setTimeout(() => fail(timeoutFailure(target, deps.connectTimeoutMs)), deps.connectTimeoutMs);
  // A reset from the hub errors whichever directions are still open.
  writer.closed.catch(visitorGone);

  const toVisitor = (kind: WsRecordKind, payload: Uint8Array | string) => {
    if (dead) return;
    let record: Uint8Array;
    try {
      record = encodeWsRecord(kind, payload);
    } catch (e) {
      closeTarget(1009, 'message too big');
      return fail({ code: ResetCode.TARGET_ERROR, message: `the target sent a message the tunnel cannot carry: ${e instanceof Error ? e.message : String(e)}` });
    }
    queued += record.byteLength;
    if (queued > MAX_QUEUED_TO_VISITOR) {
      fail({ code: ResetCode.TARGET_ERROR, message: `the visitor fell ${MAX_QUEUED_TO_VISITOR >> 20} MiB behind the target's messages` });
      return;
    }
    writer.write(record).then(() => (queued -= record.byteLength), visitorGone);
  };

  const pumpToTarget = async () => {
    const reader = stream.readable.getReader();
    const decoder = new WsRecordDecoder();
    for (;;) {
      // A reset from the hub errors the readable: the visitor is gone.
      const next = await reader.read().catch(() => null);
      if (!next) return visitorGone();
      if (next.done) break;
      let records;
      try {
        records = decoder.push(next.value);
      } catch (e) {
        return fail({ code: ResetCode.TARGET_ERROR, message: `bad websocket record from the relay: ${e instanceof Error ? e.message : String(e)}` });
      }
      for (const record of records) {
        if (ws.readyState !== WebSocket.OPEN) continue;
        if (record.kind === 'text') ws.send(record.text);
        else if (record.kind === 'binary') ws.send(record.data);
        else closeTarget(record.code, record.reason);
      }
      // Not reading is how the hub is told to slow down: its credit runs out.
      while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount > MAX_BUFFERED_TO_TARGET) await Bun.sleep(5);
    }
    // The visitor's side is over; its close record, if it sent one, was relayed just above.
    visitorDone = true;
    clearTimeout(graceTimer);
    closeTarget(1000);
  };

  ws.addEventListener('open', () => {
    clearTimeout(connectTimer);
    if (dead) return closeTarget(1001, 'visitor went away');
    opened = true;
    stream.accept(ws.protocol ? { status: 101, protocol: ws.protocol } : { status: 101 });
    pumpDone = pumpToTarget();
  });
  ws.addEventListener('message', (ev) => {
    const data = ev.data as string | ArrayBuffer;
    if (typeof data === 'string') toVisitor(WsRecordKind.TEXT, data);
    else toVisitor(WsRecordKind.BINARY, new Uint8Array(data));
  });
  ws.addEventListener('error', (ev) => {
    lastError = (ev as ErrorEvent).message ?? '';
  });
  ws.addEventListener('close', (ev) => {
    settleTarget();
    clearTimeout(connectTimer);
    if (!opened) {
      // "Expected 101 status code: 404" means the target is up but refused the upgrade.
      if (/status code/i.test(lastError)) fail({ code: ResetCode.TARGET_ERROR, message: `${authority(target)} refused the WebSocket upgrade: ${lastError}` });
      else fail(lastError && !/failed to connect/i.test(lastError) ? describeFailure({ message: lastError }, target) : { code: ResetCode.TARGET_REFUSED, message: `connect ECONNREFUSED ${authority(target)}` });
      return;
    }
    if (dead) return;
    toVisitor(WsRecordKind.CLOSE, wsClosePayload(ev.code || 1005, ev.reason));
    writer.close().catch(() => {});
    // The visitor answers the close through the hub; if it never does, do not wait forever.
    if (!visitorDone) graceTimer = setTimeout(() => fail({ code: ResetCode.TARGET_ERROR, message: 'the visitor did not finish closing' }), CLOSE_GRACE_MS);
  });

  const done = (async () => {
    await targetClosed;
    await pumpDone;
    clearTimeout(graceTimer);
  })();
  return {
    abort(code, message) {
      if (dead) return;
      end();
      stream.reset(code, message);
      closeTarget(1001, message);
    },
    done,
  };
}

/** Close codes a client may send; the rest (1005, 1006, 1015…) only describe a close. */
function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** A close reason may be at most 123 bytes of UTF-8, or close() throws. */
function truncateReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.byteLength <= 123) return reason;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, '');
}
