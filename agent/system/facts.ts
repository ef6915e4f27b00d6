// Assembles DeviceFacts, the identity of a device registered at enrollment and refreshed on hello,
// from the individual readers. Values are clipped to the schema's limits so a strange hostname or
// DMI string can never make the whole report fail validation.
import type { DeviceFacts } from '../../shared/api/device-info.ts';
import { readHardwareModel, readSerial } from './hardware.ts';
import { readPrimaryMac } from './network.ts';
import { osVersion, readHostname, readKernel, readOsRelease, unameArch } from './os.ts';

export async function readFacts(root: string, arch: string): Promise<DeviceFacts> {
  const [hostname, serial, hardware, release, mac, kernel] = await Promise.all([
    readHostname(root),
    readSerial(root),
    readHardwareModel(root),
    readOsRelease(root),
    readPrimaryMac(root),
    readKernel(root),
  ]);
  return {
    hostname: hostname.slice(0, 255),
    serial: serial.slice(0, 64),
    hardware: hardware.slice(0, 128),
    os: 'Linux',
    os_version: osVersion(release).slice(0, 128),
    architecture: unameArch(arch).slice(0, 32),
    mac_address: mac.slice(0, 32),
    kernel: kernel.slice(0, 128),
  };
}
