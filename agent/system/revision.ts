// Decodes a Raspberry Pi board revision code (/proc/cpuinfo `Revision`) into the model name
// PiTunnel reports as `hardware` ("Pi4 Model B"). Follows the layout documented by Raspberry Pi
// ("Raspberry Pi revision codes"): new-style codes are the bit field NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR
// with F (bit 23) set; older boards have a plain lookup code, with "1000" prefixed when the
// warranty bit was set by over-volting.

export interface BoardRevision {
  model: string;
  /** PCB revision, e.g. "1.4". */
  revision: string;
  memoryMb: number;
  manufacturer: string;
  processor: string;
}

/** Board type, bits 4-11 of a new-style code. */
const NEW_STYLE_MODELS: Record<number, string> = {
  0x00: 'Pi Model A',
  0x01: 'Pi Model B',
  0x02: 'Pi Model A+',
  0x03: 'Pi Model B+',
  0x04: 'Pi2 Model B',
  0x05: 'Pi Alpha',
  0x06: 'Pi Compute Module 1',
  0x08: 'Pi3 Model B',
  0x09: 'Pi Zero',
  0x0a: 'Pi Compute Module 3',
  0x0c: 'Pi Zero W',
  0x0d: 'Pi3 Model B+',
  0x0e: 'Pi3 Model A+',
  0x10: 'Pi Compute Module 3+',
  0x11: 'Pi4 Model B',
  0x12: 'Pi Zero 2 W',
  0x13: 'Pi 400',
  0x14: 'Pi Compute Module 4',
  0x15: 'Pi Compute Module 4S',
  0x17: 'Pi5 Model B',
  0x18: 'Pi Compute Module 5',
  0x19: 'Pi 500',
  0x1a: 'Pi Compute Module 5 Lite',
};

/** Bits 12-15. */
const PROCESSORS = ['BCM2835', 'BCM2836', 'BCM2837', 'BCM2711', 'BCM2712'];
/** Bits 16-19. */
const MANUFACTURERS = ['Sony UK', 'Egoman', 'Embest', 'Sony Japan', 'Embest', 'Stadium'];

/** Old-style codes: model, PCB revision, MB, manufacturer. All are BCM2835 boards. */
const OLD_STYLE: Record<number, [string, string, number, string]> = {
  0x02: ['Pi Model B', '1.0', 256, 'Egoman'],
  0x03: ['Pi Model B', '1.0', 256, 'Egoman'],
  0x04: ['Pi Model B', '2.0', 256, 'Sony UK'],
  0x05: ['Pi Model B', '2.0', 256, 'Qisda'],
  0x06: ['Pi Model B', '2.0', 256, 'Egoman'],
  0x07: ['Pi Model A', '2.0', 256, 'Egoman'],
  0x08: ['Pi Model A', '2.0', 256, 'Sony UK'],
  0x09: ['Pi Model A', '2.0', 256, 'Qisda'],
  0x0d: ['Pi Model B', '2.0', 512, 'Egoman'],
  0x0e: ['Pi Model B', '2.0', 512, 'Sony UK'],
  0x0f: ['Pi Model B', '2.0', 512, 'Egoman'],
  0x10: ['Pi Model B+', '1.2', 512, 'Sony UK'],
  0x11: ['Pi Compute Module 1', '1.0', 512, 'Sony UK'],
  0x12: ['Pi Model A+', '1.1', 256, 'Sony UK'],
  0x13: ['Pi Model B+', '1.2', 512, 'Embest'],
  0x14: ['Pi Compute Module 1', '1.0', 512, 'Embest'],
  0x15: ['Pi Model A+', '1.1', 256, 'Embest'],
};

/** Null for anything that is not a Raspberry Pi revision code. */
export function decodeRevision(code: string): BoardRevision | null {
  const hex = code.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,8}$/.test(hex)) return null;
  const n = Number.parseInt(hex, 16);
  if ((n >>> 23) & 1) {
    const type = (n >>> 4) & 0xff;
    const processor = (n >>> 12) & 0xf;
    const manufacturer = (n >>> 16) & 0xf;
    return {
      model: NEW_STYLE_MODELS[type] ?? `Pi (type 0x${type.toString(16)})`,
      revision: `1.${n & 0xf}`,
      memoryMb: 256 << ((n >>> 20) & 0x7),
      manufacturer: MANUFACTURERS[manufacturer] ?? `unknown (${manufacturer})`,
      processor: PROCESSORS[processor] ?? `unknown (${processor})`,
    };
  }
  const old = OLD_STYLE[n & 0xffffff];
  if (old === undefined) return null;
  const [model, revision, memoryMb, manufacturer] = old;
  return { model, revision, memoryMb, manufacturer, processor: 'BCM2835' };
}
