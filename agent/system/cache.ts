// Memoises an async read for a while: facts such as the hostname or the MAC barely change, and
// re-reading them on every device_info call would spend the RPC's time budget for nothing.
// Concurrent callers share one read; a failed read is not cached.
export function cacheFor<T>(read: () => Promise<T>, maxAgeMs: number, now: () => number): () => Promise<T> {
  let value: Promise<T> | null = null;
  let readAt = Number.NEGATIVE_INFINITY;
  return () => {
    if (value === null || now() - readAt >= maxAgeMs) {
      readAt = now();
      const pending = read();
      value = pending;
      pending.catch(() => {
        if (value === pending) value = null;
      });
    }
    return value;
  };
}
