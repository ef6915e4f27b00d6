// The tunnel path under `wrangler dev` itself (what `npm run dev` runs, with its two proxies in
// front of workerd), not only under Miniflare's API as the other end-to-end tests run it: a real
// agent, a web app reached by subdomain (headers, body, a compressed body, SSE as produced, a
// WebSocket echo) and a TCP service through `pirelay tcp`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Agent, fetch as ufetch, WebSocket as UWebSocket, type Dispatcher } from 'undici';
import { BUN, ROOT, startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { startWranglerDev } from '../../scripts/wrangler-dev.ts';
import { freePort, http, loopbackLookup, startTargets, tcpExchange, tempDir, type Targets } from './harness.ts';

let env: DevEnv;
let port: number;
let targets: Targets;
let client: ChildProcess | null = null;
const dispatcher: Dispatcher = new Agent({ connect: { lookup: loopbackLookup } as never });
const visit = (path: string, init: Parameters<typeof ufetch>[1] = {}) => ufetch(`http://wdapp.localhost:${port}${path}`, { dispatcher, ...init });

beforeAll(async () => {
  targets = await startTargets();
  port = await freePort();
  env = await startDevEnv({ dir: await tempDir('wrangler'), port, demoDevices: ['wd-pi'], startRelay: startWranglerDev, vars: { HEARTBEAT_INTERVAL_MS: '1000' } });
  await waitOnline(env, 30_000);
  const deviceId = env.state.devices[0]!.id;
  for (const body of [
    { name: 'wdapp', kind: 'http', target: `127.0.0.1:${targets.http}`, access: { mode: 'public' } },
    { name: 'wdecho', kind: 'tcp', target: `127.0.0.1:${targets.tcp}`, access: { mode: 'pirelay' } },
  ]) {
    const r = await http(`${env.state.url}/api/v1/devices/${deviceId}/tunnels`, { key: env.state.apiKey, json: body });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  await waitFor('tunnel reachable', async () => (await visit('/tiny')).status === 200, 15_000);
}, 120_000);

afterAll(async () => {
  client?.kill();
  await env?.stop();
  targets?.stop();
});

describe('tunnels under wrangler dev', () => {
  it('carries a POST with its body and headers, adding X-Forwarded-*', async () => {
    const res = await visit('/echo/wd?q=1', { method: 'POST', headers: { 'x-custom': 'yes', 'content-type': 'text/plain' }, body: 'through wrangler' });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { method: string; path: string; query: string; body: string; headers: Record<string, string> };
    expect([seen.method, seen.path, seen.query, seen.body]).toEqual(['POST', '/echo/wd', '?q=1', 'through wrangler']);
    expect(seen.headers['x-custom']).toBe('yes');
    expect(seen.headers['x-forwarded-host']).toBe(`wdapp.localhost:${port}`);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('passes a body the target compressed through, compressed once', async () => {
    for (const query of ['n=1000', 'n=2000000&chunked']) {
      const res = await visit(`/gzip?${query}`, { headers: { 'accept-encoding': 'gzip' } });
      const text = await res.text();
      expect(text.length, query).toBe(Number(/n=(\d+)/.exec(query)![1]) * 'compressed once\n'.length);
      expect(text.startsWith('compressed once\n'), query).toBe(true);
    }
  });

  it('streams SSE as it is produced', async () => {
    const res = await visit('/sse?n=3&every=500');
    const reader = res.body!.getReader();
    const started = Date.now();
    const first = await reader.read();
    // The first event is out long before the last one is even produced (at about 1 s).
    expect(Date.now() - started).toBeLessThan(800);
    expect(new TextDecoder().decode(first.value)).toContain('data: {"n":0');
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('"n":2');
  });

  it('passes a WebSocket upgrade through', async () => {
    const ws = new UWebSocket(`ws://wdapp.localhost:${port}/ws`, { dispatcher } as never);
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send('hello through wrangler');
      ws.onmessage = (ev) => resolve(String(ev.data));
      ws.onerror = () => reject(new Error('websocket error'));
    });
    ws.close();
    expect(echoed).toBe('hello through wrangler');
  });

  it('carries a TCP connection through `pirelay tcp`, half-close included', async () => {
    const listen = await freePort();
    client = spawn(BUN, [join(ROOT, 'client/pirelay.ts'), 'tcp', 'wdecho', '--listen', `127.0.0.1:${listen}`, '--relay', env.state.url, '--api-key', env.state.apiKey], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => client!.stdout!.on('data', (d) => String(d).includes('listening') && resolve()));
    expect(await tcpExchange(listen, 'over wrangler\n')).toBe('over wrangler\nbye after 14 bytes\n');
  });
});
