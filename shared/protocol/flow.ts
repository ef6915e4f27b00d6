// Flow control of the stream mux (mux.ts), like HTTP/2's: the window constants, the socket-wide
// credit (a second window on stream 0) and a stream's receive window with its auto-tuning. They
// are base classes of the mux's Link and Stream rather than objects of their own, so the data
// path reads the same fields as before and no stream costs an extra allocation.
//
// A sender never has more unacknowledged DATA bytes in flight than the window its peer granted
// (INITIAL_WINDOW at open, then WINDOW frames as the receiver's consumer reads; a reader that
// keeps up on a fast link has its window doubled, up to MAX_STREAM_WINDOW). The socket cap is
// granted back as soon as DATA is *received* (its memory is already bounded by the stream
// windows), so it bounds what sits in the socket and on the network, not what slow readers hold,
// and a few streams nobody reads can never block the others.

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
/** The largest window (or credit) either side may grant: 2^31-1, as in HTTP/2. */
export const MAX_CREDIT = 0x7fffffff;

/** Socket-wide credit: what this side may still send, who waits for more, and what it owes the peer. */
export abstract class SocketCredit {
  /** DATA bytes this side may still send before the peer confirms it received earlier ones. */
  socketCredit: number;
  private socketWaiters: (() => void)[] = [];
  /** DATA bytes received and not yet granted back to the peer. */
  private socketUnacked = 0;

  constructor(readonly maxBuffered: number) {
    this.socketCredit = maxBuffered;
  }

  abstract report(message: string): void;

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

  /** A new socket starts with nothing in flight either way. */
  restoreSocketCredit(): void {
    this.socketUnacked = 0;
    this.socketCredit = this.maxBuffered;
    this.wakeSocketWaiters();
  }

  /** DATA bytes arrived: the socket credit to grant back now, in batches of SOCKET_ACK_BYTES; 0 for none yet. */
  socketAckFor(bytes: number): number {
    this.socketUnacked += bytes;
    if (this.socketUnacked < SOCKET_ACK_BYTES) return 0;
    const n = this.socketUnacked;
    this.socketUnacked = 0;
    return n;
  }

  private wakeSocketWaiters(): void {
    const waiters = this.socketWaiters;
    this.socketWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** What a socket's streams share for window auto-tuning. */
export interface WindowPool {
  /** The window each stream starts with. */
  readonly window: number;
  /** How far one stream's window may grow. */
  readonly maxWindow: number;
  /** Window growth still available to streams whose readers keep up. */
  growthBudget: number;
  readonly now: () => number;
}

/**
 * One stream's receive window: the credit the peer still has, and the grants as the consumer
 * reads. A reader that has taken everything queued, on a link that brought the last quarter
 * window within WINDOW_GROWTH_PERIOD_MS, is limited by the window: it doubles (within the pool's
 * growth budget). Slow readers and slow links never grow.
 */
export class ReceiveWindow {
  /** DATA bytes the peer may still send on this stream. */
  protected recvCredit: number;
  private consumed = 0;
  /** This stream's receive window: pool.window, grown while the reader keeps up. */
  private window: number;
  /** When this stream last granted credit (or opened), for window auto-tuning. */
  private grantedAt: number;

  constructor(pool: WindowPool) {
    this.recvCredit = pool.window;
    this.window = pool.window;
    this.grantedAt = pool.now();
  }

  /**
   * `n` bytes reached the consumer (`drained`: nothing else is queued): the WINDOW to grant now,
   * in batches of a quarter window so a slow reader stops the sender; 0 for none yet.
   */
  protected grantFor(n: number, drained: boolean, pool: WindowPool): number {
    this.consumed += n;
    if (this.consumed < this.window >>> 2) return 0;
    const now = pool.now();
    const quick = now - this.grantedAt <= WINDOW_GROWTH_PERIOD_MS;
    this.grantedAt = now;
    let grant = this.consumed;
    if (quick && drained && this.window < pool.maxWindow && pool.growthBudget >= this.window) {
      pool.growthBudget -= this.window;
      grant += this.window;
      this.window *= 2;
    }
    this.recvCredit += grant;
    this.consumed = 0;
    return grant;
  }

  /** The stream is gone: what its window grew goes back to the pool. */
  protected releaseGrowth(pool: WindowPool): void {
    pool.growthBudget += this.window - pool.window;
  }
}
