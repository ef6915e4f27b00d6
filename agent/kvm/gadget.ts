// The HID gadgets the agent writes reports to.
//
// FOUNDATION STUB: only the --hid-dir backend (reports appended to DIR/hidg0 and DIR/hidg1). The
// HID work replaces this with the real /dev/hidg* backend (non-blocking, with a write deadline,
// ENOENT/ESHUTDOWN/EAGAIN reported as errors, LED reports read back), keeping openGadgets.
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { HidGadgets, HidSink } from './types.ts';

export interface GadgetOptions {
  /** Append reports to DIR/hidg0 and DIR/hidg1 instead of the devices. */
  dir?: string;
  keyboardPath?: string;
  mousePath?: string;
  /** A write that cannot complete in this long fails (HID_TIMEOUT). */
  deadlineMs?: number;
}

function fileSink(path: string): HidSink {
  let ready: Promise<unknown> | null = null;
  return {
    path,
    async write(report) {
      ready ??= mkdir(join(path, '..'), { recursive: true });
      await ready;
      await appendFile(path, report);
    },
    state: () => ({ state: 'ok' }),
    close() {},
  };
}

export function openGadgets(options: GadgetOptions): HidGadgets {
  const dir = options.dir ?? '/dev';
  return {
    keyboard: fileSink(options.keyboardPath ?? join(dir, 'hidg0')),
    mouse: fileSink(options.mousePath ?? join(dir, 'hidg1')),
    onLeds: () => () => {},
    close() {},
  };
}
