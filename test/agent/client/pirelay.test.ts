// The `pirelay tcp` client against a fake relay (Bun.serve) that speaks the relay's side of the
// connect WebSocket: raw bytes as binary messages, {"t":"eof"} for a half-close, {"t":"error"} for
// a failure. Local connections are plain node:net sockets doing what `nc` does: write, half-close,
// read the reply. The CLI also runs as a child process under Node (tsx) and under Bun.
import { afterAll, beforeAll, describe, expect, it } from 'bun:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Server, ServerWebSocket } from 'bun';
import { connectUrl, parseListen, parseTarget, startTcpForward, UsageError } from '../../../client/pirelay.ts';

const KEY = 'pk_test_secret';
const ROOT = resolve(import.meta.dir, '../../..');
const CLI = join(ROOT, 'client/pirelay.ts');

type Mode = 'echo' | 'reply' | 'error' | 'flood';
type Conn = { mode: Mode; received: number; hash: ReturnType<typeof createHash>; path: string; flood?: Flood };
/** The 'flood' relay: sends FLOOD_BYTES, keeping at most FLOOD_WINDOW unacknowledged, as the hub does with ?flow=ack. */
interface Flood {
  sent: number;
  acked: number;
  pump(): void;
}
const FLOOD_BYTES = 48 * 1024 * 1024;
const FLOOD_WINDOW = 4 * 1024 * 1024;
let lastFlood: Flood | null = null;
interface Seen {
  path: string;
  auth: string | null;
  query: string;
}
let relay: Server<Conn>;
const seen: Seen[] = [];
const closes: number[] = [];
/** When the relay last closed a WebSocket on its own; it waits a little after the eofs, as the hub may. */
let relayClosedAt = 0;
const RELAY_CLOSE_DELAY_MS = 300;

/** Which behaviour a connection gets, by what it asked for. */
function modeFor(path: string): Mode | null {
  if (/^\/api\/v1\/devices\/[^/]+\/tcp\/\d+\/connect$/.test(path)) return path.includes('/broken/') ? 'error' : path.includes('/echo-box/') ? 'echo' : path.includes('/flood-box/') ? 'flood' : 'reply';
  if (/^\/api\/v1\/tunnels\/[^/]+\/connect$/.test(path)) return 'reply';
  return null;
}

beforeAll(() => {
  relay = Bun.serve<Conn>({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req, server) {
      const url = new URL(req.url);
      seen.push({ path: url.pathname, auth: req.headers.get('authorization'), query: url.search });
      if (req.headers.get('authorization') !== `Bearer ${KEY}` && url.searchParams.get('api_key') !== KEY) {
        return Response.json({ code: 'UNAUTHORIZED', error: 'invalid API key' }, { status: 401 });
      }
      const mode = modeFor(url.pathname);
      // As the relay does when the device refuses the target: the plain GET passes (426), the upgrade gets the reason.
      if (url.pathname.includes('/closed-port/')) {
        if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') return Response.json({ code: 'UPGRADE_REQUIRED', error: 'Expected a WebSocket upgrade', details: {} }, { status: 426 });
        return Response.json({ code: 'TARGET_REFUSED', error: 'The target could not be reached: connect ECONNREFUSED 127.0.0.1:22', details: {} }, { status: 502 });
      }
      if (!mode) return Response.json({ code: 'NOT_FOUND', error: 'no such route' }, { status: 404 });
      const ok = server.upgrade(req, { data: { mode, received: 0, hash: createHash('sha256'), path: url.pathname } });
      return ok ? undefined : Response.json({ code: 'UPGRADE_REQUIRED', error: 'use a WebSocket' }, { status: 426 });
    },
    websocket: {
      open(ws) {
        if (ws.data.mode === 'flood') {
          const block = new Uint8Array(64 * 1024).fill(5);
          const flood: Flood = {
            sent: 0,
            acked: 0,
            pump() {
              while (flood.sent < FLOOD_BYTES && flood.sent - flood.acked < FLOOD_WINDOW) {
                ws.send(block);
                flood.sent += block.byteLength;
              }
              if (flood.sent >= FLOOD_BYTES && flood.acked === flood.sent) ws.send('{"t":"eof"}');
            },
          };
          ws.data.flood = lastFlood = flood;
          flood.pump();
        }
        if (ws.data.mode === 'error') {
          ws.send(JSON.stringify({ t: 'error', code: 'TARGET_REFUSED', message: 'connect ECONNREFUSED 127.0.0.1:22' }));
          ws.close(1011, 'connection lost');
        }
      },
      message(ws: ServerWebSocket<Conn>, message) {
        if (typeof message === 'string') {
          const ack = /^\{"t":"ack","n":(\d+)\}$/.exec(message);
          if (ack && ws.data.flood) {
            ws.data.flood.acked += Number(ack[1]);
            ws.data.flood.pump();
          }
          if (message !== '{"t":"eof"}') return;
          // The client half-closed. Reply (after everything it sent), half-close ourselves, done.
          if (ws.data.mode === 'reply') ws.send(new TextEncoder().encode(`got ${ws.data.received} bytes ${ws.data.hash.digest('hex')}`));
          ws.send('{"t":"eof"}');
          setTimeout(() => {
            relayClosedAt = Date.now();
            ws.close(1000, 'closed');
          }, RELAY_CLOSE_DELAY_MS);
          return;
        }
        ws.data.received += message.byteLength;
        if (ws.data.mode === 'reply') ws.data.hash.update(message);
        else ws.send(message);
      },
      close(_ws, code) {
        closes.push(code);
      },
    },
  });
});

afterAll(() => relay.stop(true));

const relayUrl = () => `http://127.0.0.1:${relay.port}`;

/** `printf … | nc`: write everything, half-close, collect the reply until the other side ends. */
function ncExchange(port: number, payload: Uint8Array, chunk = 64 * 1024): Promise<{ reply: Buffer; closedCleanly: boolean; endAt: number }> {
  return new Promise((done) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const parts: Buffer[] = [];
    let ended = false;
    let failed = false;
    let endAt = 0;
    socket.on('data', (d) => parts.push(d));
    socket.on('end', () => {
      ended = true;
      endAt = Date.now();
    });
    // A reset (the client dropping us) is an outcome to check, not a test failure.
    socket.on('error', () => (failed = true));
    socket.on('close', () => done({ reply: Buffer.concat(parts), closedCleanly: ended && !failed, endAt }));
    socket.on('connect', async () => {
      for (let at = 0; at < payload.byteLength; at += chunk) {
        if (!socket.write(payload.subarray(at, at + chunk))) await new Promise((r) => socket.once('drain', r));
      }
      if (!socket.destroyed) socket.end();
    });
  });
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return out;
}

async function waitForValue<T>(read: () => T | null, ms = 5_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v) return v;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('pirelay client: parsing', () => {
  it('reads <device>:<port> and <tunnel-name> targets', () => {
    expect(parseTarget('demo-pi:22')).toEqual({ device: 'demo-pi', port: 22 });
    expect(parseTarget('2b7e33:5432')).toEqual({ device: '2b7e33', port: 5432 });
    expect(parseTarget('my-db')).toEqual({ tunnel: 'my-db' });
    expect(() => parseTarget('pi:70000')).toThrow(UsageError);
    expect(() => parseTarget('a/b')).toThrow(UsageError);
  });

  it('reads listen addresses', () => {
    expect(parseListen('2222')).toEqual({ host: '127.0.0.1', port: 2222 });
    expect(parseListen('0.0.0.0:2222')).toEqual({ host: '0.0.0.0', port: 2222 });
    expect(parseListen('[::1]:2222')).toEqual({ host: '::1', port: 2222 });
    expect(() => parseListen('here')).toThrow(UsageError);
  });

  it('builds the relay URLs, escaping names', () => {
    expect(connectUrl('https://relay.example/', { device: 'demo pi', port: 22 })).toBe('wss://relay.example/api/v1/devices/demo%20pi/tcp/22/connect');
    expect(connectUrl('http://127.0.0.1:8787', { tunnel: 'db' })).toBe('ws://127.0.0.1:8787/api/v1/tunnels/db/connect');
  });
});

describe('pirelay client: startTcpForward', () => {
  it('carries a connection: write, half-close, read the reply the far side sends after EOF', async () => {
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: 'demo-pi:22', listen: '127.0.0.1:0' });
    try {
      const payload = randomBytes(3 * 1024 * 1024 + 5);
      const { reply, closedCleanly, endAt } = await ncExchange(forward.port, payload);
      expect(reply.toString()).toBe(`got ${payload.byteLength} bytes ${sha(payload)}`);
      expect(closedCleanly).toBe(true);
      // The relay's eof itself ends the local socket; it does not wait for the WebSocket to close.
      await new Promise((r) => setTimeout(r, RELAY_CLOSE_DELAY_MS + 50));
      expect(endAt).toBeLessThan(relayClosedAt);
      const hit = seen.at(-1)!;
      expect(hit.path).toBe('/api/v1/devices/demo-pi/tcp/22/connect');
      expect(hit.auth).toBe(`Bearer ${KEY}`);
      expect(hit.query).toBe('?flow=ack'); // the key went in the header, not the query
    } finally {
      await forward.close();
    }
  }, 20_000);

  it('carries 32 MiB both ways intact', async () => {
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: { device: 'echo-box', port: 7 }, listen: { host: '127.0.0.1', port: 0 } });
    try {
      const payload = randomBytes(32 * 1024 * 1024);
      const { reply } = await ncExchange(forward.port, payload, 256 * 1024);
      expect(reply.byteLength).toBe(payload.byteLength);
      expect(sha(reply)).toBe(sha(payload));
      // Once the relay closes the WebSocket the connection is forgotten.
      const until = Date.now() + 3_000;
      while (forward.connections > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(forward.connections).toBe(0);
    } finally {
      await forward.close();
    }
  }, 30_000);

  it('asks for flow=ack and acknowledges only what the local app took, so a stalled reader stalls the relay', async () => {
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: { device: 'flood-box', port: 9 }, listen: '127.0.0.1:0' });
    try {
      const socket = net.connect({ host: '127.0.0.1', port: forward.port });
      socket.pause();
      await new Promise((r) => socket.once('connect', r));
      const flood = await waitForValue(() => lastFlood);
      // The local app reads nothing: once the kernel's buffers are full, acks stop and so does the relay.
      let last = -1;
      while (flood.sent !== last) {
        last = flood.sent;
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(seen.at(-1)!.query).toContain('flow=ack');
      expect(flood.sent).toBeLessThan(FLOOD_BYTES / 2);
      expect(flood.sent - flood.acked).toBeGreaterThanOrEqual(FLOOD_WINDOW - 64 * 1024);
      // Reading again: everything arrives and is acknowledged (to within the client's ack step).
      let got = 0;
      socket.on('data', (d: Buffer) => (got += d.byteLength));
      const ended = new Promise((r) => socket.once('end', r));
      socket.resume();
      await ended;
      expect(got).toBe(FLOOD_BYTES);
      expect(flood.acked).toBe(FLOOD_BYTES);
      socket.destroy();
    } finally {
      await forward.close();
    }
  }, 20_000);

  it('uses the tunnel route for a tunnel name', async () => {
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: 'office-db', listen: '127.0.0.1:0' });
    try {
      const { reply } = await ncExchange(forward.port, new TextEncoder().encode('hi'));
      expect(reply.toString()).toStartWith('got 2 bytes ');
      expect(seen.at(-1)!.path).toBe('/api/v1/tunnels/office-db/connect');
    } finally {
      await forward.close();
    }
  });

  it('prints the relay’s error and drops the local connection', async () => {
    const lines: string[] = [];
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: 'broken:22', listen: '127.0.0.1:0', log: (l) => lines.push(l) });
    try {
      const { reply, closedCleanly } = await ncExchange(forward.port, new TextEncoder().encode('hello'));
      expect(reply.byteLength).toBe(0);
      expect(closedCleanly).toBe(false);
      expect(lines).toEqual(['pirelay: broken:22: TARGET_REFUSED: connect ECONNREFUSED 127.0.0.1:22']);
    } finally {
      await forward.close();
    }
  });

  it('explains a refused WebSocket with the relay’s answer', async () => {
    const lines: string[] = [];
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: 'wrong', target: 'demo-pi:22', listen: '127.0.0.1:0', log: (l) => lines.push(l) });
    try {
      const { reply } = await ncExchange(forward.port, new TextEncoder().encode('hello'));
      expect(reply.byteLength).toBe(0);
      await new Promise((r) => setTimeout(r, 200));
      expect(lines).toEqual(['pirelay: could not open a connection to demo-pi:22: 401 UNAUTHORIZED: invalid API key']);
    } finally {
      await forward.close();
    }
  });

  it('explains an upgrade the relay refused with its real answer, not "the upgrade failed"', async () => {
    const lines: string[] = [];
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: 'closed-port:22', listen: '127.0.0.1:0', log: (l) => lines.push(l) });
    try {
      const { reply } = await ncExchange(forward.port, new TextEncoder().encode('hello'));
      expect(reply.byteLength).toBe(0);
      await waitForValue(() => lines.length > 0 || null);
      expect(lines).toEqual(['pirelay: could not open a connection to closed-port:22: 502 TARGET_REFUSED: The target could not be reached: connect ECONNREFUSED 127.0.0.1:22']);
    } finally {
      await forward.close();
    }
  });

  it('closes the relay WebSocket when the local connection is reset', async () => {
    const forward = await startTcpForward({ relay: relayUrl(), apiKey: KEY, target: 'echo-box:7', listen: '127.0.0.1:0' });
    try {
      const before = closes.length;
      const socket = net.connect({ host: '127.0.0.1', port: forward.port });
      await new Promise((r) => socket.once('connect', r));
      socket.write('ping');
      await new Promise((r) => socket.once('data', r));
      socket.resetAndDestroy();
      const until = Date.now() + 3_000;
      while (closes.length === before && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(closes.length).toBe(before + 1);
      // Not a clean 1000: the relay must treat it as an abort, not an end.
      expect(closes.at(-1)).toBe(4000);
    } finally {
      await forward.close();
    }
  });
});

/** Runs the CLI, waits for its "listening on" line, returns the port and the process. */
async function runCli(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ child: ChildProcess; port: number; line: string; stderr: () => string }> {
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: opts.cwd ?? ROOT, env: { ...process.env, PIRELAY_URL: '', PIRELAY_API_KEY: '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const line = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no "listening on" line; stderr: ${err}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on .*\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        done(m[0].trim());
      }
    });
    child.on('exit', (code) => fail(new Error(`exited with ${code}; stderr: ${err}`)));
  });
  const port = Number(/:(\d+) →/.exec(line)![1]);
  return { child, port, line, stderr: () => err };
}

async function stopCli(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.kill('SIGINT');
  return exited;
}

const NODE_CLI = ['node', '--import', 'tsx', CLI];
const BUN_CLI = [process.execPath, CLI];

describe('pirelay CLI', () => {
  for (const [runtime, cmd] of [
    ['node', NODE_CLI],
    ['bun', BUN_CLI],
  ] as const) {
    it(`runs under ${runtime}: listens, carries a connection, exits cleanly on SIGINT`, async () => {
      const { child, port, line } = await runCli([...cmd, 'tcp', 'demo-pi:22', '--listen', '127.0.0.1:0', '--relay', relayUrl(), '--api-key', KEY]);
      try {
        expect(line).toBe(`listening on 127.0.0.1:${port} → demo-pi:22`);
        const payload = randomBytes(256 * 1024);
        const { reply } = await ncExchange(port, payload);
        expect(reply.toString()).toBe(`got ${payload.byteLength} bytes ${sha(payload)}`);
        expect(seen.at(-1)!.auth).toBe(`Bearer ${KEY}`);
      } finally {
        expect(await stopCli(child)).toBe(0);
      }
    }, 30_000);
  }

  for (const [runtime, cmd] of [
    ['node', NODE_CLI],
    ['bun', BUN_CLI],
  ] as const) {
    it(`under ${runtime}, prints the relay's reason for a refused upgrade`, async () => {
      const { child, port, stderr } = await runCli([...cmd, 'tcp', 'closed-port:22', '--relay', relayUrl(), '--api-key', KEY]);
      try {
        await ncExchange(port, new TextEncoder().encode('hello'));
        await waitForValue(() => stderr().includes('\n') || null, 10_000);
        expect(stderr()).toBe('pirelay: could not open a connection to closed-port:22: 502 TARGET_REFUSED: The target could not be reached: connect ECONNREFUSED 127.0.0.1:22\n');
      } finally {
        await stopCli(child);
      }
    }, 30_000);
  }

  it('takes the relay and key from .pirelay/dev.json in the working directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-cli-'));
    mkdirSync(join(dir, '.pirelay'));
    writeFileSync(join(dir, '.pirelay/dev.json'), JSON.stringify({ url: relayUrl(), apiKey: KEY, adminUser: 'admin' }));
    const { child, port } = await runCli([...BUN_CLI, 'tcp', 'office-db'], { cwd: dir });
    try {
      const { reply } = await ncExchange(port, new TextEncoder().encode('abc'));
      expect(reply.toString()).toStartWith('got 3 bytes ');
      expect(seen.at(-1)).toMatchObject({ path: '/api/v1/tunnels/office-db/connect', auth: `Bearer ${KEY}` });
    } finally {
      await stopCli(child);
    }
  }, 30_000);

  it('takes the relay and key from the environment, over the config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-cli-'));
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ url: 'http://127.0.0.1:1', apiKey: 'wrong' }));
    const { child, port } = await runCli([...NODE_CLI, 'tcp', 'demo-pi:22', '--config', join(dir, 'cfg.json')], { env: { PIRELAY_URL: relayUrl(), PIRELAY_API_KEY: KEY } });
    try {
      const { reply } = await ncExchange(port, new TextEncoder().encode('abcd'));
      expect(reply.toString()).toStartWith('got 4 bytes ');
    } finally {
      await stopCli(child);
    }
  }, 30_000);

  it('exits with 2 and the usage on a bad command line', async () => {
    const child = spawn(process.execPath, [CLI, 'tcp'], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    expect(code).toBe(2);
    expect(err).toContain('tcp needs exactly one target');
    expect(err).toContain('Usage:');
  });
});
