// A slow source (the Docker API, systemctl, nvidia-smi, statfs of every mount) read on its own
// period rather than with every sample: the sampler takes what it last answered, and a stale value
// starts a refresh in the background, so a 1 s sample never waits for a process spawn or a socket.
// Only the very first read is awaited, so the first sample does not report "absent" for a source
// that is merely slow to answer. The read never throws: each source turns its failures into a value.
export class Periodic<T> {
  private value: T;
  private readAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly everyMs: number,
    private readonly now: () => number,
    initial: T,
  ) {
    this.value = initial;
  }

  async get(): Promise<T> {
    if (this.readAt === Number.NEGATIVE_INFINITY) await this.refresh();
    else if (this.now() - this.readAt >= this.everyMs) void this.refresh();
    return this.value;
  }

  /** The next get() reads afresh (the watched names changed). */
  expire(): void {
    this.readAt = Number.NEGATIVE_INFINITY;
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.read()
      .then((value) => {
        this.value = value;
      })
      .catch(() => {})
      .finally(() => {
        this.readAt = this.now();
        this.inflight = null;
      });
    return this.inflight;
  }
}
