// The kvm capability through its RPC methods, as the hub calls them: the exact bytes a host gets
// for keystrokes and held keys, leases that release a key by themselves, the 6KRO limit, gadget
// failures reported with their code and path (and the state left consistent), the mouse's
// coalescing, hid_release, kvm_status with the LEDs, and that nothing opens before the first call.
import { describe, expect, it } from 'bun:test';
import { registry } from '../../../agent/capability.ts';
import { kvmCapability } from '../../../agent/kvm/index.ts';
import { dispatchRpc } from '../../../agent/rpc.ts';
import { loopback } from '../streams/helpers.ts';
import { quietLogger } from '../tunnels/helpers.ts';
import { fakeGadgets, fakeScreen, hex, kvmRig, sleep, waitFor } from './helpers.ts';

const ZERO = '00 00 00 00 00 00 00 00';

describe('kvm capability: keystrokes', () => {
  it('presses the code with the modifier byte, then releases everything: two reports, byte for byte', async () => {
    const rig = kvmRig();
    expect(await rig.ok('hid_keystroke', { code: 'KeyA', modifiers: 0x02 })).toEqual({ held: [], leds: null });
    expect(await rig.ok('hid_keystroke', { code: 'Delete', modifiers: 0x01 | 0x04 })).toEqual({ held: [], leds: null });
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual(['02 00 04 00 00 00 00 00', ZERO, '05 00 4c 00 00 00 00 00', ZERO]);
    expect(rig.gadgets.mouse.reports).toEqual([]);
  });

  it('keeps the keys someone else holds: the release report still holds them', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'ShiftLeft', lease_ms: 60_000 });
    await rig.ok('hid_key', { action: 'down', code: 'KeyQ', lease_ms: 60_000 });
    expect(await rig.ok('hid_keystroke', { code: 'KeyB', modifiers: 0x10 })).toMatchObject({ held: ['ShiftLeft', 'KeyQ'] });
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual([
      '02 00 00 00 00 00 00 00',
      '02 00 14 00 00 00 00 00',
      '12 00 14 05 00 00 00 00',
      '02 00 14 00 00 00 00 00',
    ]);
    await rig.ok('hid_release');
  });

  it('refuses an unknown code with UNKNOWN_KEY and writes nothing', async () => {
    const rig = kvmRig();
    expect(await rig.fails('hid_keystroke', { code: 'KeyAA', modifiers: 0 })).toMatchObject({ code: 'UNKNOWN_KEY', details: { code: 'KeyAA' } });
    expect(await rig.fails('hid_key', { action: 'down', code: '__proto__' })).toMatchObject({ code: 'UNKNOWN_KEY' });
    expect(await rig.fails('hid_key', { action: 'up', code: 'constructor' })).toMatchObject({ code: 'UNKNOWN_KEY' });
    expect(rig.gadgets.keyboard.attempts).toBe(0);
  });

  it('answers a gadget failure with its code and path, and leaves no key held', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.unplug('HID_UNPLUGGED');
    expect(await rig.fails('hid_keystroke', { code: 'KeyA', modifiers: 0 })).toMatchObject({ code: 'HID_UNPLUGGED', details: { path: '/test/hidg0' } });
    expect(await rig.fails('hid_key', { action: 'down', code: 'KeyA' })).toMatchObject({ code: 'HID_UNPLUGGED' });
    rig.gadgets.keyboard.unplug('HID_MISSING');
    expect(await rig.fails('hid_key', { action: 'down', code: 'KeyB' })).toMatchObject({ code: 'HID_MISSING', details: { path: '/test/hidg0' } });
    const status = await rig.ok('kvm_status');
    expect(status).toMatchObject({ held: [], keyboard: { path: '/test/hidg0', state: 'missing' } });
    expect(rig.gadgets.keyboard.reports).toEqual([]);
  });

  it('a release that fails leaves the key released in the state, and the release reaches the gadget once it works again', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'KeyZ', lease_ms: 60_000 });
    rig.gadgets.keyboard.unplug('HID_TIMEOUT');
    expect(await rig.fails('hid_key', { action: 'up', code: 'KeyZ' })).toMatchObject({ code: 'HID_TIMEOUT', details: { path: '/test/hidg0' } });
    expect((await rig.ok('kvm_status')).held).toEqual([]);
    expect(rig.gadgets.keyboard.lastHex()).toBe('00 00 1d 00 00 00 00 00');
    rig.gadgets.keyboard.heal();
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 10_000, 'the resync to write the release');
  });

  it('retries a gadget that stays gone with backoff, not in a tight loop', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.unplug('HID_MISSING');
    await rig.fails('hid_keystroke', { code: 'KeyA', modifiers: 0 });
    await sleep(1_500);
    // The failed press, then resyncs at about 100, 300, 700 and 1500 ms: a loop would be many more.
    expect(rig.gadgets.keyboard.attempts).toBeGreaterThanOrEqual(2);
    expect(rig.gadgets.keyboard.attempts).toBeLessThanOrEqual(6);
  });
});

describe('kvm capability: held keys and leases', () => {
  it('releases a held key when its lease runs out, and writes the release', async () => {
    const rig = kvmRig();
    expect(await rig.ok('hid_key', { action: 'down', code: 'ControlLeft', lease_ms: 100 })).toMatchObject({ held: ['ControlLeft'] });
    expect(rig.gadgets.keyboard.lastHex()).toBe('01 00 00 00 00 00 00 00');
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 5_000, 'the lease to run out');
    expect((await rig.ok('kvm_status')).held).toEqual([]);
    expect(rig.gadgets.keyboard.reports.length).toBe(2);
  });

  it('the default lease is HOLD_LEASE.defaultMs: a key down without lease_ms is released by itself', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'KeyD' });
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 5_000, 'the default lease to run out');
  });

  it('a repeated down renews the lease without a new report; up releases at once', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'KeyR', lease_ms: 1_000 });
    // Renewed every 100 ms for 1.5 s: well past the first lease, with 900 ms of margin each time.
    for (let i = 0; i < 15; i++) {
      await sleep(100);
      expect(await rig.ok('hid_key', { action: 'down', code: 'KeyR', lease_ms: 1_000 })).toMatchObject({ held: ['KeyR'] });
    }
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual(['00 00 15 00 00 00 00 00']);
    expect(await rig.ok('hid_key', { action: 'up', code: 'KeyR' })).toMatchObject({ held: [] });
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual(['00 00 15 00 00 00 00 00', ZERO]);
  });

  it('refuses a seventh key with TOO_MANY_KEYS and keeps the six held', async () => {
    const rig = kvmRig();
    const six = ['KeyA', 'KeyB', 'KeyC', 'KeyD', 'KeyE', 'KeyF'];
    for (const code of six) await rig.ok('hid_key', { action: 'down', code, lease_ms: 60_000 });
    await rig.ok('hid_key', { action: 'down', code: 'ShiftRight', lease_ms: 60_000 });
    const err = await rig.fails('hid_key', { action: 'down', code: 'KeyG', lease_ms: 60_000 });
    expect(err).toMatchObject({ code: 'TOO_MANY_KEYS', details: { code: 'KeyG' } });
    expect(await rig.fails('hid_keystroke', { code: 'KeyH', modifiers: 0x01 })).toMatchObject({ code: 'TOO_MANY_KEYS' });
    const status = await rig.ok('kvm_status');
    expect(status.held).toEqual(['ShiftRight', ...six]);
    expect(rig.gadgets.keyboard.lastHex()).toBe('20 00 04 05 06 07 08 09');
    expect(rig.gadgets.keyboard.reports.length).toBe(7);
    await rig.ok('hid_release');
  });

  it('hid_release releases every key and the mouse buttons, whoever holds them', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'AltLeft', lease_ms: 60_000 });
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'KeyX' }, { t: 'mouse', x: 0.5, y: 0.75, buttons: 1 });
    await waitFor(() => rig.gadgets.mouse.reports.length === 1 && rig.gadgets.keyboard.lastHex() === '04 00 1b 00 00 00 00 00', 5_000, 'the viewer’s key and button');
    expect(await rig.ok('hid_release')).toEqual({ held: [], leds: null });
    expect(rig.gadgets.keyboard.lastHex()).toBe(ZERO);
    expect(rig.gadgets.mouse.reports.map(hex)).toEqual(['01 ff 3f ff 5f 00 00', '00 ff 3f ff 5f 00 00']);
    // The viewer's later up is of a key nobody holds any more: nothing more is written.
    await viewer.send({ t: 'up', code: 'KeyX' });
    await viewer.close();
    await viewer.ended;
    expect(rig.gadgets.keyboard.reports.length).toBe(3);
  });
});

describe('kvm capability: the mouse', () => {
  it('writes the absolute report of the issue’s vectors', async () => {
    const rig = kvmRig();
    await rig.ok('hid_mouse', { buttons: 1, x: 0.5, y: 0.75, wheel: 0, hwheel: 0 });
    await rig.ok('hid_mouse', { buttons: 0, x: 0, y: 1, wheel: -1, hwheel: 2 });
    expect(rig.gadgets.mouse.reports.map(hex)).toEqual(['01 ff 3f ff 5f 00 00', '00 00 00 ff 7f ff 02']);
  });

  it('coalesces a burst while the gadget is slow: the last position is written, with far fewer writes', async () => {
    const rig = kvmRig();
    rig.gadgets.mouse.delayMs = 20;
    const moves = Array.from({ length: 1000 }, (_, i) => rig.call('hid_mouse', { buttons: 0, x: i / 999, y: 1 - i / 999, wheel: 0, hwheel: 0 }));
    const replies = await Promise.all(moves);
    expect(replies.every((r) => r.ok)).toBe(true);
    expect(rig.gadgets.mouse.lastHex()).toBe('00 ff 7f 00 00 00 00');
    expect(rig.gadgets.mouse.reports.length).toBeLessThan(50);
  });

  it('never merges away a button change: every click of a burst reaches the host, in order', async () => {
    const rig = kvmRig();
    rig.gadgets.mouse.delayMs = 10;
    const events = [];
    for (let i = 0; i < 10; i++) {
      events.push({ buttons: 0, x: 0.1, y: 0.1, wheel: 0, hwheel: 0 }, { buttons: 1, x: 0.2, y: 0.2, wheel: 0, hwheel: 0 }, { buttons: 1, x: 0.3, y: 0.3, wheel: 0, hwheel: 0 });
    }
    events.push({ buttons: 0, x: 0.4, y: 0.4, wheel: 0, hwheel: 0 });
    await Promise.all(events.map((e) => rig.ok('hid_mouse', e)));
    const buttons = rig.gadgets.mouse.reports.map((r) => r[0]);
    const transitions = buttons.filter((b, i) => i === 0 || b !== buttons[i - 1]);
    expect(transitions).toEqual([...Array.from({ length: 10 }, () => [0, 1]).flat(), 0]);
  });

  it('adds up wheel steps it merges, so no scroll is lost', async () => {
    const rig = kvmRig();
    rig.gadgets.mouse.delayMs = 20;
    await Promise.all(Array.from({ length: 30 }, () => rig.ok('hid_mouse', { buttons: 0, x: 0.5, y: 0.5, wheel: 3, hwheel: 0 })));
    expect(rig.gadgets.mouse.reports.reduce((n, r) => n + (r[5]! << 24 >> 24), 0)).toBe(90);
  });

  it('releases buttons a REST caller left held when their lease runs out', async () => {
    const rig = kvmRig();
    await rig.ok('hid_mouse', { buttons: 2, x: 1, y: 0, wheel: 0, hwheel: 0 });
    await waitFor(() => rig.gadgets.mouse.reports.length === 2, 5_000, 'the buttons’ lease to run out');
    expect(rig.gadgets.mouse.reports.map(hex)).toEqual(['02 ff 7f 00 00 00 00', '00 ff 7f 00 00 00 00']);
  });

  it('a button release that fails is written again once the gadget works, so no button stays down', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send({ t: 'mouse', x: 0, y: 0, buttons: 1 });
    await waitFor(() => rig.gadgets.mouse.reports.length === 1, 5_000, 'the button down');
    rig.gadgets.mouse.unplug('HID_TIMEOUT');
    await viewer.close();
    await waitFor(() => rig.gadgets.mouse.attempts >= 2, 5_000, 'the release attempt');
    rig.gadgets.mouse.heal();
    await waitFor(() => rig.gadgets.mouse.lastHex() === '00 00 00 00 00 00 00', 10_000, 'the resync to write the release');
  });

  it('answers a failed mouse write with the gadget’s code and path', async () => {
    const rig = kvmRig();
    rig.gadgets.mouse.unplug('HID_MISSING');
    expect(await rig.fails('hid_mouse', { buttons: 0, x: 0, y: 0, wheel: 0, hwheel: 0 })).toMatchObject({ code: 'HID_MISSING', details: { path: '/test/hidg1' } });
  });
});

describe('kvm capability: status, LEDs, screen, laziness', () => {
  it('kvm_status tells the gadgets, the held keys, the LEDs (null until the host sends them) and the screen', async () => {
    const rig = kvmRig();
    expect(await rig.ok('kvm_status')).toEqual({
      held: [],
      leds: null,
      keyboard: { path: '/test/hidg0', state: 'unknown' },
      mouse: { path: '/test/hidg1', state: 'unknown' },
      screen: { backend: 'fake', signal: false, width: null, height: null },
    });
    rig.gadgets.led(0x02);
    await rig.ok('hid_keystroke', { code: 'CapsLock', modifiers: 0 });
    expect(await rig.ok('kvm_status')).toMatchObject({ leds: { num_lock: false, caps_lock: true, scroll_lock: false }, keyboard: { state: 'ok' } });
    rig.gadgets.led(0x05);
    expect((await rig.ok('kvm_status')).leds).toEqual({ num_lock: true, caps_lock: false, scroll_lock: true });
  });

  it('shows the screen every report written, so the simulated screen can draw it', async () => {
    const rig = kvmRig();
    await rig.ok('hid_keystroke', { code: 'KeyA', modifiers: 0 });
    await rig.ok('hid_mouse', { buttons: 1, x: 0.5, y: 0.75, wheel: 0, hwheel: 0 });
    expect(rig.screen.seen).toEqual([
      { gadget: 'keyboard', report: '00 00 04 00 00 00 00 00' },
      { gadget: 'keyboard', report: ZERO },
      { gadget: 'mouse', report: '01 ff 3f ff 5f 00 00' },
    ]);
  });

  it('opens nothing until the first kvm call, and once then', async () => {
    const rig = kvmRig();
    rig.caps.hello(quietLogger(), () => true);
    rig.caps.gone(quietLogger());
    expect(rig.opened).toEqual({ gadgets: 0, screen: 0 });
    await Promise.all([rig.ok('kvm_status'), rig.ok('hid_keystroke', { code: 'KeyA', modifiers: 0 })]);
    await rig.ok('kvm_status');
    expect(rig.opened).toEqual({ gadgets: 1, screen: 1 });
  });

  it('a gadget that cannot be opened fails the call (and the stream), and the next call tries again', async () => {
    let opens = 0;
    const gadgets = fakeGadgets();
    const caps = registry([
      kvmCapability({
        log: quietLogger(),
        gadgets: () => {
          if (++opens === 1) throw new Error('no configfs here');
          return gadgets;
        },
        screen: fakeScreen,
      }),
    ]);
    expect(await dispatchRpc(caps.rpc, 'kvm_status', {})).toMatchObject({ ok: false, error: { code: 'AGENT_ERROR', message: 'no configfs here' } });
    expect(await dispatchRpc(caps.rpc, 'hid_keystroke', { code: 'KeyA', modifiers: 0 })).toMatchObject({ ok: true });
    expect(gadgets.keyboard.reports.length).toBe(2);

    const none = registry([kvmCapability({ log: quietLogger(), gadgets: () => Promise.reject(new Error('still none')), screen: fakeScreen })]);
    const link = loopback({ agent: { onOpen: (stream, open) => none.stream(open)!(stream, open) } });
    const stream = link.hub.open({ kind: 'hid' });
    expect(await new Promise<string>((resolve) => stream.onReset((e) => resolve(e.code)))).toBe('INTERNAL_ERROR');
  });

  it('hands a screen stream to the screen module, which answers it', async () => {
    const rig = kvmRig();
    const stream = rig.link.hub.open({ kind: 'screen', mode: 'snapshot', format: 'jpeg', quality: 80 }, { fin: true });
    const head = await stream.accepted;
    expect([200, 204, 503]).toContain(head.status!);
    expect(rig.opened.screen).toBe(1);
  });

  it('the capability is advertised by its methods and refuses bad params before any device work', async () => {
    const rig = kvmRig();
    expect(rig.caps.names).toContain('hid_keystroke');
    expect(await rig.fails('hid_keystroke', { code: 'KeyA', modifiers: 256 })).toMatchObject({ code: 'INVALID_PARAMS' });
    expect(await rig.fails('hid_key', { action: 'down', code: 'KeyA', lease_ms: 10 })).toMatchObject({ code: 'INVALID_PARAMS' });
    expect(rig.opened.gadgets).toBe(0);
  });
});
