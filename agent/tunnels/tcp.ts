// A TCP connection from a `pirelay tcp` client carried to a local TCP service on the device
// (ssh, a database, a game server). Bytes toward the target pass through as the same views;
// bytes from it that arrive in one turn of the event loop are joined into one frame. Each
// direction is paced by the other's backpressure (the stream's credit one way, the socket's send
// buffer the other), and each direction closes on its own, so a client can send its request,
// half-close, and still read the whole reply.
import type { Socket, TCPSocketConnectOptions } from 'bun';
import { joinBytes } from '../../shared/bytes.ts';
import { MAX_DATA_CHUNK } from '../../shared/protocol/flow.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { authority, describeFailure, timeoutFailure, unbracket, type ProxyDeps, type Session, type Target, type TargetFailure } from './target.ts';
import { ResetCode } from '../../shared/codes.ts';

export type Connect = (options: TCPSocketConnectOptions<undefined>) => Promise<Socket<undefined>>;

export interface TcpDeps extends ProxyDeps {
  connect: Connect;
}

export function proxyTcp(stream: MuxStream, target: Target, deps: TcpDeps): Session {
  const writer = stream.writable.getWriter();
  let socket: Socket<undefined> | null = null;
  /** Reset (by us, the hub or the target): both directions are over. */
  let dead = false;
  /** The target sent FIN and everything before it went into the stream. */
  let targetEnded = false;
  /** The hub half-closed and we passed the FIN on to the target. */
  let visitorEnded = false;
  let paused = false;
  let drained: (() => void) | null = null;
  let settle!: () => void;
  const socketGone = new Promise<void>((resolve) => (settle = resolve));
  let pumpDone: Promise<void> = Promise.resolve();
  /** Target → visitor bytes read in this turn of the event loop, not yet written to the stream. */
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let flushScheduled = false;

  /** Writes what was read as one chunk; pauses the target while the hub is behind. */
  const flush = (s: Socket<undefined>) => {
    flushScheduled = false;
    if (dead || !pendingBytes) return;
    const chunk = joinBytes(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    // Not awaited: desiredSize/ready is the backpressure signal, and failures show on `closed`.
    writer.write(chunk).catch(() => {});
    // One chunk waiting on credit is normal; a second one means the hub is behind, so
    // stop reading and let the target's send buffer fill instead of our memory.
    if (!paused && (writer.desiredSize ?? 0) < 0) {
      paused = true;
      s.pause();
      writer.ready.then(
        () => {
          paused = false;
          if (!dead) s.resume();
        },
        () => {},
      );
    }
  };

  const wake = () => {
    const resume = drained;
    drained = null;
    resume?.();
  };
  const end = () => {
    dead = true;
    clearTimeout(connectTimer);
    wake();
    // Not connected yet: `open` will terminate a late socket; the session is over now.
    if (socket) socket.terminate();
    else settle();
  };
  const fail = (failure: TargetFailure) => {
    if (dead) return;
    deps.log.debug('tcp tunnel failed', { target: authority(target), code: failure.code, reason: failure.message });
    stream.reset(failure.code, failure.message);
    end();
  };
  const visitorGone = () => {
    if (!dead) end();
  };

  const connectTimer = setTimeout(() => fail(timeoutFailure(target, deps.connectTimeoutMs)), deps.connectTimeoutMs);
  // A reset from the hub errors whichever directions are still open.
  writer.closed.catch(visitorGone);

  /** Visitor → target: one stream chunk at a time, waiting out a full send buffer. */
  const pumpToTarget = async (s: Socket<undefined>) => {
    const reader = stream.readable.getReader();
    for (;;) {
      const next = await reader.read().catch(() => null);
      if (!next) return visitorGone();
      if (next.done) break;
      const chunk = next.value;
      let offset = 0;
      while (offset < chunk.byteLength) {
        if (dead) return;
        const n = s.write(chunk, offset, chunk.byteLength - offset);
        if (n < 0) return; // closed under us; the close handler says why
        offset += n;
        // Until `drain`, we read nothing more, so the hub's credit runs out and it stops too.
        if (offset < chunk.byteLength) await new Promise<void>((resolve) => (drained = resolve));
      }
    }
    if (dead) return;
    visitorEnded = true;
    // FIN to the target; its reply still flows back until it sends its own FIN. (Bun's end()
    // would close both directions; shutdown() is the half-close.)
    s.shutdown();
  };

  deps
    .connect({
      hostname: unbracket(target.host),
      port: target.port,
      // Without this a FIN from one side would close both.
      allowHalfOpen: true,
      socket: {
        binaryType: 'uint8array',
        open(s) {
          clearTimeout(connectTimer);
          if (dead) return s.terminate();
          socket = s;
          stream.accept({});
          pumpDone = pumpToTarget(s);
        },
        data(s, chunk) {
          if (dead) return;
          // What one turn of the event loop reads goes out as one frame (up to MAX_DATA_CHUNK):
          // the relay pays per WebSocket message, so a bulk transfer should not come in 64 KiB bits.
          pending.push(chunk);
          pendingBytes += chunk.byteLength;
          if (pendingBytes >= MAX_DATA_CHUNK) flush(s);
          else if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(() => flush(s));
          }
        },
        drain() {
          wake();
        },
        end(s) {
          if (dead || targetEnded) return;
          targetEnded = true;
          flush(s);
          writer.close().catch(() => {});
        },
        close(s, error) {
          wake();
          // After our shutdown(), Bun reports the target's FIN as a close without `end`.
          if (!error && visitorEnded && !targetEnded && !dead) {
            targetEnded = true;
            flush(s);
            writer.close().catch(() => {});
          }
          if (!dead && !(targetEnded && visitorEnded)) {
            fail(error ? describeFailure(error, target) : { code: ResetCode.TARGET_ERROR, message: `${authority(target)} closed the connection` });
          }
          dead = true;
          settle();
        },
        error(_s, error) {
          fail(describeFailure(error, target));
        },
        connectError(_s, error) {
          clearTimeout(connectTimer);
          fail(describeFailure(error, target));
          settle();
        },
      },
    })
    .catch((e) => {
      clearTimeout(connectTimer);
      fail(describeFailure(e, target));
      settle();
    });

  const done = (async () => {
    await socketGone;
    await pumpDone;
  })();
  return {
    abort(code, message) {
      if (dead) return;
      stream.reset(code, message);
      end();
    },
    done,
  };
}
