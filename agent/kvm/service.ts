// The KVM capability's working part, loaded with its first call (index.ts): who holds which key,
// the reports written to the gadgets, the mouse and the type jobs. Everything that presses a key
// goes through here, so the rules hold for every caller (RPC, each `hid` stream):
// - A key is down while at least one holder holds it: a REST hold (lease, renewed by another
//   key-down), a `hid` stream (until it ends), or a keystroke (for its press). When the last holder
//   lets go the key is released, so a holder that goes away never leaves a key stuck.
// - Each keyboard report is the whole state, written in order through one queue. A write that
//   fails leaves the state as intended (a failed press is undone; a failed release stays released)
//   and a resync writes the current state again until the gadget takes it, so a release the host
//   missed is delivered as soon as it can be.
// - The mouse is coalesced: while a report is being written, a newer position replaces the one
//   waiting (a burst never queues); a change of buttons is never merged away, so clicks survive.
// - A type job owns the keyboard while it types: it releases every held key first (a held Shift
//   would garble the text), and keystrokes and key-downs are refused with TYPE_BUSY until it ends.
import { HID_USAGES, isKeyCode, isModifier, MODIFIER_BITS, MODIFIER_CODES } from '../../shared/hid/keycodes.ts';
import { KeyboardState, keyboardReport, mouseReport, parseLeds, type Leds } from '../../shared/hid/reports.ts';
import type { CharPlan } from '../../shared/hid/typing.ts';
import { HOLD_LEASE, type HidState, type KvmStatus, type TypeJob } from '../../shared/protocol/kvm.ts';
import type { Logger } from '../log.ts';
import { RpcFailure } from '../rpc.ts';
import type { ScreenSource } from './screen/types.ts';
import { HidError, type HidGadgets, type HidSink } from './types.ts';

/** Whoever holds keys or buttons: the REST holds, one `hid` stream, one keystroke. Compared by identity. */
export class Holder {
  constructor(readonly name: string) {}
}

export interface MouseInput {
  buttons: number;
  x: number;
  y: number;
  wheel: number;
  hwheel: number;
}

export interface TypeRequest {
  text: string;
  layout: string;
  interval_ms?: number;
}

export interface KvmServiceOptions {
  log: Logger;
  gadgets: HidGadgets;
  /** Sees every report written (the simulated screen draws them). */
  screen: ScreenSource;
}

/** Finished type jobs kept for hid_type_status; older ones are forgotten. */
export const KEPT_TYPE_JOBS = 16;
/** Mouse reports waiting behind the one in flight; past this (button changes only) a report is refused. */
const MOUSE_QUEUE_MAX = 64;
/** A resync after a failed write: first retry, cap, and how many tries before waiting for the next write. */
const RESYNC = { firstMs: 100, capMs: 5_000, tries: 10 } as const;

const RELEASED = keyboardReport(0, []);

/**
 * Writes a gadget's current state again after a failed write (every report is the whole state,
 * so one that gets through puts the host right), with backoff, until one does or the tries run
 * out; the next failure of an ordinary write starts it again.
 */
class Resync {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private tries = 0;

  constructor(
    /** Something else is being written (or typed): that write carries the state; wait. */
    private readonly busy: () => boolean,
    private readonly write: () => Promise<void>,
  ) {}

  failed(): void {
    if (this.timer || this.running) return;
    this.tries = 0;
    this.schedule();
  }

  private schedule(): void {
    if (this.tries >= RESYNC.tries) return;
    const delay = Math.min(RESYNC.capMs, RESYNC.firstMs * 2 ** this.tries++);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.busy()) return this.schedule();
      this.running = true;
      this.write().then(
        () => (this.running = false),
        () => {
          this.running = false;
          this.schedule();
        },
      );
    }, delay);
  }
}

interface Job {
  view: TypeJob;
  chars: CharPlan[];
  intervalMs: number;
  holder: Holder | null;
  cancelled: boolean;
  /** Set when the job must stop with an error (the connection went): it ends failed. */
  stop: { code: string; message: string } | null;
  finished: Promise<void>;
}

interface MouseItem {
  state: MouseInput;
  holder: Holder;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

function sleep(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** What a failed write tells the caller: the gadget's HidError code and its path. */
function writeFailure(e: unknown, sink: HidSink): RpcFailure {
  if (e instanceof HidError) return new RpcFailure(e.code, e.message, { path: e.path });
  return new RpcFailure('HID_ERROR', e instanceof Error ? e.message : String(e), { path: sink.path });
}

/** Two mouse reports as one, when nothing is lost: the same buttons, and wheels that still fit a byte. */
function merged(a: MouseInput, b: MouseInput): MouseInput | null {
  if (a.buttons !== b.buttons) return null;
  const wheel = a.wheel + b.wheel;
  const hwheel = a.hwheel + b.hwheel;
  if (Math.abs(wheel) > 127 || Math.abs(hwheel) > 127) return null;
  return { buttons: b.buttons, x: b.x, y: b.y, wheel, hwheel };
}

export class KvmService {
  /** The REST holds (hid_key down with a lease; hid_mouse buttons). */
  readonly rest = new Holder('rest');
  private readonly log: Logger;
  private readonly gadgets: HidGadgets;
  private readonly screen: ScreenSource;

  private readonly keys = new KeyboardState();
  private readonly owners = new Map<string, Set<Holder>>();
  private readonly leases = new Map<string, ReturnType<typeof setTimeout>>();
  private leds: Leds | null = null;
  private readonly listeners = new Set<() => void>();

  private keyboardQueue: Promise<unknown> = Promise.resolve();
  private keyboardPending = 0;
  private readonly keyboardResync = new Resync(
    () => this.keyboardPending > 0 || this.typing !== null,
    () => this.writeKeyboard(this.keys.report()),
  );

  private readonly mouseQueue: MouseItem[] = [];
  private mouseBusy = false;
  /** The latest mouse report asked for (the position a button release goes to) and who asked. */
  private mouseLatest: MouseInput = { buttons: 0, x: 0, y: 0, wheel: 0, hwheel: 0 };
  private mouseHolder: Holder | null = null;
  private mouseLease: ReturnType<typeof setTimeout> | null = null;
  private readonly mouseResync = new Resync(
    () => this.mouseBusy,
    () => this.queueMouse(this.mouseHolder ?? this.rest, { ...this.mouseLatest, wheel: 0, hwheel: 0 }),
  );

  private readonly jobs = new Map<string, Job>();
  private typing: Job | null = null;

  constructor(options: KvmServiceOptions) {
    this.log = options.log;
    this.gadgets = options.gadgets;
    this.screen = options.screen;
    this.gadgets.onLeds((byte) => {
      this.leds = parseLeds(byte);
      this.changed();
    });
  }

  // --- what callers see ---

  hidState(): HidState {
    return { held: this.keys.held(), leds: this.leds };
  }

  status(): KvmStatus {
    const gadget = (sink: HidSink) => {
      const { state, message } = sink.state();
      return { path: sink.path, state, ...(message ? { message: message.slice(0, 1024) } : {}) };
    };
    return { ...this.hidState(), keyboard: gadget(this.gadgets.keyboard), mouse: gadget(this.gadgets.mouse), screen: this.screen.state() };
  }

  /** Calls `listener` after every change of the held keys or the LEDs; returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The codes `holder` holds. */
  heldBy(holder: Holder): string[] {
    return [...this.owners].filter(([, set]) => set.has(holder)).map(([code]) => code);
  }

  // --- the keyboard ---

  /** Presses `code` with the modifier byte `modifiers`, then releases both; keys others hold stay held. */
  async keystroke(code: string, modifiers: number): Promise<HidState> {
    this.refuseWhileTyping();
    this.knownKey(code);
    const stroke = new Holder('keystroke');
    const codes = [...MODIFIER_CODES.filter((m) => (modifiers & MODIFIER_BITS[m]) !== 0), code];
    const held: string[] = [];
    const letGo = () => held.forEach((c) => this.unhold(stroke, c));
    try {
      for (const c of codes) {
        this.hold(stroke, c);
        held.push(c);
      }
    } catch (e) {
      letGo();
      throw e;
    }
    try {
      await this.writeKeyboard(this.keys.report());
    } catch (e) {
      letGo();
      throw e;
    }
    letGo();
    await this.writeKeyboard(this.keys.report());
    return this.hidState();
  }

  /**
   * `holder` presses `code`. With `leaseMs` (REST holds) the key is released by itself when the
   * lease runs out; another down of the same key renews it without a new report.
   */
  async keyDown(holder: Holder, code: string, leaseMs?: number): Promise<HidState> {
    this.refuseWhileTyping();
    this.knownKey(code);
    const changed = this.hold(holder, code);
    if (leaseMs !== undefined) this.lease(code, leaseMs);
    if (!changed) return this.hidState();
    try {
      await this.writeKeyboard(this.keys.report());
    } catch (e) {
      // The host never saw the press: the key is not held.
      this.clearLease(holder, code);
      this.unhold(holder, code);
      throw e;
    } finally {
      this.changed();
    }
    return this.hidState();
  }

  /** `holder` lets go of `code`; the key is released unless someone else holds it too. */
  async keyUp(holder: Holder, code: string): Promise<HidState> {
    this.knownKey(code);
    this.clearLease(holder, code);
    if (!this.unhold(holder, code)) return this.hidState();
    try {
      await this.writeKeyboard(this.keys.report());
    } finally {
      this.changed();
    }
    return this.hidState();
  }

  /** Releases every key and button `holder` holds (its stream ended, or it asked to). */
  async releaseHolder(holder: Holder): Promise<void> {
    const failures: unknown[] = [];
    const released = this.heldBy(holder).filter((code) => this.unhold(holder, code));
    if (released.length) {
      await this.writeKeyboard(this.keys.report()).catch((e) => failures.push(e));
      this.changed();
    }
    if (this.mouseHolder === holder && this.mouseLatest.buttons !== 0) await this.releaseButtons(holder).catch((e) => failures.push(e));
    if (failures.length) throw failures[0];
  }

  /** Releases every key and button of every holder and cancels the text being typed. */
  async releaseAll(): Promise<HidState> {
    if (this.typing) this.typing.cancelled = true;
    this.dropKeys();
    const failures: unknown[] = [];
    await this.writeKeyboard(RELEASED).catch((e) => failures.push(e));
    this.changed();
    if (this.mouseLatest.buttons !== 0) await this.releaseButtons(this.rest).catch((e) => failures.push(e));
    if (failures.length) throw failures[0];
    return this.hidState();
  }

  /** The socket to the relay is gone: nobody is left to hold anything, nor to watch a text typed. */
  gone(): void {
    if (this.typing) this.typing.stop = { code: 'CONNECTION_LOST', message: 'the connection to the relay was lost' };
    this.releaseAll().catch((e) => this.log.warn('could not release the keys and buttons after the connection went', { error: String(e) }));
  }

  private knownKey(code: string): void {
    if (!isKeyCode(code)) throw new RpcFailure('UNKNOWN_KEY', `${code} is not a key code`, { code });
  }

  private refuseWhileTyping(): void {
    const job = this.typing;
    if (job) throw new RpcFailure('TYPE_BUSY', `a text is being typed (job ${job.view.id}); cancel it or wait for it to finish`, { job: job.view.id });
  }

  /** Adds `holder` to `code`'s holders; true when that pressed the key on the keyboard. */
  private hold(holder: Holder, code: string): boolean {
    const set = this.owners.get(code);
    if (set) {
      set.add(holder);
      return false;
    }
    const change = this.keys.down(code);
    if (!change.ok) throw new RpcFailure(change.code, change.message, { code, held: this.keys.held() });
    this.owners.set(code, new Set([holder]));
    return change.changed;
  }

  /** Removes `holder` from `code`'s holders; true when that released the key on the keyboard. */
  private unhold(holder: Holder, code: string): boolean {
    const set = this.owners.get(code);
    if (!set?.delete(holder) || set.size > 0) return false;
    this.owners.delete(code);
    this.keys.up(code);
    return true;
  }

  private lease(code: string, ms: number): void {
    clearTimeout(this.leases.get(code));
    this.leases.set(code, setTimeout(() => this.expire(code), ms));
  }

  private clearLease(holder: Holder, code: string): void {
    if (holder !== this.rest) return;
    clearTimeout(this.leases.get(code));
    this.leases.delete(code);
  }

  private expire(code: string): void {
    this.leases.delete(code);
    if (!this.unhold(this.rest, code)) return;
    this.changed();
    this.writeKeyboard(this.keys.report()).catch((e) => this.log.warn('a held key whose lease ran out could not be released yet; retrying', { code, error: String(e) }));
  }

  /** Forgets every key hold (leases included): the keyboard is all released. */
  private dropKeys(): void {
    for (const timer of this.leases.values()) clearTimeout(timer);
    this.leases.clear();
    this.owners.clear();
    this.keys.releaseAll();
  }

  private changed(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (e) {
        this.log.warn('a kvm state listener failed', { error: String(e) });
      }
    }
  }

  /** Writes one keyboard report after the ones before it. On failure the gadget is resynced later. */
  private writeKeyboard(report: Uint8Array): Promise<void> {
    this.keyboardPending++;
    const sink = this.gadgets.keyboard;
    const run = async () => {
      try {
        await sink.write(report);
      } catch (e) {
        this.keyboardResync.failed();
        throw writeFailure(e, sink);
      } finally {
        this.keyboardPending--;
      }
      this.observe('keyboard', report);
    };
    const written = this.keyboardQueue.then(run);
    this.keyboardQueue = written.catch(() => {});
    return written;
  }

  private observe(gadget: 'keyboard' | 'mouse', report: Uint8Array): void {
    try {
      this.screen.observe?.(gadget, report);
    } catch (e) {
      this.log.warn('the screen failed to observe a report', { error: String(e) });
    }
  }

  // --- the mouse ---

  /** Writes a mouse report, coalesced with the ones not written yet; resolves once it (or a newer one) is. */
  mouse(holder: Holder, input: MouseInput): Promise<void> {
    if (holder === this.rest) this.leaseButtons(input.buttons);
    return this.queueMouse(holder, input);
  }

  private queueMouse(holder: Holder, input: MouseInput): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      const tail = this.mouseQueue.at(-1);
      const both = tail && merged(tail.state, input);
      if (tail && both) {
        tail.state = both;
        tail.holder = holder;
        tail.waiters.push(waiter);
      } else if (this.mouseQueue.length >= MOUSE_QUEUE_MAX) {
        return reject(new RpcFailure('MOUSE_BUSY', `the mouse is ${MOUSE_QUEUE_MAX} button changes behind; try again`, { path: this.gadgets.mouse.path }));
      } else {
        this.mouseQueue.push({ state: { buttons: input.buttons, x: input.x, y: input.y, wheel: input.wheel, hwheel: input.hwheel }, holder, waiters: [waiter] });
      }
      this.mouseLatest = input;
      this.mouseHolder = holder;
      void this.pumpMouse();
    });
  }

  private async pumpMouse(): Promise<void> {
    if (this.mouseBusy) return;
    this.mouseBusy = true;
    const sink = this.gadgets.mouse;
    for (let item = this.mouseQueue.shift(); item; item = this.mouseQueue.shift()) {
      const report = mouseReport(item.state);
      try {
        await sink.write(report);
      } catch (e) {
        const failure = writeFailure(e, sink);
        for (const w of item.waiters) w.reject(failure);
        this.mouseResync.failed();
        continue;
      }
      this.observe('mouse', report);
      for (const w of item.waiters) w.resolve();
    }
    this.mouseBusy = false;
  }

  /** A button release at the latest position, by `holder`. */
  private releaseButtons(holder: Holder): Promise<void> {
    if (this.mouseLease) clearTimeout(this.mouseLease);
    this.mouseLease = null;
    const { x, y } = this.mouseLatest;
    return this.queueMouse(holder, { buttons: 0, x, y, wheel: 0, hwheel: 0 });
  }

  /** Buttons a REST caller holds are leased like its keys: released unless another report renews them. */
  private leaseButtons(buttons: number): void {
    if (this.mouseLease) clearTimeout(this.mouseLease);
    this.mouseLease = null;
    if (buttons === 0) return;
    this.mouseLease = setTimeout(() => {
      this.mouseLease = null;
      if (this.mouseHolder !== this.rest || this.mouseLatest.buttons === 0) return;
      this.releaseButtons(this.rest).catch((e) => this.log.warn('mouse buttons whose lease ran out could not be released', { error: String(e) }));
    }, HOLD_LEASE.defaultMs);
  }

  // --- type jobs ---

  /** Checks the whole text against the layout, then types it in the background; one job at a time. */
  async startType(holder: Holder | null, request: TypeRequest): Promise<TypeJob> {
    this.refuseWhileTyping();
    const { planText } = await import('../../shared/hid/typing.ts');
    this.refuseWhileTyping();
    const plan = planText(request.text, request.layout);
    if (!plan.ok) throw new RpcFailure(plan.code, plan.message, { ...(plan.index !== undefined ? { index: plan.index } : {}), ...(plan.char !== undefined ? { char: plan.char } : {}) });
    const bad = plan.chars.findIndex((c) => c.strokes.some((s) => !isKeyCode(s.code)));
    if (bad >= 0) throw new RpcFailure('UNTYPEABLE_CHARACTER', `the ${request.layout} layout has no key for ${JSON.stringify(plan.chars[bad]!.char)} (character ${bad + 1})`, { index: bad, char: plan.chars[bad]!.char });
    const job: Job = {
      view: { id: crypto.randomUUID(), layout: plan.layout, state: 'typing', typed: 0, total: plan.chars.length, substitutions: plan.substitutions.slice(0, 64) },
      chars: plan.chars,
      intervalMs: request.interval_ms ?? 0,
      holder,
      cancelled: false,
      stop: null,
      finished: Promise.resolve(),
    };
    this.typing = job;
    this.jobs.set(job.view.id, job);
    // A held key would change what the text types: the job starts from a released keyboard.
    if (this.owners.size) {
      this.dropKeys();
      this.changed();
    }
    job.finished = this.type(job);
    return { ...job.view };
  }

  typeStatus(id: string): TypeJob {
    return { ...this.job(id).view };
  }

  /** Stops the job after the character being typed; answers once it has stopped. */
  async cancelType(id: string): Promise<TypeJob> {
    const job = this.job(id);
    job.cancelled = true;
    await job.finished;
    return { ...job.view };
  }

  /** The job `holder` started, while it types. */
  typingBy(holder: Holder): TypeJob | null {
    return this.typing && this.typing.holder === holder ? { ...this.typing.view } : null;
  }

  /** Resolves when job `id` has ended. */
  typeFinished(id: string): Promise<void> {
    return this.jobs.get(id)?.finished ?? Promise.resolve();
  }

  private job(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new RpcFailure('UNKNOWN_TYPE_JOB', `no type job ${id} (finished jobs are kept for the last ${KEPT_TYPE_JOBS})`, { job: id });
    return job;
  }

  private async type(job: Job): Promise<void> {
    const { view } = job;
    const fail = (e: unknown, at: number) => {
      const f = e instanceof RpcFailure ? e : writeFailure(e, this.gadgets.keyboard);
      view.state = 'failed';
      view.error = { code: f.code, message: f.message.slice(0, 1024), at };
    };
    // The plans assume Caps Lock off (it would swap the case of every letter): when the host says
    // it is on, it is tapped off first and back on at the end, so the text comes out as written.
    let capsTapped = false;
    try {
      await this.writeKeyboard(RELEASED);
      if (this.leds?.caps_lock) {
        await this.tap('CapsLock');
        capsTapped = true;
      }
      for (let i = 0; i < job.chars.length; i++) {
        if (job.stop) {
          fail(new RpcFailure(job.stop.code, job.stop.message), i);
          return;
        }
        if (job.cancelled) break;
        try {
          for (const stroke of job.chars[i]!.strokes) {
            const press = isModifier(stroke.code) ? keyboardReport(stroke.modifiers | MODIFIER_BITS[stroke.code], []) : keyboardReport(stroke.modifiers, [HID_USAGES[stroke.code]!]);
            await this.writeKeyboard(press);
            await this.writeKeyboard(RELEASED);
          }
        } catch (e) {
          fail(e, i);
          return;
        }
        view.typed = i + 1;
        if (job.intervalMs > 0 && i + 1 < job.chars.length) await sleep(job.intervalMs);
      }
      view.state = job.cancelled && view.typed < view.total ? 'cancelled' : 'done';
    } catch (e) {
      fail(e, view.typed);
    } finally {
      if (capsTapped) await this.tap('CapsLock').catch((e) => this.log.warn('Caps Lock could not be turned back on after typing', { error: String(e) }));
      this.typing = null;
      // Kept for status only: a finished job's plan (up to MAX_TYPE_TEXT characters) is let go.
      job.chars = [];
      this.forgetOldJobs();
    }
  }

  /** Presses and releases one key with nothing else held (the keyboard is released while typing). */
  private async tap(code: string): Promise<void> {
    await this.writeKeyboard(keyboardReport(0, [HID_USAGES[code]!]));
    await this.writeKeyboard(RELEASED);
  }

  private forgetOldJobs(): void {
    const finished = [...this.jobs.values()].filter((j) => j !== this.typing);
    for (const j of finished.slice(0, Math.max(0, finished.length - KEPT_TYPE_JOBS))) this.jobs.delete(j.view.id);
  }
}
