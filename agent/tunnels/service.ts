// The agent's tunnel service: the gate between streams the hub opens and the device's local
// services. It holds the tunnel table the hub pushes and is the only place a target is chosen:
// the OPEN names a tunnel id, the host and port always come from the table, so a visitor can
// never reach a host or port the device owner did not configure. It also keeps every proxied
// stream, so a dropped relay socket (or a deleted tunnel) frees the local connections at once.
import { ResetCode } from '../../shared/codes.ts';
import { REFUSED_METHODS, TOKEN } from '../../shared/protocol/http-rules.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { TunnelOpen, TunnelTarget } from '../../shared/protocol/tunnels.ts';
import type { Logger } from '../log.ts';
import { proxyHttp } from './http.ts';
import { Http1Agent } from './http1.ts';
import { proxyTcp, type Connect } from './tcp.ts';
import { proxyWebSocket } from './websocket.ts';
import type { Session } from './target.ts';

export interface TunnelServiceOptions {
  log: Logger;
  /** How long reaching a target may take (HTTP: until its response head). */
  connectTimeoutMs?: number;
  /** Keep-alive connections to HTTP targets (one is made when not given). */
  http?: Http1Agent;
  /** For tests: stands in for Bun.connect (TCP tunnels). */
  connectImpl?: Connect;
}

type StreamKind = TunnelOpen['kind'];
type PerKind = Record<StreamKind, number>;

export interface TunnelStats {
  /** Tunnels in the table the hub last sent. */
  tunnels: number;
  /** Streams being proxied right now. */
  open: PerKind;
  /** Streams proxied since the service started. */
  opened: PerKind;
  /** Streams refused before reaching a target (unknown tunnel, wrong kind, bad path…). */
  refused: number;
}

export interface TunnelService {
  /** Replaces the table; streams of tunnels that are gone or now point elsewhere are reset. */
  setTunnels(list: TunnelTarget[]): void;
  /** The mux's onOpen: proxies the stream to its tunnel's target, or resets it. */
  handleOpen(stream: MuxStream, open: TunnelOpen): void;
  /** The relay socket is gone: end every stream and free every target connection. */
  closeAll(): void;
  stats(): TunnelStats;
}

interface Tracked {
  kind: StreamKind;
  tunnel: TunnelTarget;
  session: Session;
}

/** The tunnel kind each stream kind needs: a WebSocket is an upgrade of an HTTP tunnel. */
const TUNNEL_KIND: Record<StreamKind, TunnelTarget['kind']> = { http: 'http', websocket: 'http', tcp: 'tcp' };

/**
 * The request target must be origin-form (RFC 9112 §3.2.1): it is appended to the target's
 * authority, so anything else ("http://x/", "//evil.com/", "@evil.com") could try to name
 * another host. Controls and spaces are refused too: the path ends up on a request line.
 */
export function checkPath(path: string): string | null {
  if (!path.startsWith('/')) return 'the path must start with "/"';
  if (path[1] === '/' || path[1] === '\\') return 'the path must not start with "//"';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return 'the path contains spaces or control characters';
  }
  return null;
}

export function createTunnelService(opts: TunnelServiceOptions): TunnelService {
  const { log } = opts;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const http = opts.http ?? new Http1Agent();
  const connectImpl: Connect = opts.connectImpl ?? ((o) => Bun.connect(o));
  let table = new Map<string, TunnelTarget>();
  const live = new Set<Tracked>();
  const opened: PerKind = { http: 0, websocket: 0, tcp: 0 };
  let refused = 0;

  const refuse = (stream: MuxStream, code: string, message: string, extra: Record<string, unknown>) => {
    refused++;
    log.debug('tunnel stream refused', { code, reason: message, ...extra });
    stream.reset(code, message);
  };

  return {
    setTunnels(list) {
      table = new Map(list.map((t) => [t.id, t]));
      for (const t of live) {
        const now = table.get(t.tunnel.id);
        if (!now) t.session.abort(ResetCode.TUNNEL_REMOVED, `tunnel ${t.tunnel.name} was removed`);
        else if (now.kind !== t.tunnel.kind || now.target_host !== t.tunnel.target_host || now.target_port !== t.tunnel.target_port) {
          t.session.abort(ResetCode.TUNNEL_CHANGED, `tunnel ${t.tunnel.name} now points elsewhere`);
        }
      }
    },

    handleOpen(stream, open) {
      const tunnel = table.get(open.tunnel);
      if (!tunnel) return refuse(stream, ResetCode.UNKNOWN_TUNNEL, `this device serves no tunnel ${open.tunnel}`, { tunnel: open.tunnel });
      if (TUNNEL_KIND[open.kind] !== tunnel.kind) {
        return refuse(stream, ResetCode.KIND_MISMATCH, `tunnel ${tunnel.name} is a ${tunnel.kind} tunnel, not ${open.kind}`, { tunnel: tunnel.id });
      }
      if (open.kind !== 'tcp') {
        const bad = checkPath(open.path);
        if (bad) return refuse(stream, ResetCode.BAD_REQUEST, bad, { tunnel: tunnel.id });
      }
      if (open.kind === 'http') {
        const method = open.method.toUpperCase();
        if (!TOKEN.test(method) || REFUSED_METHODS.has(method)) {
          return refuse(stream, ResetCode.BAD_REQUEST, `method ${open.method.slice(0, 16)} is not allowed through a tunnel`, { tunnel: tunnel.id });
        }
      }

      // From here on the target is the table's, whatever else the OPEN may say.
      const target = { host: tunnel.target_host, port: tunnel.target_port };
      const deps = { log, connectTimeoutMs };
      let session: Session;
      try {
        session =
          open.kind === 'http'
            ? proxyHttp(stream, open, target, { ...deps, http })
            : open.kind === 'websocket'
              ? proxyWebSocket(stream, open, target, deps)
              : proxyTcp(stream, target, { ...deps, connect: connectImpl });
      } catch (e) {
        refused++;
        log.warn('tunnel stream could not start', { tunnel: tunnel.id, error: String(e) });
        stream.reset(ResetCode.TARGET_ERROR, e instanceof Error ? e.message : String(e));
        return;
      }
      const tracked: Tracked = { kind: open.kind, tunnel, session };
      opened[open.kind]++;
      live.add(tracked);
      void session.done.finally(() => live.delete(tracked));
    },

    closeAll() {
      for (const t of live) t.session.abort(ResetCode.SOCKET_CLOSED, 'the relay connection closed');
      http.closeIdle();
    },

    stats() {
      const open: PerKind = { http: 0, websocket: 0, tcp: 0 };
      for (const t of live) open[t.kind]++;
      return { tunnels: table.size, open, opened: { ...opened }, refused };
    },
  };
}
