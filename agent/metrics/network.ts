// The sample's network part: byte counters from /proc/net/dev (one pread per sample) with rates
// since the previous sample, each interface's first IPv4 and IPv6 address from node:os (an ioctl
// walk of every interface, so refreshed every ADDRESSES_EVERY_MS, and only for the machine the
// agent runs on: a snapshot root's interfaces are not this machine's), and the connection count:
// TCP sockets in use from /proc/net/sockstat and sockstat6, a few lines the kernel keeps counted,
// instead of /proc/net/tcp, which lists every socket; read every SOCKSTAT_EVERY_MS.
import { networkInterfaces } from 'node:os';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';
import { rate } from './disks.ts';
import { ProcFile } from './proc-file.ts';

export const ADDRESSES_EVERY_MS = 30_000;
export const SOCKSTAT_EVERY_MS = 5_000;

type Network = MetricsSample['network'];
export interface InterfaceCounters {
  name: string;
  rxBytes: number;
  txBytes: number;
}

/** /proc/net/dev: two header lines, then `name: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes …`. */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    const rx = Number(f[0]);
    const tx = Number(f[8]);
    if (!name || f.length < 9 || !Number.isSafeInteger(rx) || !Number.isSafeInteger(tx) || rx < 0 || tx < 0) continue;
    out.push({ name: name.slice(0, 256), rxBytes: rx, txBytes: tx });
  }
  return out;
}

/** `TCP: inuse 5 orphan 0 …` (sockstat) and `TCP6: inuse 2` (sockstat6). */
export function parseTcpInuse(text: string | null): number {
  const m = /^TCP6?: inuse (\d+)/m.exec(text ?? '');
  return m ? Number(m[1]) : 0;
}

type Addresses = Map<string, { ipv4?: string; ipv6?: string }>;

function readAddresses(): Addresses {
  const out: Addresses = new Map();
  for (const [name, list] of Object.entries(networkInterfaces())) {
    const ipv4 = list?.find((a) => a.family === 'IPv4')?.address;
    const ipv6 = list?.find((a) => a.family === 'IPv6')?.address;
    out.set(name, { ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6: ipv6.slice(0, 64) } : {}) });
  }
  return out;
}

export class NetworkReader {
  private readonly dev: ProcFile;
  private readonly sockstat: ProcFile;
  private readonly sockstat6: ProcFile;
  private prev = new Map<string, InterfaceCounters>();
  private prevAt: number | null = null;
  private addresses: Addresses = new Map();
  private addressesAt = Number.NEGATIVE_INFINITY;
  private connections = 0;
  private connectionsAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly root: string,
    private readonly now: () => number,
  ) {
    this.dev = new ProcFile(root, '/proc/net/dev');
    this.sockstat = new ProcFile(root, '/proc/net/sockstat');
    this.sockstat6 = new ProcFile(root, '/proc/net/sockstat6');
  }

  read(): Network {
    const at = this.now();
    const seconds = this.prevAt === null ? 0 : (at - this.prevAt) / 1000;
    if (this.root === '/' && at - this.addressesAt >= ADDRESSES_EVERY_MS) {
      this.addressesAt = at;
      this.addresses = readAddresses();
    }
    const interfaces: Network['interfaces'] = [];
    const next = new Map<string, InterfaceCounters>();
    for (const c of parseNetDev(this.dev.read() ?? '').slice(0, SAMPLE_LIMITS.interfaces)) {
      const before = this.prev.get(c.name);
      interfaces.push({
        ...c,
        ...this.addresses.get(c.name),
        rxRate: rate(before?.rxBytes, c.rxBytes, seconds) ?? 0,
        txRate: rate(before?.txBytes, c.txBytes, seconds) ?? 0,
      });
      next.set(c.name, c);
    }
    this.prev = next;
    this.prevAt = at;
    if (at - this.connectionsAt >= SOCKSTAT_EVERY_MS) {
      this.connectionsAt = at;
      this.connections = parseTcpInuse(this.sockstat.read()) + parseTcpInuse(this.sockstat6.read());
    }
    return { interfaces, connectionCount: this.connections };
  }

  close(): void {
    this.dev.close();
    this.sockstat.close();
    this.sockstat6.close();
  }
}
