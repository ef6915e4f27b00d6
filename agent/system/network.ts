// The device's MAC address, a stable identity fact reported at enrollment. "Primary" is the
// interface carrying the default route, since that is the one a user sees on their router; the
// format is PiTunnel's: uppercase hex without separators, e.g. B827EB2A7FC1.
import { listDir, readLine, readText } from './proc.ts';

const RTF_UP = 0x1;

/**
 * The interface of the IPv4 default route with the lowest metric, from /proc/net/route (hex
 * columns: Iface Destination Gateway Flags RefCnt Use Metric Mask …).
 */
export function parseDefaultRouteInterface(routeText: string): string | null {
  let best: { iface: string; metric: number } | null = null;
  for (const line of routeText.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const [iface, destination, , flags, , , metric, mask] = cols;
    if (!iface || destination !== '00000000' || mask !== '00000000') continue;
    if ((Number.parseInt(flags ?? '0', 16) & RTF_UP) === 0) continue;
    const m = Number(metric);
    if (!Number.isFinite(m)) continue;
    if (best === null || m < best.metric) best = { iface, metric: m };
  }
  return best?.iface ?? null;
}

/** "dc:a6:32:1a:2b:3c" → "DCA6321A2B3C"; null for anything that is not a real 48-bit MAC. */
export function formatMac(address: string): string | null {
  const hex = address.trim().replace(/[:-]/g, '').toUpperCase();
  if (!/^[0-9A-F]{12}$/.test(hex) || /^0+$/.test(hex)) return null;
  return hex;
}

async function interfaceMac(root: string, iface: string): Promise<string | null> {
  const address = await readLine(root, `/sys/class/net/${iface}/address`);
  return address === null ? null : formatMac(address);
}

/** The default route's MAC, else the first non-loopback interface's, else "". */
export async function readPrimaryMac(root: string): Promise<string> {
  const route = await readText(root, '/proc/net/route');
  const primary = route === null ? null : parseDefaultRouteInterface(route);
  if (primary !== null) {
    const mac = await interfaceMac(root, primary);
    if (mac !== null) return mac;
  }
  const names = (await listDir(root, '/sys/class/net')).filter((n) => n !== 'lo').sort();
  for (const name of names) {
    const mac = await interfaceMac(root, name);
    if (mac !== null) return mac;
  }
  return '';
}
