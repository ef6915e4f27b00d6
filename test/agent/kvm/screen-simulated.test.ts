// The simulated screen: what it shows changes with every HID report it sees (the typed text read
// back off the decoded JPEG, the pointer where the mouse report puts it), it honours format,
// quality and maximum size, and the no-signal file unplugs its "HDMI cable" at run time.
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HID_USAGES, MODIFIER_BITS } from '../../../shared/hid/keycodes.ts';
import { keyboardReport, mouseReport } from '../../../shared/hid/reports.ts';
import { imageSize, type RgbaImage } from '../../../agent/kvm/screen/image.ts';
import { keyText, SimulatedScreen, TITLE, TYPED_SHOWN } from '../../../agent/kvm/screen/simulated.ts';
import { decodeJpeg, decodePng, readText } from './screen-helpers.ts';
import { waitFor } from '../tunnels/helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pirelay-screen-'));
  dirs.push(d);
  return d;
}

/** Presses and releases each key in turn, as a keystroke does. */
function press(screen: SimulatedScreen, ...keys: [string, number?][]): void {
  for (const [code, modifiers = 0] of keys) {
    screen.observe('keyboard', keyboardReport(modifiers, [HID_USAGES[code]!]));
    screen.observe('keyboard', keyboardReport(0, []));
  }
}

function typeText(screen: SimulatedScreen, text: string): void {
  for (const c of text) {
    if (c === ' ') press(screen, ['Space']);
    else if (c >= '0' && c <= '9') press(screen, [`Digit${c}`]);
    else if (c >= 'A' && c <= 'Z') press(screen, [`Key${c}`, MODIFIER_BITS.ShiftLeft]);
    else press(screen, [`Key${c.toUpperCase()}`]);
  }
}

function line(screen: SimulatedScreen, image: RgbaImage, name: string, count: number): string {
  const at = screen.placed.get(name)!;
  return readText(image, at.x, at.y, at.scale, count).trimEnd();
}

async function jpegOf(screen: SimulatedScreen, quality = 90): Promise<RgbaImage> {
  const frame = await screen.capture({ format: 'jpeg', quality });
  return decodeJpeg(frame!.bytes);
}

describe('the simulated screen', () => {
  test('draws the title, and a 1280×720 JPEG by default, stamped with its capture time', async () => {
    const screen = new SimulatedScreen({ now: () => 1234.5 });
    const frame = (await screen.capture({ format: 'jpeg', quality: 80 }))!;
    expect(frame.contentType).toBe('image/jpeg');
    expect([frame.width, frame.height]).toEqual([1280, 720]);
    expect(imageSize(frame.bytes)).toEqual({ width: 1280, height: 720 });
    expect(frame.capturedAt).toBe(1234.5);
    const image = decodeJpeg(frame.bytes);
    const u = 2;
    expect(readText(image, 16 * u, Math.floor(720 * 0.2) + 16 * u, 2 * u, TITLE.length)).toBe(TITLE);
    expect(line(screen, image, 'frame', 40)).toBe('1  captured 1234.5 ms');
    expect(screen.state()).toEqual({ backend: 'simulated', signal: true, width: 1280, height: 720 });
  });

  test('shows what was typed, read back off the decoded JPEG', async () => {
    const screen = new SimulatedScreen();
    expect(line(screen, await jpegOf(screen), 'typed', 10)).toBe('');
    typeText(screen, 'Hello pirelay 42');
    expect(line(screen, await jpegOf(screen), 'typed', TYPED_SHOWN)).toBe('Hello pirelay 42');
    press(screen, ['Enter'], ['Delete', MODIFIER_BITS.ControlLeft | MODIFIER_BITS.AltLeft]);
    expect(screen.shown().typed).toBe('Hello pirelay 42<Enter><Ctrl+Alt+Delete>');
    expect(line(screen, await jpegOf(screen), 'typed', TYPED_SHOWN)).toBe('Hello pirelay 42<Enter><Ctrl+Alt+Delete>'.slice(-TYPED_SHOWN));
  });

  test(`keeps the last ${TYPED_SHOWN} characters`, () => {
    const screen = new SimulatedScreen();
    typeText(screen, 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghij');
    expect(screen.shown().typed).toBe('abcdefghijklmnopqrstuvwxyz0123456789abcdefghij'.slice(-TYPED_SHOWN));
  });

  test('a held key counts once, shows as held, and the image changes with every report', async () => {
    const screen = new SimulatedScreen();
    const before = (await screen.capture({ format: 'jpeg', quality: 80 }))!.bytes;
    screen.observe('keyboard', keyboardReport(MODIFIER_BITS.ShiftLeft, [HID_USAGES.KeyA!]));
    screen.observe('keyboard', keyboardReport(MODIFIER_BITS.ShiftLeft, [HID_USAGES.KeyA!, HID_USAGES.KeyB!]));
    expect(screen.shown().typed).toBe('AB');
    expect(screen.shown().held).toEqual(['ShiftLeft', 'KeyA', 'KeyB']);
    const held = await jpegOf(screen);
    expect(line(screen, held, 'held', 30)).toBe('ShiftLeft KeyA KeyB');
    const after = (await screen.capture({ format: 'jpeg', quality: 80 }))!.bytes;
    expect(after).not.toEqual(before);
    // A report that changes nothing held still changes the picture (the report count).
    const reports = screen.shown().reports;
    screen.observe('keyboard', keyboardReport(MODIFIER_BITS.ShiftLeft, [HID_USAGES.KeyA!, HID_USAGES.KeyB!]));
    expect(screen.shown().typed).toBe('AB');
    const again = await jpegOf(screen);
    expect(line(screen, again, 'reports', 10)).toBe(String(reports + 1));
  });

  test('draws the pointer where the mouse report puts it', async () => {
    const screen = new SimulatedScreen({ now: () => 0 });
    screen.observe('mouse', mouseReport({ buttons: 0, x: 0.5, y: 0.75 }));
    const a = screen.render(0);
    const at = (image: RgbaImage, x: number, y: number) => [...image.data.subarray((y * image.width + x) * 4, (y * image.width + x) * 4 + 3)];
    // The arrow's tip is black at (639, 539) and its body white just inside it.
    const tip = { x: Math.round(0.5 * 1279), y: Math.round((24573 / 32767) * 719) };
    expect(at(a, tip.x, tip.y)).toEqual([0, 0, 0]);
    expect(at(a, tip.x + 2, tip.y + 6)).toEqual([255, 255, 255]);
    expect(line(screen, a, 'pointer', 40)).toBe('50.0% 75.0%  buttons 0  wheel 0');
    screen.observe('mouse', mouseReport({ buttons: 1, x: 0.1, y: 0.2, wheel: -3 }));
    const b = screen.render(0);
    expect(at(b, tip.x + 2, tip.y + 6)).not.toEqual([255, 255, 255]);
    expect(at(b, Math.round(0.1 * 1279) + 2, Math.round((6553 / 32767) * 719) + 6)).toEqual([255, 255, 255]);
    expect(line(screen, b, 'pointer', 40)).toBe('10.0% 20.0%  buttons 1  wheel -3');
    // And through the JPEG: the two frames differ.
    expect(screen.shown().pointer.buttons).toBe(1);
  });

  test('key names for what does not print', () => {
    expect(keyText('KeyQ', 0)).toBe('q');
    expect(keyText('KeyQ', MODIFIER_BITS.ShiftRight)).toBe('Q');
    expect(keyText('Digit2', MODIFIER_BITS.ShiftLeft)).toBe('@');
    expect(keyText('Slash', MODIFIER_BITS.ShiftLeft)).toBe('?');
    expect(keyText('F5', 0)).toBe('<F5>');
    expect(keyText('KeyC', MODIFIER_BITS.ControlRight)).toBe('<Ctrl+KeyC>');
    expect(keyText('Tab', MODIFIER_BITS.AltLeft)).toBe('<Alt+Tab>');
  });

  test('ignores reports of the wrong size instead of failing', () => {
    const screen = new SimulatedScreen();
    screen.observe('keyboard', new Uint8Array([1, 2]));
    screen.observe('mouse', new Uint8Array(0));
    screen.observe('mouse', new Uint8Array([0, 0xff, 0xff, 0xff, 0xff, 0, 0])); // beyond the logical maximum
    expect(screen.shown().pointer).toEqual({ x: 1, y: 1, buttons: 0, wheel: 0 });
    expect(() => screen.render()).not.toThrow();
  });

  test('honours the maximum size (aspect kept), PNG, and a configured size', async () => {
    const screen = new SimulatedScreen();
    const small = (await screen.capture({ format: 'jpeg', quality: 60, maxWidth: 640 }))!;
    expect([small.width, small.height]).toEqual([640, 360]);
    expect(imageSize(small.bytes)).toEqual({ width: 640, height: 360 });
    const boxed = (await screen.capture({ format: 'jpeg', quality: 60, maxWidth: 1000, maxHeight: 200 }))!;
    expect([boxed.width, boxed.height]).toEqual([355, 200]);
    expect([decodeJpeg(boxed.bytes).width, decodeJpeg(boxed.bytes).height]).toEqual([355, 200]);
    const png = (await screen.capture({ format: 'png', quality: 60 }))!;
    expect(png.contentType).toBe('image/png');
    const decoded = decodePng(png.bytes);
    expect(readText(decoded, 32, Math.floor(720 * 0.2) + 32, 4, TITLE.length)).toBe(TITLE);
    const other = new SimulatedScreen({ width: 800, height: 600 });
    const f = (await other.capture({ format: 'jpeg', quality: 50 }))!;
    expect([f.width, f.height]).toEqual([800, 600]);
  });

  test('the extremes a viewer may ask for: the smallest box, quality 1 and 100, a box larger than the screen', async () => {
    const screen = new SimulatedScreen();
    const tiny = (await screen.capture({ format: 'jpeg', quality: 1, maxWidth: 16, maxHeight: 16 }))!;
    expect([tiny.width, tiny.height]).toEqual([16, 9]);
    expect([decodeJpeg(tiny.bytes).width, decodeJpeg(tiny.bytes).height]).toEqual([16, 9]);
    const best = (await screen.capture({ format: 'jpeg', quality: 100, maxWidth: 8192, maxHeight: 8192 }))!;
    expect([best.width, best.height]).toEqual([1280, 720]); // never enlarged
    const decoded = decodeJpeg(best.bytes);
    expect(readText(decoded, 32, Math.floor(720 * 0.2) + 32, 4, TITLE.length)).toBe(TITLE);
  });

  test('quality changes the JPEG', async () => {
    const screen = new SimulatedScreen({ now: () => 0 });
    const low = (await screen.capture({ format: 'jpeg', quality: 10 }))!.bytes.length;
    const high = (await screen.capture({ format: 'jpeg', quality: 95 }))!.bytes.length;
    expect(high).toBeGreaterThan(low * 1.5);
  });

  test('no signal while <hidDir>/no-signal exists, and back when it goes', async () => {
    const dir = tempDir();
    const screen = new SimulatedScreen({ hidDir: dir });
    expect(await screen.capture({ format: 'jpeg', quality: 80 })).not.toBeNull();
    writeFileSync(join(dir, 'no-signal'), '');
    await waitFor(() => !screen.state().signal, 5_000, 'the signal to go');
    expect(screen.state()).toMatchObject({ backend: 'simulated', signal: false, width: null, height: null });
    expect(await screen.capture({ format: 'jpeg', quality: 80 })).toBeNull();
    rmSync(join(dir, 'no-signal'));
    await waitFor(() => screen.state().signal, 5_000, 'the signal to come back');
    expect(await screen.capture({ format: 'png', quality: 80 })).not.toBeNull();
  });
});
