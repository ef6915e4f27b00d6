// The HID report descriptors of our two USB gadgets, byte for byte: what the host reads to learn
// the shape of the reports in reports.ts. deploy/hid-gadget.sh writes these same bytes into
// configfs (a test holds the two equal, and another walks these descriptors to check they describe
// exactly what keyboardReport and mouseReport write).
//
// No report IDs: each gadget is its own interface with one report, so reports carry no ID byte
// and the keyboard's input report is the boot report itself. That is what lets a BIOS or UEFI
// setup screen, which selects the boot protocol and never parses a descriptor, read our keyboard:
// the Linux HID function ignores SET_PROTOCOL and always sends what we write, so what we write is
// the boot layout in both protocols.
import { KEYBOARD_REPORT_SIZE, MOUSE_REPORT_SIZE } from './reports.ts';

/** The keyboard: the boot report [modifiers, reserved, k1..k6] in, the LED byte out. */
// prettier-ignore
export const KEYBOARD_REPORT_DESCRIPTOR = new Uint8Array([
  0x05, 0x01, //       Usage Page (Generic Desktop)
  0x09, 0x06, //       Usage (Keyboard)
  0xa1, 0x01, //       Collection (Application)
  0x05, 0x07, //         Usage Page (Keyboard/Keypad)
  0x19, 0xe0, //         Usage Minimum (0xE0 LeftControl)
  0x29, 0xe7, //         Usage Maximum (0xE7 RightGUI)
  0x15, 0x00, //         Logical Minimum (0)
  0x25, 0x01, //         Logical Maximum (1)
  0x75, 0x01, //         Report Size (1)
  0x95, 0x08, //         Report Count (8)
  0x81, 0x02, //         Input (Data, Variable, Absolute): byte 0, one bit per modifier
  0x95, 0x01, //         Report Count (1)
  0x75, 0x08, //         Report Size (8)
  0x81, 0x01, //         Input (Constant): byte 1, reserved
  0x95, 0x05, //         Report Count (5)
  0x75, 0x01, //         Report Size (1)
  0x05, 0x08, //         Usage Page (LEDs)
  0x19, 0x01, //         Usage Minimum (1 Num Lock)
  0x29, 0x05, //         Usage Maximum (5 Kana)
  0x91, 0x02, //         Output (Data, Variable, Absolute): Num, Caps, Scroll, Compose, Kana
  0x95, 0x01, //         Report Count (1)
  0x75, 0x03, //         Report Size (3)
  0x91, 0x01, //         Output (Constant): padding to a byte
  0x95, 0x06, //         Report Count (6)
  0x75, 0x08, //         Report Size (8)
  0x15, 0x00, //         Logical Minimum (0)
  // Logical Maximum 0xE7 takes two bytes: logical values are signed, so a one-byte 0xE7 would
  // read as -25 and a host would drop every key above 0x7F (F13+, Lang1–5, the Intl keys).
  0x26, 0xe7, 0x00, //   Logical Maximum (231)
  0x05, 0x07, //         Usage Page (Keyboard/Keypad)
  0x19, 0x00, //         Usage Minimum (0)
  0x29, 0xe7, //         Usage Maximum (0xE7): every usage of keycodes.ts, not the boot 0x65
  0x81, 0x00, //         Input (Data, Array, Absolute): bytes 2–7, the keys held
  0xc0, //               End Collection
]);

/** The absolute mouse: [buttons, X lo, X hi, Y lo, Y hi, wheel, horizontal wheel] in, nothing out. */
// prettier-ignore
export const MOUSE_REPORT_DESCRIPTOR = new Uint8Array([
  0x05, 0x01, //       Usage Page (Generic Desktop)
  0x09, 0x02, //       Usage (Mouse)
  0xa1, 0x01, //       Collection (Application)
  0x09, 0x01, //         Usage (Pointer)
  0xa1, 0x00, //         Collection (Physical)
  0x05, 0x09, //           Usage Page (Button)
  0x19, 0x01, //           Usage Minimum (1)
  0x29, 0x05, //           Usage Maximum (5): left, right, middle, back, forward
  0x15, 0x00, //           Logical Minimum (0)
  0x25, 0x01, //           Logical Maximum (1)
  0x95, 0x05, //           Report Count (5)
  0x75, 0x01, //           Report Size (1)
  0x81, 0x02, //           Input (Data, Variable, Absolute): byte 0 bits 0–4
  0x95, 0x01, //           Report Count (1)
  0x75, 0x03, //           Report Size (3)
  0x81, 0x01, //           Input (Constant): bits 5–7
  0x05, 0x01, //           Usage Page (Generic Desktop)
  0x09, 0x30, //           Usage (X)
  0x09, 0x31, //           Usage (Y)
  0x16, 0x00, 0x00, //     Logical Minimum (0)
  0x26, 0xff, 0x7f, //     Logical Maximum (32767)
  0x75, 0x10, //           Report Size (16)
  0x95, 0x02, //           Report Count (2)
  0x81, 0x02, //           Input (Data, Variable, Absolute): bytes 1–2 X, 3–4 Y, little-endian
  0x09, 0x38, //           Usage (Wheel)
  0x15, 0x81, //           Logical Minimum (-127)
  0x25, 0x7f, //           Logical Maximum (127)
  0x75, 0x08, //           Report Size (8)
  0x95, 0x01, //           Report Count (1)
  0x81, 0x06, //           Input (Data, Variable, Relative): byte 5
  0x05, 0x0c, //           Usage Page (Consumer)
  0x0a, 0x38, 0x02, //     Usage (AC Pan)
  0x81, 0x06, //           Input (Data, Variable, Relative): byte 6, same size and range
  0xc0, //               End Collection
  0xc0, //             End Collection
]);

/**
 * What configfs needs besides the descriptor, per gadget. The keyboard is a boot keyboard
 * (subclass 1, protocol 1) so firmware finds it before the OS runs. The mouse is absolute, which
 * the boot protocol cannot express (a boot mouse is the fixed 3-byte relative report), so it is no
 * boot device: subclass 0, and then protocol must be 0 (none), as the HID spec gives protocol a
 * meaning only for boot devices.
 */
export const GADGETS = {
  keyboard: { function: 'hid.keyboard', device: 'hidg0', subclass: 1, protocol: 1, report_length: KEYBOARD_REPORT_SIZE, descriptor: KEYBOARD_REPORT_DESCRIPTOR },
  mouse: { function: 'hid.mouse', device: 'hidg1', subclass: 0, protocol: 0, report_length: MOUSE_REPORT_SIZE, descriptor: MOUSE_REPORT_DESCRIPTOR },
} as const;
