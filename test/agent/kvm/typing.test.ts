// Type jobs through their RPC methods: a text is checked whole against the layout before a key
// goes out, typed press-then-release per character with every character delivered in order,
// with progress, cancel (after the current character), and a failure that says where it stopped.
import { describe, expect, it } from 'bun:test';
import { asciiText, decodeTyped, hex, kvmRig, waitFor } from './helpers.ts';

const ZERO = '00 00 00 00 00 00 00 00';

/** waitFor with an async predicate. */
async function until<T>(fn: () => Promise<T | false | null | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function finished(rig: ReturnType<typeof kvmRig>, id: string) {
  return until(async () => {
    const job = await rig.ok('hid_type_status', { job: id });
    return job.state !== 'typing' && job;
  }, `job ${id} to end`);
}

describe('kvm capability: type jobs', () => {
  it('turns Caps Lock off for the text when the host says it is on, and back on after', async () => {
    const rig = kvmRig();
    await rig.ok('kvm_status'); // the gadgets open (and their LEDs are listened to) with the first call
    rig.gadgets.led(0x02);
    await until(async () => (await rig.ok('kvm_status')).leds?.caps_lock, 'the Caps Lock LED');
    const job = await rig.ok('hid_type_start', { text: 'aB', layout: 'en-US' });
    expect(await finished(rig, job.id)).toMatchObject({ state: 'done', typed: 2 });
    const caps = '00 00 39 00 00 00 00 00';
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual([ZERO, caps, ZERO, '00 00 04 00 00 00 00 00', ZERO, '02 00 05 00 00 00 00 00', ZERO, caps, ZERO]);
    // With Caps Lock off (or not reported), nothing is tapped.
    rig.gadgets.led(0x00);
    await until(async () => (await rig.ok('kvm_status')).leds?.caps_lock === false, 'the LED off');
    const before = rig.gadgets.keyboard.reports.length;
    const second = await rig.ok('hid_type_start', { text: 'a', layout: 'en-US' });
    await finished(rig, second.id);
    expect(rig.gadgets.keyboard.reports.slice(before).map(hex)).toEqual([ZERO, '00 00 04 00 00 00 00 00', ZERO]);
  });

  it('types a short text: a release first, then each character as a press and a release', async () => {
    const rig = kvmRig();
    const job = await rig.ok('hid_type_start', { text: 'Hi!', layout: 'en-US' });
    expect(job).toMatchObject({ layout: 'en-US', state: 'typing', typed: 0, total: 3, substitutions: [] });
    const done = await finished(rig, job.id);
    expect(done).toMatchObject({ id: job.id, state: 'done', typed: 3, total: 3 });
    expect(done.error).toBeUndefined();
    expect(rig.gadgets.keyboard.reports.map(hex)).toEqual([
      ZERO,
      '02 00 0b 00 00 00 00 00', ZERO, // H
      '00 00 0c 00 00 00 00 00', ZERO, // i
      '02 00 1e 00 00 00 00 00', ZERO, // !
    ]);
  });

  it('delivers every character of a 1,000-character text, in order', async () => {
    const rig = kvmRig();
    const text = asciiText(1000);
    const job = await rig.ok('hid_type_start', { text, layout: 'en-US' });
    const done = await finished(rig, job.id);
    expect(done).toMatchObject({ state: 'done', typed: 1000, total: 1000 });
    expect(decodeTyped(rig.gadgets.keyboard.reports)).toBe(text);
    expect(rig.gadgets.keyboard.reports.length).toBe(1 + 2 * 1000);
  });

  it('refuses a text the layout cannot type, naming the first character, before any key goes out', async () => {
    const rig = kvmRig();
    expect(await rig.fails('hid_type_start', { text: 'price: 5€ or 6£', layout: 'en-US' })).toMatchObject({ code: 'UNTYPEABLE_CHARACTER', details: { index: 8, char: '€' } });
    expect(await rig.fails('hid_type_start', { text: 'hello', layout: 'xx-XX' })).toMatchObject({ code: 'UNKNOWN_LAYOUT' });
    expect(rig.gadgets.keyboard.attempts).toBe(0);
  });

  it('refuses a second text and keystrokes while one types (TYPE_BUSY), and takes them again after', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.delayMs = 2;
    const job = await rig.ok('hid_type_start', { text: asciiText(200), layout: 'en-US' });
    expect(await rig.fails('hid_type_start', { text: 'x', layout: 'en-US' })).toMatchObject({ code: 'TYPE_BUSY', details: { job: job.id } });
    expect(await rig.fails('hid_keystroke', { code: 'KeyA', modifiers: 0 })).toMatchObject({ code: 'TYPE_BUSY' });
    expect(await rig.fails('hid_key', { action: 'down', code: 'KeyA' })).toMatchObject({ code: 'TYPE_BUSY' });
    await rig.ok('hid_type_cancel', { job: job.id });
    await rig.ok('hid_keystroke', { code: 'KeyA', modifiers: 0 });
  });

  it('releases held keys before typing, so a held Shift cannot garble the text', async () => {
    const rig = kvmRig();
    await rig.ok('hid_key', { action: 'down', code: 'ShiftLeft', lease_ms: 60_000 });
    const job = await rig.ok('hid_type_start', { text: 'ab', layout: 'en-US' });
    await finished(rig, job.id);
    expect((await rig.ok('kvm_status')).held).toEqual([]);
    // The Shift press of the hold, then the release the job starts with, then the text.
    expect(rig.gadgets.keyboard.reports.map(hex).slice(0, 2)).toEqual(['02 00 00 00 00 00 00 00', ZERO]);
    expect(decodeTyped(rig.gadgets.keyboard.reports.slice(1))).toBe('ab');
  });

  it('shows progress while typing, and cancel stops after the current character with every key released', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.delayMs = 3;
    const text = asciiText(2000, 3);
    const job = await rig.ok('hid_type_start', { text, layout: 'en-US' });
    const midway = await until(async () => {
      const j = await rig.ok('hid_type_status', { job: job.id });
      return j.typed >= 5 && j;
    }, 'progress');
    expect(midway).toMatchObject({ state: 'typing', total: 2000 });
    const cancelled = await rig.ok('hid_type_cancel', { job: job.id });
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.typed).toBeGreaterThanOrEqual(midway.typed);
    expect(cancelled.typed).toBeLessThan(2000);
    const reports = rig.gadgets.keyboard.reports;
    expect(hex(reports.at(-1)!)).toBe(ZERO);
    expect(reports.length).toBe(1 + 2 * cancelled.typed);
    expect(decodeTyped(reports)).toBe(text.slice(0, cancelled.typed));
    expect(await rig.ok('hid_type_status', { job: job.id })).toEqual(cancelled);
  });

  it('a failed press stops the job, failed, saying where; the characters before it were all delivered', async () => {
    const rig = kvmRig();
    const text = asciiText(100, 5);
    // Attempt 1 is the release before typing; 2k+2 and 2k+3 are character k's press and release.
    rig.gadgets.keyboard.fail = (attempt) => (attempt === 2 * 40 + 2 ? 'HID_UNPLUGGED' : null);
    const job = await rig.ok('hid_type_start', { text, layout: 'en-US' });
    const done = await finished(rig, job.id);
    expect(done).toMatchObject({ state: 'failed', typed: 40, total: 100, error: { code: 'HID_UNPLUGGED', at: 40 } });
    expect(done.error.message).toContain('/test/hidg0');
    expect(decodeTyped(rig.gadgets.keyboard.reports)).toBe(text.slice(0, 40));
    expect(rig.gadgets.keyboard.reports.length).toBe(1 + 2 * 40);
  });

  it('a failed release stops the job there, and the release is written again so the key does not stay down', async () => {
    const rig = kvmRig();
    const text = asciiText(100, 5);
    rig.gadgets.keyboard.fail = (attempt) => (attempt === 2 * 40 + 3 ? 'HID_TIMEOUT' : null);
    const job = await rig.ok('hid_type_start', { text, layout: 'en-US' });
    const done = await finished(rig, job.id);
    // Character 40 was pressed but its release did not go through: it is not counted as typed.
    expect(done).toMatchObject({ state: 'failed', typed: 40, error: { code: 'HID_TIMEOUT', at: 40 } });
    await waitFor(() => rig.gadgets.keyboard.reports.length === 1 + 2 * 41, 10_000, 'the resync to write the release');
    expect(rig.gadgets.keyboard.lastHex()).toBe(ZERO);
    expect(decodeTyped(rig.gadgets.keyboard.reports)).toBe(text.slice(0, 41));
  });

  it('types with a pause between characters when asked (interval_ms)', async () => {
    const rig = kvmRig();
    const job = await rig.ok('hid_type_start', { text: 'abc', layout: 'en-US', interval_ms: 30 });
    const done = await finished(rig, job.id);
    expect(done).toMatchObject({ state: 'done', typed: 3 });
    expect(decodeTyped(rig.gadgets.keyboard.reports)).toBe('abc');
  });

  it('keeps the last 16 finished jobs for status and forgets older ones', async () => {
    const rig = kvmRig();
    const ids: string[] = [];
    for (let i = 0; i < 18; i++) {
      const job = await rig.ok('hid_type_start', { text: 'k', layout: 'en-US' });
      await finished(rig, job.id);
      ids.push(job.id);
    }
    expect(await rig.fails('hid_type_status', { job: ids[0] })).toMatchObject({ code: 'UNKNOWN_TYPE_JOB' });
    expect(await rig.fails('hid_type_cancel', { job: ids[1] })).toMatchObject({ code: 'UNKNOWN_TYPE_JOB' });
    expect(await rig.ok('hid_type_status', { job: ids[2] })).toMatchObject({ state: 'done' });
    expect(await rig.ok('hid_type_status', { job: ids[17] })).toMatchObject({ state: 'done' });
  });

  it('when the connection goes, typing stops (failed, with where) and everything is released', async () => {
    const rig = kvmRig();
    rig.gadgets.keyboard.delayMs = 3;
    await rig.ok('hid_key', { action: 'down', code: 'MetaLeft', lease_ms: 60_000 });
    const job = await rig.ok('hid_type_start', { text: asciiText(2000), layout: 'en-US' });
    await until(async () => (await rig.ok('hid_type_status', { job: job.id })).typed >= 3, 'progress');
    await rig.ok('hid_mouse', { buttons: 4, x: 0.25, y: 0.25, wheel: 0, hwheel: 0 });
    rig.caps.gone({ debug() {}, info() {}, warn() {}, error() {} });
    const done = await finished(rig, job.id);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'CONNECTION_LOST' } });
    expect(done.error.at).toBe(done.typed);
    expect(done.typed).toBeLessThan(2000);
    await waitFor(() => rig.gadgets.keyboard.lastHex() === ZERO && rig.gadgets.mouse.lastHex() === '00 ff 1f ff 1f 00 00', 5_000, 'everything released');
    expect((await rig.ok('kvm_status')).held).toEqual([]);
  });
});
