// The HID gadgets the agent writes reports to: the real /dev/hidg0 (keyboard) and /dev/hidg1
// (mouse) that deploy/hid-gadget.sh makes, or, with --hid-dir, two files that record exactly the
// bytes a host would receive.
//
// The real backend never blocks the event loop and never claims a report arrived when it did not:
// the devices are opened non-blocking, a write that the host does not take (EAGAIN: it has not yet
// polled the previous report) is retried until a deadline and then fails HID_TIMEOUT, and every
// other failure is named (HID_MISSING, HID_UNPLUGGED, HID_ERROR) and closes the descriptor so the
// next write reopens it, which is how a re-plugged cable or a re-made gadget is picked up. The
// host's LED output report (Caps/Num/Scroll Lock) is read back from /dev/hidg0 by polling a
// non-blocking descriptor. An idle agent costs nothing: nothing is opened before the first report.
import { closeSync, constants, existsSync, openSync, readSync, writeSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HID_USAGES } from '../../shared/hid/keycodes.ts';
import { HidError, type HidErrorCode, type HidGadgets, type HidSink } from './types.ts';

export interface GadgetOptions {
  /** Append reports to DIR/hidg0 and DIR/hidg1 instead of the devices. */
  dir?: string;
  keyboardPath?: string;
  mousePath?: string;
  /**
   * Where the host's LED reports are read: the keyboard gadget itself by default. A test that
   * stands a FIFO in for /dev/hidg0 gives another, as a FIFO's reader would take our own reports.
   */
  ledPath?: string;
  /** A write that cannot complete in this long fails (HID_TIMEOUT). */
  deadlineMs?: number;
}

/**
 * How long a report may wait for the host. A host polls a HID gadget's interrupt endpoint every
 * 1 ms (high speed) to 10 ms (full speed), so a report the host wants is taken within a few ms;
 * 100 ms is ten full-speed polls of slack for a busy host. Past that the host is not reading (it
 * sleeps, or sits in firmware that does not poll), and a key delivered later than that would be
 * felt as lag or a stuck key, so the caller is better told now than served late.
 */
export const DEFAULT_DEADLINE_MS = 100;
/** Between two tries of a write the host has not taken yet. */
const RETRY_MS = 1;
/** LED polling: quick for a while after a keyboard report (a lock key was maybe pressed), then slow. */
const LED_POLL_FAST_MS = 50;
const LED_POLL_SLOW_MS = 1000;
const LED_FAST_FOR_MS = 2000;

type SinkState = ReturnType<HidSink['state']>;
const STATE_OF: Record<HidErrorCode, SinkState['state']> = {
  HID_MISSING: 'missing',
  HID_UNPLUGGED: 'unplugged',
  HID_TIMEOUT: 'busy',
  HID_ERROR: 'error',
};

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function isAgain(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}

function missing(path: string, errno: string): HidError {
  return new HidError('HID_MISSING', `could not access ${path} (${errno}): is the USB gadget set up (deploy/hid-gadget.sh)?`, path);
}

/**
 * Names a failed open or write of a gadget. ENOENT/ENXIO/ENODEV: no such gadget (not set up, or
 * torn down; ENXIO is also a FIFO nobody reads). ESHUTDOWN: the gadget is there but its endpoint is
 * down because the host or the cable is gone; EPIPE is the same for a FIFO whose reader left.
 */
export function hidError(err: unknown, path: string): HidError {
  const code = errnoOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ENOENT':
    case 'ENXIO':
    case 'ENODEV':
      return missing(path, code);
    case 'ESHUTDOWN':
    case 'EPIPE':
      return new HidError('HID_UNPLUGGED', `could not write to ${path} (${code}): is the USB cable connected to a running computer?`, path);
    default:
      return new HidError('HID_ERROR', `could not write to ${path}: ${detail}`, path);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs writes one after another, so reports reach the host in the order they were written even
 * when one of them waits for the host.
 */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(job: () => Promise<T>): Promise<T> => {
    const run = tail.then(job);
    tail = run.catch(() => {});
    return run;
  };
}

/** Closes a gadget's descriptor, if open; one that went with its device has nothing left to release. */
function closeQuietly(fd: number | null): void {
  if (fd === null) return;
  try {
    closeSync(fd);
  } catch {
    // Already gone with the device.
  }
}

/** A character device (or FIFO) written one whole report per non-blocking write. */
class DeviceSink implements HidSink {
  private fd: number | null = null;
  private last: SinkState = { state: 'unknown' };
  private closed = false;
  private readonly queue = serial();

  constructor(
    readonly path: string,
    private readonly deadlineMs: number,
    private readonly onWrite: () => void,
  ) {}

  write(report: Uint8Array): Promise<void> {
    // The deadline counts from the call, so a report queued behind one the host is not taking
    // fails too, rather than arriving long after the caller gave up.
    const deadline = performance.now() + this.deadlineMs;
    this.onWrite();
    return this.queue(() => this.writeBy(report, deadline));
  }

  private async writeBy(report: Uint8Array, deadline: number): Promise<void> {
    for (;;) {
      if (this.closed) throw this.failed(new HidError('HID_ERROR', `${this.path} is closed`, this.path));
      let written: number;
      try {
        this.fd ??= openSync(this.path, constants.O_WRONLY | constants.O_NONBLOCK);
        written = writeSync(this.fd, report);
      } catch (err) {
        if (!isAgain(err)) {
          this.drop();
          throw this.failed(hidError(err, this.path));
        }
        if (performance.now() >= deadline) {
          // The descriptor is fine; the host just has not read. The next write tries it again.
          throw this.failed(new HidError('HID_TIMEOUT', `the host did not take a report from ${this.path} within ${this.deadlineMs} ms`, this.path));
        }
        await sleep(RETRY_MS);
        continue;
      }
      if (written !== report.length) {
        this.drop();
        throw this.failed(new HidError('HID_ERROR', `${this.path} took ${written} of ${report.length} bytes`, this.path));
      }
      this.last = { state: 'ok' };
      return;
    }
  }

  private failed(err: HidError): HidError {
    this.last = { state: STATE_OF[err.code], message: err.message };
    return err;
  }

  private drop(): void {
    closeQuietly(this.fd);
    this.fd = null;
  }

  state(): SinkState {
    // Before the first report, a look (not an open) tells a missing gadget from one not tried yet.
    if (this.last.state === 'unknown' && !existsSync(this.path)) {
      return { state: 'missing', message: missing(this.path, 'ENOENT').message };
    }
    return this.last;
  }

  close(): void {
    this.closed = true;
    this.drop();
  }
}

type LedListener = (byte: number) => void;

function emit(listeners: Set<LedListener>, byte: number): void {
  for (const l of listeners) {
    try {
      l(byte);
    } catch {
      // A listener's failure is its own; the others and the polling go on.
    }
  }
}

/**
 * Reads the host's LED output reports (one byte each) from the keyboard gadget. f_hid answers a
 * non-blocking read with EAGAIN when no report waits, so a timer polls; it starts at the first
 * keyboard report and polls quickly for a while after each one, slowly otherwise.
 */
class LedReader {
  private fd: number | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private due = 0;
  private fastUntil = 0;
  private closed = false;
  private readonly buf = new Uint8Array(64);

  constructor(
    private readonly path: string,
    private readonly listeners: Set<LedListener>,
  ) {}

  /** A keyboard report was written: the host may answer with an LED report soon. */
  poke(): void {
    if (this.closed) return;
    this.fastUntil = performance.now() + LED_FAST_FOR_MS;
    this.schedule(LED_POLL_FAST_MS);
  }

  private schedule(ms: number): void {
    const at = performance.now() + ms;
    if (this.timer !== null) {
      if (this.due <= at) return;
      clearTimeout(this.timer);
    }
    this.due = at;
    this.timer = setTimeout(() => this.poll(), ms);
    this.timer.unref?.();
  }

  private poll(): void {
    this.timer = null;
    if (this.closed) return;
    try {
      this.fd ??= openSync(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
      // One report per read from f_hid; a FIFO may hand several at once. Bounded, in case a
      // misbehaving host floods us.
      for (let reads = 0; reads < 64; reads++) {
        const n = readSync(this.fd, this.buf);
        if (n === 0) break;
        for (let i = 0; i < n; i++) emit(this.listeners, this.buf[i]!);
      }
    } catch (err) {
      if (!isAgain(err)) this.drop();
    }
    this.schedule(performance.now() < this.fastUntil ? LED_POLL_FAST_MS : LED_POLL_SLOW_MS);
  }

  private drop(): void {
    closeQuietly(this.fd);
    this.fd = null;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.drop();
  }
}

/** A file that records every report, in order, as a host would receive them. */
class FileSink implements HidSink {
  private ready: Promise<unknown> | null = null;
  private last: SinkState = { state: 'unknown' };
  private readonly queue = serial();

  constructor(
    readonly path: string,
    private readonly onWritten: (report: Uint8Array) => void,
  ) {}

  write(report: Uint8Array): Promise<void> {
    const copy = report.slice();
    return this.queue(async () => {
      try {
        this.ready ??= mkdir(dirname(this.path), { recursive: true });
        await this.ready;
        await appendFile(this.path, copy);
      } catch (err) {
        this.ready = null;
        const e = new HidError('HID_ERROR', `could not append to ${this.path}: ${err instanceof Error ? err.message : String(err)}`, this.path);
        this.last = { state: 'error', message: e.message };
        throw e;
      }
      this.last = { state: 'ok' };
      this.onWritten(copy);
    });
  }

  state(): SinkState {
    return this.last;
  }

  close(): void {}
}

/** The lock keys and their bit in the LED report, for the --hid-dir backend's simulated host. */
const LOCK_LEDS: readonly [usage: number, bit: number][] = [
  [HID_USAGES.NumLock!, 0x01],
  [HID_USAGES.CapsLock!, 0x02],
  [HID_USAGES.ScrollLock!, 0x04],
];

/**
 * --hid-dir: reports appended to DIR/hidg0 and DIR/hidg1. There is no host to answer with LEDs, so
 * this backend plays one: a keyboard report that newly presses Caps, Num or Scroll Lock toggles
 * that LED and the new LED byte is emitted, as a real host would send it. All LEDs start off.
 */
function dirGadgets(dir: string): HidGadgets {
  const listeners = new Set<LedListener>();
  let leds = 0;
  let held = new Set<number>();
  const keyboard = new FileSink(join(dir, 'hidg0'), (report) => {
    const now = new Set(report.subarray(2).filter((u) => u !== 0));
    const before = leds;
    for (const [usage, bit] of LOCK_LEDS) if (now.has(usage) && !held.has(usage)) leds ^= bit;
    held = now;
    if (leds !== before) emit(listeners, leds);
  });
  const mouse = new FileSink(join(dir, 'hidg1'), () => {});
  return {
    keyboard,
    mouse,
    onLeds(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      listeners.clear();
    },
  };
}

function deviceGadgets(keyboardPath: string, mousePath: string, ledPath: string, deadlineMs: number): HidGadgets {
  const listeners = new Set<LedListener>();
  const leds = new LedReader(ledPath, listeners);
  const keyboard = new DeviceSink(keyboardPath, deadlineMs, () => leds.poke());
  const mouse = new DeviceSink(mousePath, deadlineMs, () => {});
  return {
    keyboard,
    mouse,
    onLeds(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      leds.close();
      keyboard.close();
      mouse.close();
      listeners.clear();
    },
  };
}

export function openGadgets(options: GadgetOptions): HidGadgets {
  if (options.dir !== undefined) return dirGadgets(options.dir);
  const keyboardPath = options.keyboardPath ?? '/dev/hidg0';
  return deviceGadgets(keyboardPath, options.mousePath ?? '/dev/hidg1', options.ledPath ?? keyboardPath, options.deadlineMs ?? DEFAULT_DEADLINE_MS);
}
