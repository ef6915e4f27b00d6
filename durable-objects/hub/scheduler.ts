// One alarm, many named deadlines. A Durable Object has a single alarm, yet a hub needs several
// wake-ups (the agent's heartbeat check, the last-seen refresh in D1, later rollups and run
// deadlines): each is a named time kept in storage, and the alarm is set to the earliest. Kept in
// storage, not memory, so a hub that hibernated or restarted still wakes when one is due, and only
// then: a deadline nobody set costs no wake-up.

/** Runs when its deadline is due; it may set deadlines again (its own too). */
export type DeadlineHandler = (now: number) => Promise<void> | void;

const KEY = 'scheduler:deadlines';

export class Scheduler {
  /** Name → when (ms), as stored; loaded on first use. */
  private due: Record<string, number> | null = null;
  /** While run() fires handlers, it saves and re-arms once at the end. */
  private running = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly handlers: Readonly<Record<string, DeadlineHandler>>,
  ) {}

  /** Sets (or moves) the named deadline. */
  async at(name: string, when: number): Promise<void> {
    const due = await this.load();
    if (due[name] === when) return;
    due[name] = when;
    await this.save();
  }

  /**
   * Sets the named deadline to `when` unless it is already due by then: the deadline of the
   * earliest of many things (watchers' credential expiries), compared and set in one step so two
   * callers cannot leave it at the later of their times.
   */
  async atOrBefore(name: string, when: number): Promise<void> {
    const due = await this.load();
    const current = due[name];
    if (current !== undefined && current <= when) return;
    due[name] = when;
    await this.save();
  }

  async cancel(name: string): Promise<void> {
    const due = await this.load();
    if (!(name in due)) return;
    delete due[name];
    await this.save();
  }

  /** When the named deadline is due, if it is set. */
  async when(name: string): Promise<number | null> {
    return (await this.load())[name] ?? null;
  }

  /** The alarm handler: fires every due deadline (each is cleared before its handler runs), then re-arms. */
  async run(now = Date.now()): Promise<void> {
    const due = await this.load();
    this.running = true;
    try {
      for (const [name, when] of Object.entries(due)) {
        if (when > now) continue;
        delete due[name];
        const handler = this.handlers[name];
        if (!handler) continue; // a deadline of an older deploy: forget it
        try {
          await handler(now);
        } catch (e) {
          // One failing deadline must not keep the others from firing; it is not retried.
          console.error(`Scheduler: deadline ${name} failed`, e);
        }
      }
    } finally {
      this.running = false;
      await this.save();
    }
  }

  private async load(): Promise<Record<string, number>> {
    this.due ??= (await this.storage.get<Record<string, number>>(KEY)) ?? {};
    return this.due;
  }

  private async save(): Promise<void> {
    if (this.running || !this.due) return;
    const times = Object.values(this.due);
    if (times.length) {
      await this.storage.put(KEY, this.due);
      await this.storage.setAlarm(Math.min(...times));
    } else {
      await this.storage.delete(KEY);
      await this.storage.deleteAlarm();
    }
  }
}
