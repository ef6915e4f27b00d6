// The gadget backends against real files: a FIFO stands in for /dev/hidg* (it has the same
// non-blocking behaviour: ENXIO with nobody reading, EAGAIN when full, EPIPE when the reader
// leaves), a missing path for an absent gadget, and a directory for --hid-dir. ESHUTDOWN needs a
// real gadget with the cable out, so its mapping is tested as a unit.
import { afterEach, beforeEach, describe, expect, it } from 'bun:test';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DEADLINE_MS, hidError, openGadgets } from '../../../agent/kvm/gadget.ts';
import { HidError, type HidGadgets } from '../../../agent/kvm/types.ts';
import { KeyboardState, mouseReport } from '../../../shared/hid/reports.ts';

let dir: string;
const opened: HidGadgets[] = [];
const fds: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pirelay-hid-'));
});
afterEach(() => {
  for (const g of opened.splice(0)) g.close();
  for (const fd of fds.splice(0)) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

function gadgets(options: Parameters<typeof openGadgets>[0]): HidGadgets {
  const g = openGadgets(options);
  opened.push(g);
  return g;
}

function mkfifo(name: string): string {
  const path = join(dir, name);
  const r = Bun.spawnSync(['mkfifo', path]);
  if (r.exitCode !== 0) throw new Error(`mkfifo failed: ${r.stderr.toString()}`);
  return path;
}

function open(path: string, flags: number): number {
  const fd = openSync(path, flags | constants.O_NONBLOCK);
  fds.push(fd);
  return fd;
}

function closeFd(fd: number): void {
  fds.splice(fds.indexOf(fd), 1);
  closeSync(fd);
}

/** Everything waiting in a FIFO. */
function drain(fd: number): number[] {
  const out: number[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    try {
      const n = readSync(fd, buf);
      if (n === 0) return out;
      out.push(...buf.subarray(0, n));
    } catch (err) {
      if ((err as { code?: string }).code === 'EAGAIN') return out;
      throw err;
    }
  }
}

/** Descriptors this process holds open on `path`. */
function fdsOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

async function rejection(p: Promise<unknown>): Promise<HidError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HidError) return err;
    throw err;
  }
  throw new Error('the write succeeded');
}

const keyA = new Uint8Array([0, 0, 4, 0, 0, 0, 0, 0]);

describe('the device backend', () => {
  it('opens nothing before the first report', async () => {
    const kb = mkfifo('hidg0');
    const reader = open(kb, constants.O_RDONLY);
    const g = gadgets({ keyboardPath: kb, mousePath: join(dir, 'absent'), ledPath: join(dir, 'leds') });
    expect(g.keyboard.state()).toEqual({ state: 'unknown' });
    expect(fdsOn(kb)).toBe(1); // the test's reader only
    await g.keyboard.write(keyA);
    expect(fdsOn(kb)).toBeGreaterThan(1);
    expect(drain(reader)).toEqual([...keyA]);
    g.close();
    expect(fdsOn(kb)).toBe(1);
  });

  it('reports a missing path as HID_MISSING, not success', async () => {
    const g = gadgets({ keyboardPath: join(dir, 'hidg0'), mousePath: join(dir, 'hidg1'), ledPath: join(dir, 'leds') });
    // Known before any report, from a look at the path.
    expect(g.keyboard.state()).toMatchObject({ state: 'missing' });
    const err = await rejection(g.mouse.write(mouseReport({ buttons: 0, x: 0, y: 0 })));
    expect(err.code).toBe('HID_MISSING');
    expect(err.message).toContain(`could not access ${join(dir, 'hidg1')}`);
    expect(g.mouse.state()).toMatchObject({ state: 'missing' });
  });

  it('reports a gadget nobody reads (ENXIO) as HID_MISSING', async () => {
    const kb = mkfifo('hidg0');
    const g = gadgets({ keyboardPath: kb, mousePath: join(dir, 'hidg1'), ledPath: join(dir, 'leds') });
    const err = await rejection(g.keyboard.write(keyA));
    expect(err.code).toBe('HID_MISSING');
    expect(err.message).toContain('ENXIO');
    expect(g.keyboard.state().state).toBe('missing');
  });

  it('delivers the exact bytes, in order, even when written without waiting', async () => {
    const kb = mkfifo('hidg0');
    const ms = mkfifo('hidg1');
    const kbReader = open(kb, constants.O_RDONLY);
    const msReader = open(ms, constants.O_RDONLY);
    const g = gadgets({ keyboardPath: kb, mousePath: ms, ledPath: join(dir, 'leds') });
    const k = new KeyboardState();
    const keys = ['ShiftLeft', 'KeyH', 'KeyI', 'F24', 'IntlYen'];
    const reports = [...keys.map((c) => (k.down(c) as { report: Uint8Array }).report), k.releaseAll()];
    const moves = [mouseReport({ buttons: 1, x: 0.5, y: 0.75 }), mouseReport({ buttons: 0, x: 0, y: 1, wheel: -3, hwheel: 2 })];
    await Promise.all([...reports.map((r) => g.keyboard.write(r)), ...moves.map((m) => g.mouse.write(m))]);
    expect(drain(kbReader)).toEqual(reports.flatMap((r) => [...r]));
    expect(drain(msReader)).toEqual([0x01, 0xff, 0x3f, 0xff, 0x5f, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f, 0xfd, 0x02]);
    expect(g.keyboard.state()).toEqual({ state: 'ok' });
    expect(g.mouse.state()).toEqual({ state: 'ok' });
  });

  it('fails HID_TIMEOUT past the deadline when the host stops reading, then recovers when it reads', async () => {
    const kb = mkfifo('hidg0');
    const reader = open(kb, constants.O_RDONLY); // a host that never reads
    const g = gadgets({ keyboardPath: kb, mousePath: join(dir, 'hidg1'), ledPath: join(dir, 'leds') });
    let delivered = 0;
    let err: HidError | null = null;
    let started = 0;
    for (;;) {
      started = performance.now();
      try {
        await g.keyboard.write(keyA);
        delivered++;
      } catch (e) {
        err = e as HidError;
        break;
      }
    }
    const waited = performance.now() - started;
    expect(err).toBeInstanceOf(HidError);
    expect(err!.code).toBe('HID_TIMEOUT');
    expect(waited).toBeGreaterThanOrEqual(DEFAULT_DEADLINE_MS);
    expect(g.keyboard.state().state).toBe('busy');
    // Every report it called delivered is in the pipe, whole, and the refused one is not.
    const bytes = drain(reader);
    expect(bytes.length).toBe(delivered * keyA.length);
    expect(delivered).toBeGreaterThan(0);
    await g.keyboard.write(keyA);
    expect(g.keyboard.state().state).toBe('ok');
    expect(drain(reader)).toEqual([...keyA]);
  });

  it('reports a reader that went away as HID_UNPLUGGED and reopens once one is back', async () => {
    const kb = mkfifo('hidg0');
    const first = open(kb, constants.O_RDONLY);
    const g = gadgets({ keyboardPath: kb, mousePath: join(dir, 'hidg1'), ledPath: join(dir, 'leds') });
    await g.keyboard.write(keyA);
    closeFd(first);
    const err = await rejection(g.keyboard.write(keyA));
    expect(err.code).toBe('HID_UNPLUGGED');
    expect(g.keyboard.state().state).toBe('unplugged');
    const second = open(kb, constants.O_RDONLY);
    await g.keyboard.write(keyA);
    expect(drain(second)).toEqual([...keyA]);
  });

  it('refuses to write after close', async () => {
    const kb = mkfifo('hidg0');
    open(kb, constants.O_RDONLY);
    const g = gadgets({ keyboardPath: kb, mousePath: join(dir, 'hidg1'), ledPath: join(dir, 'leds') });
    g.close();
    expect((await rejection(g.keyboard.write(keyA))).code).toBe('HID_ERROR');
  });

  /** A keyboard gadget with a host that reads reports, and the host's side of the LED reports. */
  async function withHost() {
    const kb = mkfifo('hidg0');
    open(kb, constants.O_RDONLY);
    const leds = mkfifo('leds');
    const g = gadgets({ keyboardPath: kb, mousePath: join(dir, 'hidg1'), ledPath: leds });
    // The first keyboard report starts the LED reader.
    await g.keyboard.write(keyA);
    // A FIFO's writer can open only once its reader (the agent's LED reader) has it open.
    for (;;) {
      try {
        return { g, host: open(leds, constants.O_WRONLY) };
      } catch {
        await Bun.sleep(5);
      }
    }
  }

  it('reads the host’s LED reports back, one byte each', async () => {
    const { g, host } = await withHost();
    const seen: number[] = [];
    const both = new Promise<void>((resolve) =>
      g.onLeds((b) => {
        seen.push(b);
        if (seen.length === 2) resolve();
      }),
    );
    writeSync(host, new Uint8Array([0x02]));
    writeSync(host, new Uint8Array([0x03]));
    await both;
    expect(seen).toEqual([0x02, 0x03]);
  });

  it('reads a flood of LED reports a bounded batch at a time, losing none', async () => {
    const { g, host } = await withHost();
    const flood = Uint8Array.from({ length: 5000 }, (_, i) => i & 0x1f);
    const seen: number[] = [];
    const all = new Promise<void>((resolve) =>
      g.onLeds((b) => {
        seen.push(b);
        if (seen.length === flood.length) resolve();
      }),
    );
    writeSync(host, flood);
    await all;
    expect(seen).toEqual([...flood]);
  });

  it('keeps reading LEDs when a listener throws', async () => {
    const { g, host } = await withHost();
    g.onLeds(() => {
      throw new Error('listener bug');
    });
    const got = new Promise<number>((resolve) => g.onLeds(resolve));
    writeSync(host, new Uint8Array([0x01]));
    expect(await got).toBe(0x01);
  });
});

describe('errno mapping', () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: something`), { code });
  it('names each failure', () => {
    expect(hidError(errno('ESHUTDOWN'), '/dev/hidg0').code).toBe('HID_UNPLUGGED');
    expect(hidError(errno('EPIPE'), '/dev/hidg0').code).toBe('HID_UNPLUGGED');
    expect(hidError(errno('ENOENT'), '/dev/hidg0').code).toBe('HID_MISSING');
    expect(hidError(errno('ENXIO'), '/dev/hidg0').code).toBe('HID_MISSING');
    expect(hidError(errno('ENODEV'), '/dev/hidg0').code).toBe('HID_MISSING');
    expect(hidError(errno('EIO'), '/dev/hidg0').code).toBe('HID_ERROR');
    expect(hidError(errno('EACCES'), '/dev/hidg0').code).toBe('HID_ERROR');
    expect(hidError('not even an error', '/dev/hidg0').code).toBe('HID_ERROR');
  });

  it('says which device and what to check', () => {
    const e = hidError(errno('ESHUTDOWN'), '/dev/hidg0');
    expect(e.path).toBe('/dev/hidg0');
    expect(e.message).toContain('/dev/hidg0');
    expect(e.message).toContain('cable');
  });
});

describe('the --hid-dir backend', () => {
  it('creates the directory and appends the exact bytes of every report, in order', async () => {
    const at = join(dir, 'nested/hid');
    const g = gadgets({ dir: at });
    expect(g.keyboard.state()).toEqual({ state: 'unknown' });
    const k = new KeyboardState();
    const reports = [(k.down('ControlLeft') as { report: Uint8Array }).report, (k.down('KeyC') as { report: Uint8Array }).report, k.releaseAll()];
    await Promise.all(reports.map((r) => g.keyboard.write(r)));
    await g.mouse.write(mouseReport({ buttons: 1, x: 0.5, y: 0.75 }));
    expect([...readFileSync(join(at, 'hidg0'))]).toEqual(reports.flatMap((r) => [...r]));
    expect([...readFileSync(join(at, 'hidg1'))]).toEqual([0x01, 0xff, 0x3f, 0xff, 0x5f, 0x00, 0x00]);
    expect(g.keyboard.state()).toEqual({ state: 'ok' });
  });

  it('records a report as written, even if the caller reuses its buffer', async () => {
    const g = gadgets({ dir });
    const buf = new Uint8Array(keyA);
    const done = g.keyboard.write(buf);
    buf.fill(0xee);
    await done;
    expect([...readFileSync(join(dir, 'hidg0'))]).toEqual([...keyA]);
  });

  it('plays a host that toggles its lock LEDs when a lock key is newly pressed', async () => {
    const g = gadgets({ dir });
    const leds: number[] = [];
    g.onLeds((b) => leds.push(b));
    const k = new KeyboardState();
    const press = async (code: string) => g.keyboard.write((k.down(code) as { report: Uint8Array }).report);
    const release = async (code: string) => g.keyboard.write((k.up(code) as { report: Uint8Array }).report);
    await press('CapsLock');
    await press('KeyA'); // CapsLock still held: no new press, no toggle
    await release('KeyA');
    await release('CapsLock');
    await press('NumLock');
    await release('NumLock');
    await press('CapsLock');
    await press('ScrollLock');
    expect(leds).toEqual([0x02, 0x03, 0x01, 0x05]);
  });

  it('reports a directory it cannot write as HID_ERROR', async () => {
    const file = join(dir, 'a-file');
    await Bun.write(file, 'x');
    const g = gadgets({ dir: join(file, 'sub') });
    const err = await rejection(g.keyboard.write(keyA));
    expect(err.code).toBe('HID_ERROR');
    expect(g.keyboard.state().state).toBe('error');
  });
});
