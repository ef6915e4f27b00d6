// Deadlines swept by one timer: a hub carrying thousands of requests a second gives each a
// deadline (its ACCEPT must come in time), and a timer per request cost more than some of the
// request's own work. Entries fire at most `tick` late; each hub has its own set (a timer belongs
// to the Durable Object whose code armed it).

export interface Deadline {
  /** Starts the wait over (e.g. the upload made progress, so the target is not stuck yet). */
  extend(): void;
  cancel(): void;
}

interface Entry {
  at: number;
  readonly ms: number;
  readonly fire: () => void;
}

export class Deadlines {
  private readonly entries = new Set<Entry>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly tickMs = 250,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Calls `fire` once, `ms` from now (up to one tick later), unless cancelled first. */
  add(ms: number, fire: () => void): Deadline {
    const entry: Entry = { at: this.now() + ms, ms, fire };
    this.entries.add(entry);
    this.arm();
    return {
      extend: () => {
        entry.at = this.now() + entry.ms;
      },
      cancel: () => {
        this.entries.delete(entry);
      },
    };
  }

  /** Fires what is due; the timer calls it, tests may too. */
  sweep(): void {
    const now = this.now();
    for (const entry of this.entries) {
      if (entry.at > now) continue;
      this.entries.delete(entry);
      try {
        entry.fire();
      } catch {
        // One failing callback must not keep the others from firing.
      }
    }
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sweep();
      if (this.entries.size) this.arm();
    }, this.tickMs);
  }
}
