// Kernel and distribution facts plus the cheap per-call counters (uptime, load) that device_info
// reports. All come from /proc and /etc under a root so fixtures can stand in for a real device.
import { readLine, readText, toNumber } from './proc.ts';

export type OsRelease = Record<string, string>;

/**
 * Parses os-release(5): KEY=value lines, values optionally quoted with shell-style escapes.
 */
export function parseOsRelease(text: string): OsRelease {
  const release: OsRelease = {};
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    let value = match[2].trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    release[match[1]] = value;
  }
  return release;
}

/** /etc/os-release, else /usr/lib/os-release (the spec's fallback); {} if neither exists. */
export async function readOsRelease(root: string): Promise<OsRelease> {
  const text =
    (await readText(root, '/etc/os-release')) ?? (await readText(root, '/usr/lib/os-release'));
  return parseOsRelease(text ?? '');
}

/**
 * The distribution as people name it: PRETTY_NAME ("Debian GNU/Linux 12 (bookworm)"), else
 * NAME and VERSION, else "Linux".
 */
export function osVersion(release: OsRelease): string {
  if (release.PRETTY_NAME) return release.PRETTY_NAME;
  const named = [release.NAME, release.VERSION ?? release.VERSION_ID].filter(Boolean).join(' ');
  return named || 'Linux';
}

export async function readHostname(root: string): Promise<string> {
  return (await readLine(root, '/proc/sys/kernel/hostname')) ?? '';
}

export async function readKernel(root: string): Promise<string> {
  return (await readLine(root, '/proc/sys/kernel/osrelease')) ?? '';
}

/** Seconds since boot, the first field of /proc/uptime; 0 if unreadable. */
export async function readUptime(root: string): Promise<number> {
  const text = await readText(root, '/proc/uptime');
  return toNumber(text?.trim().split(/\s+/)[0]);
}

/** When the machine booted, in seconds since the epoch (`btime` of /proc/stat); null if unreadable. */
export async function readBootTime(root: string): Promise<number | null> {
  const text = await readText(root, '/proc/stat');
  const btime = Number(/^btime\s+(\d+)\s*$/m.exec(text ?? '')?.[1] ?? Number.NaN);
  return Number.isSafeInteger(btime) ? btime : null;
}

export async function readLoadavg(root: string): Promise<[number, number, number]> {
  const fields = (await readText(root, '/proc/loadavg'))?.trim().split(/\s+/) ?? [];
  return [toNumber(fields[0]), toNumber(fields[1]), toNumber(fields[2])];
}

/** uname -m style names for Node's process.arch values; unknown ones pass through unchanged. */
const UNAME_ARCH: Record<string, string> = {
  x64: 'x86_64',
  ia32: 'i686',
  arm64: 'aarch64',
  arm: 'armv7l',
  ppc64: 'ppc64le',
  riscv64: 'riscv64',
  s390x: 's390x',
  loong64: 'loongarch64',
};

export function unameArch(arch: string): string {
  return UNAME_ARCH[arch] ?? arch;
}
