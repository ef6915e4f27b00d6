// Shared pieces of the end-to-end tests: free ports, temp dirs, API calls and the agent CLI.
import { connect, createServer } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { AGENT_MAIN, BUN, ROOT, runBunToEnd } from '../../scripts/dev-env.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export const tempDir = (prefix: string) => mkdtemp(join(tmpdir(), `pirelay-${prefix}-`));

export interface Called {
  status: number;
  headers: Headers;
  body: any;
}

export async function http(url: string, init: RequestInit & { key?: string; basicKey?: string; json?: unknown } = {}): Promise<Called> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set('authorization', `Bearer ${init.key}`);
  if (init.basicKey) headers.set('authorization', `Basic ${Buffer.from(`${init.basicKey}:`).toString('base64')}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(url, { ...init, headers, body, method: init.method ?? (body ? 'POST' : 'GET') });
  // An event stream (GET /api/v1/stream) or a live view (GET …/screen/live, MJPEG) never ends: its head is the answer.
  const type = res.headers.get('content-type') ?? '';
  if (type.startsWith('text/event-stream') || type.startsWith('multipart/x-mixed-replace')) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, body: null };
  }
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Runs the agent CLI to completion. */
export const agentCli = (args: string[]) => runBunToEnd([AGENT_MAIN, ...args]);

export interface Targets {
  http: number;
  tcp: number;
  /** node:http /big with Content-Length (Bun.serve sends streamed bodies chunked). */
  sized: number;
  pid: number;
  stop(): void;
}

/** The local services tunnels lead to (test/fixtures/tunnel-targets.ts), in a Bun child process. */
export async function startTargets(): Promise<Targets> {
  const child = spawn(BUN, [join(ROOT, 'test/fixtures/tunnel-targets.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<{ http: number; tcp: number; sized: number }>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(JSON.parse(String(d))));
    child.once('exit', (code) => reject(new Error(`tunnel targets exited with ${code}`)));
  });
  return { ...ports, pid: child.pid!, stop: () => child.kill() };
}

/** Resolves every host name to 127.0.0.1, as browsers and curl do for *.localhost. */
export const loopbackLookup = (_h: string, _o: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) => cb(null, [{ address: '127.0.0.1', family: 4 }]);

/** Writes `text` to 127.0.0.1:port, half-closes (like `nc -N`), and resolves with all that comes back before the end. */
export function tcpExchange(port: number, text: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => (got += d));
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
    sock.write(text, () => sock.end());
  });
}
