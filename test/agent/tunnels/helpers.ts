// The tunnel service on the agent end of a real StreamMux pair, with the test playing the hub:
// it opens streams on the hub mux exactly as the DeviceHub does and reads what comes back.
import { createTunnelService, type TunnelService, type TunnelServiceOptions } from '../../../agent/tunnels/service.ts';
import type { Logger } from '../../../agent/log.ts';
import type { TunnelTarget } from '../../../shared/protocol/tunnels.ts';
import { StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { loopback, type Loopback } from '../streams/helpers.ts';

export { bytes, concat, readAll, sha256, sleep, writeAll } from '../streams/helpers.ts';

export interface Rig {
  service: TunnelService;
  link: Loopback;
  logs: string[];
  /** Opens a stream from the hub side, as the DeviceHub does for a visitor. */
  open(open: StreamOpen, options?: { fin?: boolean }): MuxStream;
}

export function quietLogger(lines: string[] = []): Logger {
  const put = (level: string) => (msg: string, extra?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${extra ? JSON.stringify(extra) : ''}`);
  return { debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

export function rig(tunnels: TunnelTarget[], opts: Partial<TunnelServiceOptions> = {}): Rig {
  const logs: string[] = [];
  const service = createTunnelService({ log: quietLogger(logs), ...opts });
  service.setTunnels(tunnels);
  const link = loopback({ agent: { onOpen: (stream, open) => ('tunnel' in open ? service.handleOpen(stream, open) : stream.reset('REFUSED', 'not a tunnel stream')) } });
  return { service, link, logs, open: (o, options) => link.hub.open(o, options) };
}

export function tunnel(id: string, kind: 'http' | 'tcp', port: number, host = '127.0.0.1'): TunnelTarget {
  return { id, name: `${id}-name`, kind, target_host: host, target_port: port };
}

/** What a rejected `accepted` carries, as {code, message}; fails the test if it was accepted. */
export async function resetOf(stream: MuxStream): Promise<{ code: string; message: string }> {
  try {
    const head = await stream.accepted;
    throw new Error(`expected a reset, got ACCEPT ${JSON.stringify(head)}`);
  } catch (e) {
    if (!(e instanceof StreamResetError)) throw e;
    return { code: e.code, message: e.message };
  }
}

/** Polls until fn returns something truthy. */
export async function waitFor<T>(fn: () => T | undefined | null | false, ms = 5_000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A port nothing listens on: bind one, note it, release it. */
export async function unusedPort(): Promise<number> {
  const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

export function httpOpen(tunnelId: string, method: string, path: string, headers: [string, string][] = []): StreamOpen {
  return { kind: 'http', tunnel: tunnelId, method, path, headers };
}

export const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Headers as a plain object (the DOM lib typing here has no Headers iterator). */
export function headerObject(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[name] = value));
  return out;
}
export const utf8 = (s: string) => new TextEncoder().encode(s);
