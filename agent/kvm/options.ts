// The KVM flags of `pirelay-agent run`, checked before anything starts: where the HID reports go
// (the real /dev/hidg* gadgets, or files under --hid-dir), and which screen backend captures the
// target. A demo agent (--simulate) never touches /dev/hidg*: without --hid-dir its reports go to
// the hid/ folder beside its config file.
import { dirname, join, resolve } from 'node:path';

import { DEFAULT_VIDEO_DEVICE, SCREEN_BACKENDS, type ScreenBackend } from './screen/types.ts';

export interface KvmOptions {
  /** Reports are appended to DIR/hidg0 and DIR/hidg1; undefined: the real gadgets. */
  hidDir?: string;
  screen: ScreenBackend;
  videoDevice: string;
}

export interface KvmFlags {
  'hid-dir'?: string;
  screen?: string;
  'video-device'?: string;
  simulate: boolean;
}

/** The options the flags ask for, or why they are wrong (a usage error). */
export function kvmOptions(flags: KvmFlags, configPath: string): { ok: true; options: KvmOptions } | { ok: false; message: string } {
  const screen = flags.screen ?? (flags.simulate ? 'simulated' : 'auto');
  if (!(SCREEN_BACKENDS as readonly string[]).includes(screen)) return { ok: false, message: `--screen must be one of ${SCREEN_BACKENDS.join(', ')}, not ${JSON.stringify(screen)}` };
  if (flags['hid-dir'] !== undefined && !flags['hid-dir'].trim()) return { ok: false, message: '--hid-dir needs a directory' };
  const videoDevice = flags['video-device'] ?? DEFAULT_VIDEO_DEVICE;
  if (!videoDevice.trim()) return { ok: false, message: '--video-device needs a path' };
  const hidDir = flags['hid-dir'] !== undefined ? resolve(flags['hid-dir']) : flags.simulate ? join(dirname(resolve(configPath)), 'hid') : undefined;
  return { ok: true, options: { ...(hidDir !== undefined ? { hidDir } : {}), screen: screen as ScreenBackend, videoDevice } };
}
