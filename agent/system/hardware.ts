// What board this is and its serial number: identity facts registered at enrollment. Raspberry Pis
// say so in the device tree and /proc/cpuinfo; other Linux machines (the x86 boxes the agent also
// runs on, and CI) fall back to DMI and the CPU model, then machine-id, so there is always a value.
import { decodeRevision } from './revision.ts';
import { parseColonFields, readLine, readText } from './proc.ts';

/** Strings vendors leave in DMI fields they never filled in. */
const DMI_PLACEHOLDERS = new Set([
  'to be filled by o.e.m.',
  'system product name',
  'system serial number',
  'default string',
  'not specified',
  'none',
  '0',
]);

async function readCpuinfo(root: string): Promise<Map<string, string>> {
  return parseColonFields((await readText(root, '/proc/cpuinfo')) ?? '');
}

async function readDmi(root: string, field: string): Promise<string | null> {
  const value = await readLine(root, `/sys/class/dmi/id/${field}`);
  return value === null || DMI_PLACEHOLDERS.has(value.toLowerCase()) ? null : value;
}

/**
 * The board as PiTunnel names it, "decoded from the device's revision number" ("Pi4 Model B"), else
 * the device-tree model ("Raspberry Pi 4 Model B Rev 1.4") for boards the decoder does not know,
 * else DMI product_name, else the CPU's model name, else "Unknown".
 */
export async function readHardwareModel(root: string): Promise<string> {
  const cpuinfo = await readCpuinfo(root);
  const revision = cpuinfo.get('Revision');
  const board = revision === undefined ? null : decodeRevision(revision);
  if (board !== null) return board.model;
  const model = await readLine(root, '/proc/device-tree/model');
  if (model !== null) return model;
  return (await readDmi(root, 'product_name')) ?? (cpuinfo.get('model name') || 'Unknown');
}

/**
 * The board serial in uppercase, as PiTunnel shows it ("10000000389253E6"): cpuinfo Serial, else
 * the device tree's, else DMI product_serial (readable by root only), else the first 16 hex digits
 * of /etc/machine-id, which is stable per installation though not per board. "" if none.
 */
export async function readSerial(root: string): Promise<string> {
  const serial = (await readCpuinfo(root)).get('Serial');
  if (serial && !/^0+$/.test(serial)) return serial.toUpperCase();
  const dtSerial = await readLine(root, '/proc/device-tree/serial-number');
  if (dtSerial !== null && !/^0+$/.test(dtSerial)) return dtSerial.toUpperCase();
  const dmiSerial = await readDmi(root, 'product_serial');
  if (dmiSerial !== null) return dmiSerial.slice(0, 64).toUpperCase();
  const machineId = await readLine(root, '/etc/machine-id');
  return machineId === null ? '' : machineId.slice(0, 16).toUpperCase();
}
