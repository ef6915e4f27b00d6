// A fixed-window request counter kept in isolate memory, for limits that guard the relay rather
// than promise a quota: cheap (no D1 write per call), but each isolate counts on its own, so a
// caller spread over several isolates (or colos) may get up to that many times the limit.
export class RateWindow {
  private windows = new Map<string, { start: number; count: number }>();
  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** Counts one call for `key`; returns 0 if allowed, else the seconds until the window resets. */
  hit(key: string, now = Date.now()): number {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      if (!w && this.windows.size >= this.maxKeys) this.windows.clear();
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    if (w.count <= this.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
  }

  /** The seconds until `key`'s window resets if it is over the limit, else 0; counts nothing. */
  exceeded(key: string, now = Date.now()): number {
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs || w.count < this.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
  }
}
