// Ships the spool to the hub: batches of unbatched lines, at most one partial batch a second (a
// full one goes at once), a few in flight at a time, each removed from the spool only by its
// `logs_ack`. A reconnect re-sends every unacknowledged batch as it was (same boot, seq and lines:
// the hub stores a (boot, seq) once). Offline, nothing is batched: the lines wait in the spool.
import { MAX_LOG_BATCH, type LogAck } from '../../shared/protocol/logs.ts';
import type { SendToHub } from '../capability.ts';
import type { Spool } from './spool.ts';

/** Batches sent and not yet acknowledged, at most. */
export const SHIP_WINDOW = 4;
/** How long lines wait for company before a partial batch goes. */
export const SHIP_INTERVAL_MS = 1_000;

export class Shipper {
  private send: SendToHub | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight = new Set<number>();
  private closed = false;

  constructor(private readonly spool: Spool, private readonly intervalMs = SHIP_INTERVAL_MS) {}

  /** The hub is there: what it has not acknowledged goes again, then new batches. */
  online(send: SendToHub): void {
    this.send = send;
    this.inFlight.clear();
    for (const batch of this.spool.unacked()) {
      if (!this.deliver(batch.seq, () => send(batch))) return;
    }
    this.pump(false);
  }

  offline(): void {
    this.send = null;
    this.inFlight.clear();
  }

  /** Lines were spooled: ship now if a batch is full, else within the interval. */
  spooled(): void {
    this.pump(false);
  }

  ack(ack: LogAck): void {
    if (ack.boot !== this.spool.boot) return;
    this.inFlight.delete(ack.seq);
    if (this.spool.ack(ack.seq)) this.pump(false);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Sends batches while the window has room: full ones always, a partial one when `due`. */
  private pump(due: boolean): void {
    while (this.send && !this.closed && this.inFlight.size < SHIP_WINDOW) {
      const pending = this.spool.pendingLines;
      if (pending === 0) return;
      if (!due && pending < MAX_LOG_BATCH.lines && !this.spool.pendingFull) return this.later();
      const batch = this.spool.takeBatch();
      if (!batch) return;
      const send = this.send;
      if (!this.deliver(batch.seq, () => send(batch))) return;
      due = false;
    }
  }

  private deliver(seq: number, go: () => boolean): boolean {
    if (!go()) {
      // The socket is gone; onGone follows and the next hello re-sends it.
      this.send = null;
      return false;
    }
    this.inFlight.add(seq);
    return true;
  }

  private later(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump(true);
    }, this.intervalMs);
    this.timer.unref?.();
  }
}
