// Shared pieces of the end-to-end tests: free ports, temp dirs, API calls and the agent CLI.
import { createServer } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_MAIN, runBunToEnd } from '../../scripts/dev-env.ts';

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
