// The KVM flags of `run`: the defaults (real gadgets and an automatic screen; under --simulate
// the hid/ folder beside the config and the simulated screen), and every bad value refused.
import { describe, expect, it } from 'bun:test';
import { join, resolve } from 'node:path';
import { kvmOptions } from '../../../agent/kvm/options.ts';
import { SCREEN_BACKENDS } from '../../../agent/kvm/screen/types.ts';

describe('kvm options', () => {
  it('defaults to the real gadgets, the automatic screen and /dev/video0', () => {
    expect(kvmOptions({ simulate: false }, '/etc/pirelay/agent.json')).toEqual({ ok: true, options: { screen: 'auto', videoDevice: '/dev/video0' } });
  });

  it('under --simulate, writes reports beside the config file and draws the simulated screen', () => {
    expect(kvmOptions({ simulate: true }, '/home/pi/.config/pirelay/agent.json')).toEqual({ ok: true, options: { hidDir: '/home/pi/.config/pirelay/hid', screen: 'simulated', videoDevice: '/dev/video0' } });
    expect(kvmOptions({ simulate: true }, 'rel/agent.json')).toMatchObject({ options: { hidDir: join(resolve('rel'), 'hid') } });
  });

  it('takes --hid-dir, --screen and --video-device as given', () => {
    for (const screen of SCREEN_BACKENDS) {
      expect(kvmOptions({ simulate: true, 'hid-dir': '/tmp/h', screen, 'video-device': '/dev/video2' }, '/x/agent.json')).toEqual({ ok: true, options: { hidDir: '/tmp/h', screen, videoDevice: '/dev/video2' } });
    }
  });

  it('refuses an unknown backend and empty values', () => {
    expect(kvmOptions({ simulate: false, screen: 'vnc' }, '/x.json')).toMatchObject({ ok: false, message: expect.stringContaining('--screen must be one of auto, simulated') });
    expect(kvmOptions({ simulate: false, screen: '' }, '/x.json')).toMatchObject({ ok: false });
    expect(kvmOptions({ simulate: false, 'hid-dir': ' ' }, '/x.json')).toMatchObject({ ok: false, message: '--hid-dir needs a directory' });
    expect(kvmOptions({ simulate: false, 'video-device': '' }, '/x.json')).toMatchObject({ ok: false, message: '--video-device needs a path' });
  });
});
