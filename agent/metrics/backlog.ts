// The samples the hub has not acknowledged, as the points a `metrics_backlog` carries: each one's
// seq, timestamp and series (shared/api/series.ts), kept as its JSON text (a few hundred bytes,
// a quarter of the object it parses to) in a ring of at most MAX_BACKLOG_POINTS; when it is full
// the oldest is dropped and counted, and the next chunk says how many. An ack drops everything up
// to its seq. Order is the whole contract: the hub's ack of seq N means every point up to N is
// stored, so points leave in seq order, each sent once per connection (`sentUpTo`).
import type { BacklogPoint } from '../../shared/protocol/metrics.ts';
import { MAX_BACKLOG_CHUNK, MAX_BACKLOG_POINTS } from '../../shared/protocol/metrics.ts';

interface Held {
  seq: number;
  json: string;
}

export class Backlog {
  private ring: (Held | undefined)[];
  private head = 0;
  private count = 0;
  /** Points dropped since the last chunk that went out. */
  dropped = 0;
  /** Highest seq sent on this connection; what is above it has not been. */
  sentUpTo = 0;

  constructor(private readonly capacity = MAX_BACKLOG_POINTS) {
    this.ring = new Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Points held and not yet sent on this connection. */
  get unsent(): number {
    let n = 0;
    for (let i = this.count - 1; i >= 0 && this.at(i).seq > this.sentUpTo; i--) n++;
    return n;
  }

  add(point: BacklogPoint): void {
    if (this.count === this.capacity) {
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      this.dropped++;
    }
    this.ring[(this.head + this.count) % this.capacity] = { seq: point.seq, json: JSON.stringify(point) };
    this.count++;
  }

  /** The hub stored everything up to seq. */
  ack(seq: number): void {
    while (this.count > 0 && this.at(0).seq <= seq) {
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
    }
  }

  /** A new connection: everything held goes again. */
  resend(): void {
    this.sentUpTo = 0;
  }

  /** The oldest unsent points, at most a chunk, marked sent. */
  takeChunk(): BacklogPoint[] {
    const out: BacklogPoint[] = [];
    for (let i = 0; i < this.count && out.length < MAX_BACKLOG_CHUNK; i++) {
      const held = this.at(i);
      if (held.seq <= this.sentUpTo) continue;
      out.push(JSON.parse(held.json) as BacklogPoint);
    }
    if (out.length) this.sentUpTo = out[out.length - 1]!.seq;
    return out;
  }

  private at(i: number): Held {
    return this.ring[(this.head + i) % this.capacity]!;
  }
}
