// The `hid` stream as the hub opens it for one viewer, over a real StreamMux pair: NDJSON in and
// out, keys that belong to the stream and are released when it ends however it ends, coalesced
// mouse moves, type jobs with progress, LEDs, and lines that are not messages answered with an
// error line while the stream stays usable. Written as the attacker of the stream would try it.
import { describe, expect, it } from 'bun:test';
import { MAX_HID_LINE } from '../../../agent/kvm/hid-stream.ts';
import { ResetCode } from '../../../shared/codes.ts';
import { asciiText, decodeTyped, hex, kvmRig, sleep, waitFor } from './helpers.ts';

const ZERO = '00 00 00 00 00 00 00 00';

describe('kvm capability: the hid stream', () => {
  it('is accepted at once and says the state first', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    expect(await viewer.next('state')).toEqual({ t: 'state', held: [], leds: null });
    await viewer.close();
  });

  it('presses and releases keys, saying the state after each change', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'ShiftLeft' }, { t: 'down', code: 'KeyA' });
    await viewer.next('state', (s) => s.held.length === 2);
    await viewer.send({ t: 'up', code: 'KeyA' }, { t: 'up', code: 'ShiftLeft' }, { t: 'keystroke', code: 'Enter', modifiers: ['ControlLeft'] });
    await waitFor(() => rig.gadgets.keyboard.reports.length === 6, 5_000, 'six reports');
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual([
      '02 00 00 00 00 00 00 00',
      '02 00 04 00 00 00 00 00',
      '02 00 00 00 00 00 00 00',
      ZERO,
      '01 00 28 00 00 00 00 00',
      ZERO,
    ]);
    expect(viewer.lines.filter((l) => l.t === 'state').at(-1)).toEqual({ t: 'state', held: [], leds: null });
    await viewer.close();
  });

  it('releases every key and button the stream holds when it closes', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'ControlLeft' }, { t: 'down', code: 'KeyC' }, { t: 'mouse', x: 0.5, y: 0.5, buttons: 1 });
    await waitFor(() => rig.gadgets.keyboard.lastHex() === '01 00 06 00 00 00 00 00' && rig.gadgets.mouse.reports.length === 1, 5_000, 'the key and button down');
    await viewer.close();
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO && rig.gadgets.mouse.lastHex() === '00 ff 3f ff 3f 00 00', 5_000, 'the release');
    expect((await rig.ok('kvm_status')).held).toEqual([]);
  });

  it('releases them when the stream is reset, as when the viewer’s socket drops', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'AltLeft' }, { t: 'down', code: 'Tab' });
    await waitFor(() => rig.gadgets.keyboard.lastHex() === '04 00 2b 00 00 00 00 00', 5_000, 'Alt-Tab held');
    viewer.stream.reset(ResetCode.CANCELLED, 'viewer gone');
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 5_000, 'the release');
    expect((await rig.ok('kvm_status')).held).toEqual([]);
  });

  it('takes no more lines once the stream is reset, so lines still in the buffer cannot hold keys', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.delayMs = 30;
    const viewer = await rig.hid();
    await viewer.send(...['KeyA', 'KeyB', 'KeyC', 'KeyD', 'KeyE'].map((code) => ({ t: 'down', code })));
    await waitFor(() => rig.gadgets.keyboard.attempts >= 1, 5_000, 'the first press');
    viewer.stream.reset(ResetCode.CANCELLED, 'viewer gone');
    await sleep(400);
    expect((await rig.ok('kvm_status')).held).toEqual([]);
    expect(rig.gadgets.keyboard.lastHex()).toBe(ZERO);
  });

  it('releases them when the relay connection goes (every stream reset with the socket)', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'KeyW' });
    await waitFor(() => rig.gadgets.keyboard.lastHex() === '00 00 1a 00 00 00 00 00', 5_000, 'W held');
    rig.link.agent.resetAll(ResetCode.SOCKET_CLOSED, 'the relay connection closed');
    rig.caps.gone({ debug() {}, info() {}, warn() {}, error() {} });
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 5_000, 'the release');
  });

  it('a key two holders hold stays down until both let go; a viewer cannot release another holder’s key', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'ShiftLeft', lease_ms: 60_000 });
    const a = await rig.hid();
    const b = await rig.hid();
    await a.send({ t: 'down', code: 'ShiftLeft' });
    await b.send({ t: 'up', code: 'ShiftLeft' }, { t: 'release' });
    await a.close();
    await a.ended;
    await b.close();
    await b.ended;
    await sleep(20);
    expect((await rig.ok('kvm_status')).held).toEqual(['ShiftLeft']);
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual(['02 00 00 00 00 00 00 00']);
    await rig.ok('hid_key', { action: 'up', code: 'ShiftLeft' });
    expect(rig.gadgets.keyboard.lastHex()).toBe(ZERO);
  });

  it('a release message lets go of what this stream holds, and only that', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'KeyL', lease_ms: 60_000 });
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'KeyM' }, { t: 'mouse', x: 0, y: 0, buttons: 3 }, { t: 'release' });
    await waitFor(() => rig.gadgets.mouse.reports.length === 2 && rig.gadgets.keyboard.reports.length === 3, 5_000, 'the release');
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual(['00 00 0f 00 00 00 00 00', '00 00 0f 10 00 00 00 00', '00 00 0f 00 00 00 00 00']);
    expect(rig.gadgets.mouse.reports.map(hex)).toEqual(['03 00 00 00 00 00 00', '00 00 00 00 00 00 00']);
    expect((await rig.ok('kvm_status')).held).toEqual(['KeyL']);
    await viewer.close();
    await rig.ok('hid_release');
  });

  it('answers a malformed line with an error line and stays usable', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send('{not json', { t: 'down', code: 'NoSuchKey' }, { t: 'frobnicate' }, '[]', 'null', { t: 'down', code: 'KeyA', extra: 1 }, '   ', { t: 'down', code: 'KeyQ' });
    await viewer.next('state', (s) => s.held.includes('KeyQ'));
    const errors = viewer.lines.filter((l) => l.t === 'error');
    expect(errors.map((e) => e.t === 'error' && e.code)).toEqual(Array(6).fill('BAD_MESSAGE'));
    expect(errors[0]).toMatchObject({ details: { line: 1 } });
    expect(errors[1]).toMatchObject({ details: { line: 2 } });
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual(['00 00 14 00 00 00 00 00']);
    await viewer.close();
  });

  it('survives bytes that are not UTF-8, a line split across chunks, and a line too long', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.sendRaw(new Uint8Array([0xff, 0xfe, 0x00, 0x0a]));
    await viewer.sendRaw(new TextEncoder().encode('{"t":"do'));
    await viewer.sendRaw(new TextEncoder().encode('wn","code":"KeyS"}\n'));
    await viewer.next('state', (s) => s.held.includes('KeyS'));
    const huge = new TextEncoder().encode('x'.repeat(MAX_HID_LINE + 10));
    await viewer.sendRaw(huge);
    const from = viewer.lines.length;
    await viewer.send('tail of the long line', { t: 'up', code: 'KeyS' });
    await viewer.next('state', (s) => s.held.length === 0, from);
    const codes = viewer.lines.filter((l) => l.t === 'error').map((e) => e.t === 'error' && e.code);
    expect(codes).toEqual(['BAD_MESSAGE', 'LINE_TOO_LONG']);
    await viewer.close();
  });

  it('refuses a seventh key with an error line and keeps the six held', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    const keys = ['Digit1', 'Digit2', 'Digit3', 'Digit4', 'Digit5', 'Digit6', 'Digit7'];
    await viewer.send(...keys.map((code) => ({ t: 'down', code })));
    const error = await viewer.next('error');
    expect(error).toMatchObject({ code: 'TOO_MANY_KEYS', details: { code: 'Digit7' } });
    expect((await rig.ok('kvm_status')).held).toEqual(keys.slice(0, 6));
    await viewer.close();
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 5_000, 'the release');
  });

  it('coalesces a burst of 1,000 moves while the mouse is slow: the last position is written, with far fewer writes', async () => {
    const rig = kvmRig();
    rig.gadgets.mouse.delayMs = 20;
    const viewer = await rig.hid();
    const moves = Array.from({ length: 1000 }, (_, i) => ({ t: 'mouse', x: i / 999, y: 0.5, buttons: 0 }));
    await viewer.send(...moves);
    await waitFor(() => rig.gadgets.mouse.lastHex() === '00 ff 7f ff 3f 00 00', 10_000, 'the last position');
    expect(rig.gadgets.mouse.reports.length).toBeLessThan(50);
    await viewer.close();
  });

  it('lets 60 moves a second through, each written, when the gadget keeps up', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    for (let i = 0; i < 60; i++) {
      await viewer.send({ t: 'mouse', x: i / 59, y: 0, buttons: 0 });
      await sleep(1000 / 60);
    }
    await waitFor(() => rig.gadgets.mouse.lastHex() === '00 ff 7f 00 00 00 00', 5_000, 'the last move');
    // Nothing was slow, so nothing needed merging: every move reached the host.
    expect(rig.gadgets.mouse.reports.length).toBe(60);
    await viewer.close();
  });

  it('types a text with progress lines and a last line when done; the typing is the stream’s and ends with it', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    const text = asciiText(300, 9);
    await viewer.send({ t: 'type', text, layout: 'en-US' });
    const done = await viewer.next('type', (l) => l.job.state !== 'typing');
    expect(done.job).toMatchObject({ state: 'done', typed: 300, total: 300 });
    expect(viewer.lines.find((l) => l.t === 'type')).toMatchObject({ job: { state: 'typing', typed: 0 } });
    expect(decodeTyped(rig.gadgets.keyboard.reports)).toBe(text);

    rig.gadgets.keyboard.delayMs = 3;
    await viewer.send({ t: 'type', text: asciiText(2000), layout: 'en-US' });
    const started = await viewer.next('type', (l) => l.job.state === 'typing' && l.job.total === 2000);
    await viewer.send({ t: 'type', text: 'again', layout: 'en-US' }, { t: 'keystroke', code: 'KeyA', modifiers: [] });
    await viewer.next('error', (e) => e.code === 'TYPE_BUSY');
    await viewer.send({ t: 'cancel' });
    const cancelled = await viewer.next('type', (l) => l.job.id === started.job.id && l.job.state === 'cancelled');
    expect(cancelled.job.typed).toBeLessThan(2000);
    await viewer.send({ t: 'cancel' });
    await viewer.next('error', (e) => e.code === 'NO_TYPE_JOB');

    const from = viewer.lines.length;
    await viewer.send({ t: 'type', text: asciiText(2000), layout: 'en-US' });
    const third = await viewer.next('type', (l) => l.job.state === 'typing', from);
    viewer.stream.reset(ResetCode.CANCELLED, 'viewer gone');
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO, 5_000, 'released');
    const end = await (async () => {
      for (let i = 0; i < 400; i++) {
        const j = await rig.ok('hid_type_status', { job: third.job.id });
        if (j.state !== 'typing') return j;
        await sleep(10);
      }
      throw new Error('the job did not end with its stream');
    })();
    expect(end.state).toBe('cancelled');
  });

  it('refuses a text the layout cannot type with an error line naming the character', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.send({ t: 'type', text: 'naïve', layout: 'en-US' });
    expect(await viewer.next('error')).toMatchObject({ code: 'UNTYPEABLE_CHARACTER', details: { index: 2, char: 'ï' } });
    expect(rig.gadgets.keyboard.attempts).toBe(0);
    await viewer.close();
  });

  it('sends the state when the host’s LEDs change', async () => {
    const rig = kvmRig();
    const viewer = await rig.hid();
    await viewer.next('state');
    rig.gadgets.led(0x01);
    expect(await viewer.next('state', (s) => s.leds !== null)).toEqual({ t: 'state', held: [], leds: { num_lock: true, caps_lock: false, scroll_lock: false } });
    await viewer.close();
  });

  it('reports a gadget failure as an error line with the code and path', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.unplug('HID_UNPLUGGED');
    rig.gadgets.mouse.unplug('HID_MISSING');
    const viewer = await rig.hid();
    await viewer.send({ t: 'down', code: 'KeyA' }, { t: 'mouse', x: 0, y: 0, buttons: 0 });
    expect(await viewer.next('error', (e) => e.code === 'HID_UNPLUGGED')).toMatchObject({ details: { path: '/test/hidg0' } });
    expect(await viewer.next('error', (e) => e.code === 'HID_MISSING')).toMatchObject({ details: { path: '/test/hidg1' } });
    expect((await rig.ok('kvm_status')).held).toEqual([]);
    await viewer.close();
  });
});
