// The report descriptors held against the encoder: a host's view of each descriptor (parsed by
// hid-descriptor.ts) decodes what keyboardReport and mouseReport write back to what was meant;
// and deploy/hid-gadget.sh, run into a temporary configfs, writes the very same descriptor bytes
// with the right protocol, subclass and report length.
import { describe, expect, it } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GADGETS, KEYBOARD_REPORT_DESCRIPTOR, MOUSE_REPORT_DESCRIPTOR } from '../../../shared/hid/descriptors.ts';
import { HID_USAGES, isModifier, MODIFIER_BITS, MODIFIER_CODES } from '../../../shared/hid/keycodes.ts';
import { ABSOLUTE_MAX, KEYBOARD_REPORT_SIZE, KeyboardState, MAX_KEYS_HELD, MOUSE_REPORT_SIZE, mouseReport, parseLeds } from '../../../shared/hid/reports.ts';
import { type Field, fieldValue, parseDescriptor } from './hid-descriptor.ts';

const ROOT = resolve(import.meta.dir, '../../..');
const KEYBOARD_PAGE = 0x07;
const usage = (page: number, id: number) => page * 0x10000 + id;

function only<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`expected one ${what}, found ${items.length}`);
  return items[0]!;
}

describe('the descriptor parser', () => {
  it('reads one-byte extents as signed, which is why 0xE7 needs two bytes', () => {
    const oneByte = parseDescriptor(new Uint8Array([0x15, 0x00, 0x25, 0xe7, 0x75, 0x08, 0x95, 0x01, 0x81, 0x00]));
    expect(oneByte.fields[0]!.logicalMax).toBe(-25);
    const twoBytes = parseDescriptor(new Uint8Array([0x15, 0x00, 0x26, 0xe7, 0x00, 0x75, 0x08, 0x95, 0x01, 0x81, 0x00]));
    expect(twoBytes.fields[0]!.logicalMax).toBe(0xe7);
  });

  it('lays out the HID spec’s own boot keyboard (HID 1.11, appendix B.1)', () => {
    // prettier-ignore
    const spec = new Uint8Array([0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0]);
    const l = parseDescriptor(spec);
    expect(l.bits).toEqual({ input: 64, output: 8, feature: 0 });
    const keys = l.fields.find((f) => f.kind === 'input' && !f.variable && !f.constant)!;
    expect([keys.bit, keys.size, keys.count, keys.logicalMax, keys.usageMax]).toEqual([16, 8, 6, 0x65, usage(7, 0x65)]);
  });

  it('refuses a truncated descriptor and an unclosed collection', () => {
    expect(() => parseDescriptor(new Uint8Array([0x26, 0xff]))).toThrow();
    expect(() => parseDescriptor(new Uint8Array([0xa1, 0x01]))).toThrow();
  });
});

describe('keyboard descriptor', () => {
  const layout = parseDescriptor(KEYBOARD_REPORT_DESCRIPTOR);
  const inputs = layout.fields.filter((f) => f.kind === 'input');
  const data = inputs.filter((f) => !f.constant);
  const modifiers = only(
    data.filter((f) => f.variable),
    'modifier field',
  );
  const keys = only(
    data.filter((f) => !f.variable),
    'key array',
  );

  it('describes the 8-byte boot report with no report ID', () => {
    expect(layout.reportIds).toEqual([]);
    expect(layout.bits.input).toBe(KEYBOARD_REPORT_SIZE * 8);
    expect([modifiers.bit, modifiers.size, modifiers.count]).toEqual([0, 1, 8]);
    const reserved = only(
      inputs.filter((f) => f.constant),
      'reserved byte',
    );
    expect([reserved.bit, reserved.size * reserved.count]).toEqual([8, 8]);
    expect([keys.bit, keys.size, keys.count]).toEqual([16, 8, MAX_KEYS_HELD]);
  });

  it('has the modifier bits for usages E0..E7, in the order of MODIFIER_BITS', () => {
    expect(modifiers.usages).toEqual(Array.from({ length: 8 }, (_, i) => usage(KEYBOARD_PAGE, 0xe0 + i)));
    expect([modifiers.logicalMin, modifiers.logicalMax]).toEqual([0, 1]);
    for (const code of MODIFIER_CODES) {
      const bit = Math.log2(MODIFIER_BITS[code]);
      expect(modifiers.usages[bit]).toBe(usage(KEYBOARD_PAGE, HID_USAGES[code]!));
    }
  });

  it('has a key array whose range covers every usage of keycodes.ts', () => {
    expect(keys.usageMin).not.toBeNull();
    for (const [code, id] of Object.entries(HID_USAGES)) {
      if (isModifier(code)) continue;
      const u = usage(KEYBOARD_PAGE, id);
      expect({ code, inRange: u >= keys.usageMin! && u <= keys.usageMax! }).toEqual({ code, inRange: true });
      const index = u - keys.usageMin!;
      expect({ code, inLogical: index >= keys.logicalMin && index <= keys.logicalMax }).toEqual({ code, inLogical: true });
    }
  });

  it('decodes what KeyboardState writes back to the keys held', () => {
    const k = new KeyboardState();
    const held = ['ShiftLeft', 'AltRight', 'F13', 'IntlRo', 'Lang1', 'NumpadClearEntry', 'KeyZ', 'IntlBackslash'];
    for (const c of held) k.down(c);
    const report = k.report();
    const seen: number[] = [];
    for (let i = 0; i < modifiers.count; i++) if (fieldValue(report, modifiers, i) === 1) seen.push(modifiers.usages[i]!);
    for (let i = 0; i < keys.count; i++) {
      const v = fieldValue(report, keys, i);
      if (v !== 0) seen.push(keys.usageMin! + v - keys.logicalMin);
    }
    expect(seen.sort()).toEqual(held.map((c) => usage(KEYBOARD_PAGE, HID_USAGES[c]!)).sort());
  });

  it('has a 5-bit LED output report padded to one byte, whose bits parseLeds reads', () => {
    expect(layout.bits.output).toBe(8);
    const leds = only(
      layout.fields.filter((f) => f.kind === 'output' && !f.constant),
      'LED field',
    );
    expect([leds.bit, leds.size, leds.count]).toEqual([0, 1, 5]);
    const LED_PAGE = 0x08;
    expect(leds.usages).toEqual([1, 2, 3, 4, 5].map((id) => usage(LED_PAGE, id)));
    const bitOf = (id: number) => 1 << leds.usages.indexOf(usage(LED_PAGE, id));
    expect(parseLeds(bitOf(1))).toEqual({ num_lock: true, caps_lock: false, scroll_lock: false });
    expect(parseLeds(bitOf(2))).toEqual({ num_lock: false, caps_lock: true, scroll_lock: false });
    expect(parseLeds(bitOf(3))).toEqual({ num_lock: false, caps_lock: false, scroll_lock: true });
  });
});

describe('mouse descriptor', () => {
  const layout = parseDescriptor(MOUSE_REPORT_DESCRIPTOR);
  const data = layout.fields.filter((f) => f.kind === 'input' && !f.constant);
  const withUsage = (u: number): { field: Field; index: number } => {
    const field = only(
      data.filter((f) => f.usages.includes(u)),
      `field of usage ${u.toString(16)}`,
    );
    return { field, index: field.usages.indexOf(u) };
  };
  const buttons = withUsage(usage(0x09, 1)).field;
  const x = withUsage(usage(0x01, 0x30));
  const y = withUsage(usage(0x01, 0x31));
  const wheel = withUsage(usage(0x01, 0x38));
  const pan = withUsage(usage(0x0c, 0x238));

  it('describes the 7-byte absolute report with no report ID and no output', () => {
    expect(layout.reportIds).toEqual([]);
    expect(layout.bits).toEqual({ input: MOUSE_REPORT_SIZE * 8, output: 0, feature: 0 });
  });

  it('has five buttons in byte 0', () => {
    expect([buttons.bit, buttons.size, buttons.count, buttons.variable]).toEqual([0, 1, 5, true]);
    expect(buttons.usages).toEqual([1, 2, 3, 4, 5].map((id) => usage(0x09, id)));
  });

  it('has absolute X at bytes 1–2 and Y at bytes 3–4, 0..32767', () => {
    for (const [axis, at] of [
      [x, 8],
      [y, 24],
    ] as const) {
      expect(axis.field.bit + axis.index * axis.field.size).toBe(at);
      expect([axis.field.size, axis.field.relative, axis.field.logicalMin, axis.field.logicalMax]).toEqual([16, false, 0, ABSOLUTE_MAX]);
    }
  });

  it('has the wheel at byte 5 and AC Pan at byte 6, relative signed bytes -127..127', () => {
    for (const [w, at] of [
      [wheel, 40],
      [pan, 48],
    ] as const) {
      expect(w.field.bit + w.index * w.field.size).toBe(at);
      expect([w.field.size, w.field.relative, w.field.logicalMin, w.field.logicalMax]).toEqual([8, true, -127, 127]);
    }
  });

  it('decodes what mouseReport writes back to the pointer meant', () => {
    const cases = [
      { buttons: 1, x: 0.5, y: 0.75, wheel: 0, hwheel: 0 },
      { buttons: 0b10110, x: 1, y: 0, wheel: -127, hwheel: 127 },
      { buttons: 0, x: 0.123, y: 0.999, wheel: 3, hwheel: -5 },
    ];
    for (const m of cases) {
      const r = mouseReport(m);
      const decoded = {
        buttons: Array.from({ length: buttons.count }, (_, i) => fieldValue(r, buttons, i) << i).reduce((a, b) => a | b, 0),
        x: fieldValue(r, x.field, x.index),
        y: fieldValue(r, y.field, y.index),
        wheel: fieldValue(r, wheel.field, wheel.index),
        hwheel: fieldValue(r, pan.field, pan.index),
      };
      expect(decoded).toEqual({ buttons: m.buttons, x: Math.floor(m.x * ABSOLUTE_MAX), y: Math.floor(m.y * ABSOLUTE_MAX), wheel: m.wheel, hwheel: m.hwheel });
    }
  });
});

describe('deploy/hid-gadget.sh', () => {
  function run(configfs: string) {
    const r = Bun.spawnSync(['bash', join(ROOT, 'deploy/hid-gadget.sh')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CONFIGFS: configfs, UDC: 'dummy', SERIAL: 'test-serial' },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    return { code: r.exitCode, stderr: r.stderr.toString() };
  }

  function check(configfs: string) {
    const g = join(configfs, 'usb_gadget/pirelay');
    const read = (p: string) => readFileSync(join(g, p), 'utf8');
    for (const gadget of Object.values(GADGETS)) {
      const f = `functions/${gadget.function}`;
      expect({ fn: gadget.function, desc: [...readFileSync(join(g, f, 'report_desc'))] }).toEqual({ fn: gadget.function, desc: [...gadget.descriptor] });
      expect([read(`${f}/protocol`), read(`${f}/subclass`), read(`${f}/report_length`)]).toEqual([`${gadget.protocol}\n`, `${gadget.subclass}\n`, `${gadget.report_length}\n`]);
      expect(readlinkSync(join(g, 'configs/c.1', gadget.function))).toBe(join(g, f));
    }
    expect(read('UDC')).toBe('dummy\n');
    expect(read('strings/0x409/serialnumber')).toBe('test-serial\n');
  }

  it('writes the descriptors of descriptors.ts, a boot keyboard and a non-boot mouse, and binds the UDC', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-configfs-'));
    try {
      expect(run(dir)).toMatchObject({ code: 0 });
      check(dir);
      expect([GADGETS.keyboard.subclass, GADGETS.keyboard.protocol, GADGETS.keyboard.report_length]).toEqual([1, 1, 8]);
      expect([GADGETS.mouse.subclass, GADGETS.mouse.protocol, GADGETS.mouse.report_length]).toEqual([0, 0, 7]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns off the OUT endpoint and turns on wakeup where the kernel has those attributes, and only there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-configfs-'));
    try {
      // A newer kernel: configfs shows the attribute files as soon as the function exists.
      const kb = join(dir, 'usb_gadget/pirelay/functions', GADGETS.keyboard.function);
      mkdirSync(kb, { recursive: true });
      writeFileSync(join(kb, 'no_out_endpoint'), '0\n');
      writeFileSync(join(kb, 'wakeup_on_write'), '0\n');
      expect(run(dir)).toMatchObject({ code: 0 });
      check(dir);
      expect(readFileSync(join(kb, 'no_out_endpoint'), 'utf8')).toBe('1\n');
      expect(readFileSync(join(kb, 'wakeup_on_write'), 'utf8')).toBe('1\n');
      // An older kernel (the mouse here): no files, none made up.
      const mouse = join(dir, 'usb_gadget/pirelay/functions', GADGETS.mouse.function);
      expect(existsSync(join(mouse, 'no_out_endpoint'))).toBe(false);
      expect(existsSync(join(mouse, 'wakeup_on_write'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('can run again over its own gadget', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-configfs-'));
    try {
      expect(run(dir)).toMatchObject({ code: 0 });
      expect(run(dir)).toMatchObject({ code: 0 });
      check(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // On a machine with a USB device controller (a Pi) the script would find it; here (CI) there is none.
  it.skipIf(hasUdc())('fails, saying why, when there is no USB device controller', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-configfs-'));
    try {
      const r = Bun.spawnSync(['bash', join(ROOT, 'deploy/hid-gadget.sh')], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CONFIGFS: dir, UDC_WAIT: '0' },
        stdout: 'pipe',
        stderr: 'pipe',
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.toString()).toContain('dtoverlay=dwc2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function hasUdc(): boolean {
  try {
    return readdirSync('/sys/class/udc').length > 0;
  } catch {
    return false;
  }
}
