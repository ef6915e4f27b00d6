#!/usr/bin/env node
// The `pirelay` client command: `pirelay tcp <device>:<port>` (or `pirelay tcp <tunnel-name>`)
// opens a local port and carries each connection to it over its own WebSocket to the relay, which
// joins it to a TCP stream on the device. It runs on Node ≥ 20 and on Bun alike, so it uses only
// node:net and a WebSocket that can send headers (Bun's, Node's global, or undici's on Node 20).
//
// The wire on that WebSocket is shared/protocol/tcp-client.ts: raw TCP bytes both ways, {"t":"eof"}
// for a half-close, {"t":"error"} when the relay says the connection failed. With ?flow=ack (which
// we always ask for) we also acknowledge what the local app's socket took, and the relay keeps at
// most TCP_CLIENT_WINDOW unacknowledged.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { readErrorBody, type ErrorBody } from '../shared/codes.ts';
import { TCP_CLIENT_WINDOW, TCP_EOF_MESSAGE, TCP_FLOW_ACK, tcpAckMessage, TcpRelayMessageSchema, type TcpRelayMessage } from '../shared/protocol/tcp-client.ts';

export type TcpTarget = { device: string; port: number } | { tunnel: string };
export interface ListenAddress {
  host: string;
  port: number;
}

export interface ForwardOptions {
  /** The relay's base URL, e.g. https://relay.example.com. */
  relay: string;
  apiKey?: string;
  /** `device:port`, a tunnel name, or the parsed form. */
  target: TcpTarget | string;
  /** `host:port`, `port`, or the parsed form; port 0 picks a free one. */
  listen: ListenAddress | string;
  /** Where errors and notes go (default: stderr). */
  log?: (line: string) => void;
}

export interface Forward {
  host: string;
  port: number;
  /** Local connections being carried right now. */
  readonly connections: number;
  /** Stops listening and ends every carried connection. */
  close(): Promise<void>;
}

/** Minimal shape of the WebSocket classes we may get (Bun, Node ≥ 22, undici, Deno). */
interface ClientWebSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (ev: { data?: unknown; code?: number; reason?: string; message?: string }) => void): void;
}
type WebSocketClass = new (url: string, options?: { headers: Record<string, string> }) => ClientWebSocket;

const OPEN = 1;
/** Stop reading the local socket while this much is queued on the WebSocket, resume below LOW. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
/** Acknowledge delivered bytes to the relay in steps of this much (well under its window). */
const ACK_EVERY = TCP_CLIENT_WINDOW / 16;
/** After both sides half-closed, the relay closes the WebSocket; this long and we do it. */
const CLOSE_WAIT_MS = 5_000;

export class UsageError extends Error {}

/** `device:port` names a port on a device; anything else is a tunnel name. */
export function parseTarget(spec: string): TcpTarget {
  const m = /^(.+):(\d{1,5})$/.exec(spec);
  if (m) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new UsageError(`bad port in ${spec}`);
    return { device: m[1]!, port };
  }
  if (!spec || spec.includes('/')) throw new UsageError(`bad target ${JSON.stringify(spec)}: use <device>:<port> or <tunnel-name>`);
  return { tunnel: spec };
}

/** `2222`, `127.0.0.1:2222` or `[::1]:2222`. Without a host, only this machine may connect. */
export function parseListen(spec: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(spec) ?? /^()()(\d{1,5})$/.exec(spec);
  if (!m) throw new UsageError(`bad --listen ${JSON.stringify(spec)}: use [host:]port`);
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`bad port in --listen ${spec}`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export function describeTarget(target: TcpTarget): string {
  return 'tunnel' in target ? target.tunnel : `${target.device}:${target.port}`;
}

/** The relay endpoint that carries one TCP connection, as a ws:// or wss:// URL. */
export function connectUrl(relay: string, target: TcpTarget): string {
  const base = relay.replace(/\/+$/, '');
  const path =
    'tunnel' in target
      ? `/api/v1/tunnels/${encodeURIComponent(target.tunnel)}/connect`
      : `/api/v1/devices/${encodeURIComponent(target.device)}/tcp/${target.port}/connect`;
  const url = new URL(base + path);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`relay URL must be http(s) or ws(s): ${relay}`);
  return url.toString();
}

/**
 * A WebSocket class, and whether it can send an Authorization header. Bun's and Node's (undici)
 * take `{ headers }`; elsewhere (Deno) the key has to ride in the URL instead.
 */
async function webSocketClass(): Promise<{ WebSocket: WebSocketClass; headers: boolean }> {
  const isDeno = 'Deno' in globalThis;
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global === 'function') return { WebSocket: global as WebSocketClass, headers: !isDeno };
  const undici = (await import('undici')) as unknown as { WebSocket: WebSocketClass };
  return { WebSocket: undici.WebSocket, headers: true };
}

type RelayError = Partial<ErrorBody> | null;

const describeAnswer = (status: number, statusText: string, body: RelayError) =>
  `${status} ${[body?.code, body?.error].filter(Boolean).join(': ') || statusText}`.trim();

const parseError = (text: string): RelayError => {
  try {
    return readErrorBody(JSON.parse(text));
  } catch {
    return null;
  }
};

/**
 * The relay's answer to the upgrade itself, read with node:http (Bun's and undici's WebSocket keep
 * a refused handshake's response to themselves). Null if this time it was accepted (we close it
 * at once) or nothing came back.
 */
function upgradeAnswer(url: string, headers: Record<string, string>): Promise<{ status: number; statusText: string; body: RelayError } | null> {
  const target = new URL(url.replace(/^ws/, 'http'));
  const request = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve) => {
    const req = request(target, {
      headers: { ...headers, accept: 'application/json', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
      timeout: 5_000,
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(null);
    });
    req.on('response', (res) => {
      if (res.statusCode === 101) {
        res.destroy();
        return resolve(null);
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (text.length < 64 * 1024) text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body: parseError(text) }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

/**
 * After a failed handshake the WebSocket API says nothing useful, so we ask the relay. A plain GET
 * first (it has no side effects): it answers why a caller or tunnel is refused. 426 means those
 * are fine and the failure came with the upgrade itself (the device refused the target, say), so
 * the upgrade is sent again and its answer read: that may open one more connection to the
 * target, which is closed at once.
 */
async function explainRefusal(url: string, headers: Record<string, string>): Promise<string> {
  try {
    const res = await fetch(url.replace(/^ws/, 'http'), { headers: { ...headers, accept: 'application/json' }, signal: AbortSignal.timeout(5_000) });
    const body = readErrorBody(await res.json().catch(() => null));
    if (res.status !== 426) return describeAnswer(res.status, res.statusText, body);
    const upgrade = await upgradeAnswer(url, headers);
    if (upgrade) return describeAnswer(upgrade.status, upgrade.statusText, upgrade.body);
    return 'the relay accepted the request but the WebSocket upgrade failed';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export async function startTcpForward(opts: ForwardOptions): Promise<Forward> {
  const target = typeof opts.target === 'string' ? parseTarget(opts.target) : opts.target;
  const listen = typeof opts.listen === 'string' ? parseListen(opts.listen) : opts.listen;
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { WebSocket, headers: canSendHeaders } = await webSocketClass();
  // flow=ack: we acknowledge what reached the local app, so the relay paces the target to it.
  let url = `${connectUrl(opts.relay, target)}?flow=${TCP_FLOW_ACK}`;
  const headers: Record<string, string> = {};
  if (opts.apiKey && canSendHeaders) headers.authorization = `Bearer ${opts.apiKey}`;
  else if (opts.apiKey) url += `${url.includes('?') ? '&' : '?'}api_key=${encodeURIComponent(opts.apiKey)}`;

  const live = new Set<{ local: net.Socket; ws: ClientWebSocket }>();

  const carry = (local: net.Socket) => {
    const ws = canSendHeaders && opts.apiKey ? new WebSocket(url, { headers }) : new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const entry = { local, ws };
    live.add(entry);
    let opened = false;
    let sentEof = false;
    let gotEof = false;
    let failed = false;
    let drainTimer: ReturnType<typeof setInterval> | undefined;
    /** Bytes handed to the local app, and how many of them the relay has been told about. */
    let written = 0;
    let acked = 0;
    let closeTimer: ReturnType<typeof setTimeout> | undefined;
    const closeWs = (code = 1000, reason = '') => {
      if (ws.readyState <= OPEN) ws.close(code, reason);
    };

    // Nothing is read from the local socket until the relay has the stream open.
    local.pause();
    local.on('data', (chunk: Buffer) => {
      ws.send(chunk);
      // The WebSocket buffers whatever we send; stop reading the local app until it drains.
      if (ws.bufferedAmount > HIGH_WATER && !drainTimer) {
        local.pause();
        drainTimer = setInterval(() => {
          if (ws.bufferedAmount > LOW_WATER && ws.readyState === OPEN) return;
          clearInterval(drainTimer);
          drainTimer = undefined;
          local.resume();
        }, 5);
      }
    });
    local.on('end', () => {
      sentEof = true;
      if (ws.readyState === OPEN) ws.send(TCP_EOF_MESSAGE);
    });
    local.on('error', () => {
      // 'close' follows; it decides.
    });
    local.on('close', () => {
      clearInterval(drainTimer);
      if (sentEof && gotEof && !failed) {
        // A clean end both ways: the relay closes the WebSocket once the device has everything.
        closeTimer = setTimeout(() => closeWs(1000, 'done'), CLOSE_WAIT_MS);
      } else {
        closeWs(4000, 'local connection closed');
      }
    });

    ws.addEventListener('open', () => {
      opened = true;
      if (!local.destroyed) local.resume();
    });
    ws.addEventListener('message', (ev) => {
      const data = ev.data;
      if (typeof data !== 'string') {
        if (local.destroyed) return;
        // Acknowledged once the local app's socket took them: the relay keeps at most its window
        // unacknowledged, so a slow local reader slows the target instead of filling our memory.
        const bytes = new Uint8Array(data as ArrayBuffer);
        local.write(bytes, () => {
          written += bytes.byteLength;
          if (written - acked >= ACK_EVERY && ws.readyState === OPEN) {
            ws.send(tcpAckMessage(written - acked));
            acked = written;
          }
        });
        return;
      }
      let msg: TcpRelayMessage;
      try {
        const parsed = TcpRelayMessageSchema.safeParse(JSON.parse(data));
        if (!parsed.success) return;
        msg = parsed.data;
      } catch {
        return;
      }
      if (msg.t === 'eof') {
        gotEof = true;
        local.end();
      } else if (msg.t === 'error') {
        failed = true;
        log(`pirelay: ${describeTarget(target)}: ${msg.code}: ${msg.message}`);
        local.destroy();
      }
    });
    ws.addEventListener('close', (ev) => {
      live.delete(entry);
      clearTimeout(closeTimer);
      clearInterval(drainTimer);
      if (!opened) {
        failed = true;
        local.destroy();
        void explainRefusal(url, headers).then((why) => log(`pirelay: could not open a connection to ${describeTarget(target)}: ${why}`));
        return;
      }
      if (local.destroyed) return;
      // A clean close after the relay's eof: let what we still hold reach the local app first.
      if (ev.code === 1000 && gotEof && !failed) local.end(() => local.destroy());
      else local.destroy();
    });
    ws.addEventListener('error', () => {
      // 'close' always follows and handles it.
    });
  };

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, carry);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const address = server.address() as net.AddressInfo;
  return {
    host: address.address,
    port: address.port,
    get connections() {
      return live.size;
    },
    close: () =>
      new Promise<void>((done) => {
        for (const { local, ws } of live) {
          local.destroy();
          if (ws.readyState <= OPEN) ws.close(1000, 'client stopping');
        }
        live.clear();
        server.close(() => done());
      }),
  };
}

// --- the command line ---

const USAGE = `pirelay — reach TCP services on your devices through the relay

Usage:
  pirelay tcp <device>:<port> [--listen [HOST:]PORT] [options]
  pirelay tcp <tunnel-name>   [--listen [HOST:]PORT] [options]

Options:
  --listen [HOST:]PORT   local address to listen on (default 127.0.0.1:0, a free port)
  --relay URL            relay base URL (default: $PIRELAY_URL, else "url" in the config file)
  --api-key KEY          API key (default: $PIRELAY_API_KEY, else "apiKey" in the config file)
  --config PATH          JSON file with {"url", "apiKey"} (default: .pirelay/dev.json if present,
                         which \`npm start\` writes)

Example:
  pirelay tcp demo-pi:22 --listen 2222 &  ssh -p 2222 pi@127.0.0.1
`;

interface ClientConfig {
  url?: string;
  apiKey?: string;
}

function readConfig(path: string | undefined): ClientConfig {
  const file = path ?? (existsSync(resolve('.pirelay/dev.json')) ? resolve('.pirelay/dev.json') : undefined);
  if (!file) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read config ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const c = (parsed ?? {}) as Record<string, unknown>;
  return { url: typeof c.url === 'string' ? c.url : undefined, apiKey: typeof c.apiKey === 'string' ? c.apiKey : undefined };
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      listen: { type: 'string' },
      relay: { type: 'string' },
      'api-key': { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, spec, ...extra] = positionals;
  if (values.help || !command || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command !== 'tcp') throw new UsageError(`unknown command ${command}`);
  if (!spec || extra.length) throw new UsageError('tcp needs exactly one target: <device>:<port> or <tunnel-name>');
  const config = readConfig(values.config);
  // An empty variable counts as unset, as shells make it easy to export one by accident.
  const relay = values.relay || process.env.PIRELAY_URL || config.url;
  const apiKey = values['api-key'] || process.env.PIRELAY_API_KEY || config.apiKey;
  if (!relay) throw new UsageError('no relay: pass --relay URL, set PIRELAY_URL, or use --config');
  if (!apiKey) process.stderr.write('pirelay: warning: no API key (--api-key, PIRELAY_API_KEY or --config); the relay will likely refuse\n');

  const target = parseTarget(spec);
  const forward = await startTcpForward({ relay, apiKey, target, listen: values.listen ?? '127.0.0.1:0' });
  const shown = forward.host.includes(':') ? `[${forward.host}]` : forward.host;
  process.stdout.write(`listening on ${shown}:${forward.port} → ${describeTarget(target)}\n`);
  await new Promise<void>((done) => {
    const stop = () => void forward.close().then(done);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`pirelay: ${(e as Error).message}\n\n${USAGE}`);
        process.exit(2);
      }
      process.stderr.write(`pirelay: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
