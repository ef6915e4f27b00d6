// The tunnel part of `npm run bench`: HTTP through a tunnel against the same server direct, one
// TCP stream through `pirelay tcp` against direct, a 1 GiB download with the relay's and agent's
// peak RSS growth, a 200 MB upload, and requests/s over 100,000 requests on one tunnel (it must not decay).
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { BUN, ROOT, waitFor, type DevEnv } from '../scripts/dev-env.ts';
import { freePort, loopbackLookup, startTargets } from '../test/e2e/harness.ts';
import { load, onPath } from './load.ts';
import { startHopBaseline } from './hop-baseline.ts';
import { processesNamed, rss } from './proc.ts';

type Row = [string, string, string];
const fmt = (n: number, d = 0) => n.toFixed(d);

/**
 * Reads `bytes` from a TCP source ("SEND n") at 127.0.0.1:port in a Bun process of its own (so the
 * reader does not share an event loop with this one, which hosts Miniflare); returns MB/s.
 */
export async function tcpDownload(port: number, bytes: number): Promise<number> {
  const script = `
    const [port, bytes] = process.argv.slice(-2).map(Number);
    let got = 0, t0 = 0;
    await Bun.connect({ hostname: '127.0.0.1', port, socket: {
      open(s) { t0 = performance.now(); s.write('SEND ' + bytes + '\\n'); },
      data(s, d) { got += d.byteLength; },
      close() { console.log(JSON.stringify({ got, s: (performance.now() - t0) / 1000 })); },
      end(s) { s.end(); },
    } });`;
  const { stdout } = await promisify(execFile)(BUN, ['-e', script, String(port), String(bytes)], { encoding: 'utf8' });
  const { got, s } = JSON.parse(stdout.trim().split('\n').pop()!) as { got: number; s: number };
  if (got !== bytes) throw new Error(`got ${got} of ${bytes} bytes`);
  return bytes / 1e6 / s;
}

/** Downloads to /dev/null with curl (a *.localhost URL goes to 127.0.0.1 with its Host kept); returns the bytes read. */
async function curlDownload(url: string): Promise<number> {
  const u = new URL(url);
  const host = u.host;
  u.hostname = '127.0.0.1';
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', '-H', `Host: ${host}`, u.toString()], { encoding: 'utf8' });
  return Number(stdout.trim());
}

async function undiciDownload(url: string, dispatcher: Agent): Promise<number> {
  const res = await request(url, { dispatcher });
  let got = 0;
  for await (const chunk of res.body) got += (chunk as Buffer).byteLength;
  return got;
}

export async function benchTunnels(env: DevEnv, durationMs: number): Promise<Row[]> {
  const rows: Row[] = [];
  const { url, apiKey, devices } = env.state;
  const deviceId = devices[0]!.id;
  const port = Number(new URL(url).port);
  const ports = await startTargets();
  try {
    const mk = async (body: object) => {
      const r = await fetch(`${url}/api/v1/devices/${deviceId}/tunnels`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status !== 201) throw new Error(`tunnel create: ${r.status} ${await r.text()}`);
    };
    await mk({ name: 'bench', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'public' } });
    await mk({ name: 'benchtcp', kind: 'tcp', target: `127.0.0.1:${ports.tcp}`, access: { mode: 'pirelay' } });
    // The same download with a Content-Length, as most servers send a file (Bun.serve sends it chunked).
    await mk({ name: 'benchsized', kind: 'http', target: `127.0.0.1:${ports.sized}`, access: { mode: 'public' } });
    const tunnelUrl = `http://bench.localhost:${port}`;
    const probe = new Agent({ connect: { lookup: loopbackLookup } as never });
    await waitFor('bench tunnel', async () => (await request(`${tunnelUrl}/tiny`, { dispatcher: probe }).then(async (r) => (await r.body.text(), r.statusCode))) === 200, 15_000);

    const hop = await startHopBaseline();
    for (const c of [1, 64]) {
      const base = await load(`${hop.url}/hop`, { concurrency: c, durationMs });
      rows.push([`Worker → Durable Object hop alone, answered at once (ceiling) c=${c}`, `${fmt(base.rps)} req/s, p50 ${fmt(base.p50, 2)} ms, p99 ${fmt(base.p99, 2)} ms`, '—']);
    }
    for (const c of [1, 64]) {
      const ws = await load(`${hop.url}/ws`, { concurrency: c, durationMs });
      rows.push([`… plus one WebSocket message to a Bun peer and back (ceiling) c=${c}`, `${fmt(ws.rps)} req/s, p50 ${fmt(ws.p50, 2)} ms, p99 ${fmt(ws.p99, 2)} ms`, '—']);
    }
    const relayMbs = await hop.relayCeiling(512 * 1024 * 1024);
    await hop.stop();
    for (const c of [1, 64]) {
      const direct = await load(`http://127.0.0.1:${ports.http}/tiny`, { concurrency: c, durationMs });
      rows.push([`HTTP direct to the server c=${c}`, `${fmt(direct.rps)} req/s, p50 ${fmt(direct.p50, 2)} ms, p99 ${fmt(direct.p99, 2)} ms`, '—']);
      const tun = await load(`${tunnelUrl}/tiny`, { concurrency: c, durationMs });
      if (tun.errors) throw new Error(`tunnel load had ${tun.errors} errors`);
      rows.push([`HTTP through the tunnel c=${c}`, `${fmt(tun.rps)} req/s, p50 ${fmt(tun.p50, 2)} ms, p99 ${fmt(tun.p99, 2)} ms`, c === 1 ? '≥ 3,000 req/s' : '≥ 5,000 req/s, p99 ≤ 50 ms']);
    }

    // One TCP stream: direct, then through `pirelay tcp` (the client as a library).
    const TCP_BYTES = 512 * 1024 * 1024;
    rows.push(['TCP one stream direct (512 MiB)', `${fmt(await tcpDownload(ports.tcp, TCP_BYTES))} MB/s`, '—']);
    rows.push(['… a Durable Object relaying 256 KiB WebSocket messages between two Bun peers (ceiling for TCP, 512 MiB)', `${fmt(relayMbs)} MB/s`, '—']);
    // The client as users run it: `pirelay tcp` under Bun, in its own process.
    const listen = await freePort();
    const client = spawn(BUN, [join(ROOT, 'client/pirelay.ts'), 'tcp', `${deviceId}:${ports.tcp}`, '--listen', `127.0.0.1:${listen}`, '--relay', url], {
      env: { ...process.env, PIRELAY_API_KEY: apiKey },
      stdio: 'ignore',
    });
    try {
      await waitFor('pirelay tcp to listen', () => new Promise<boolean>((resolve) => connect(listen, '127.0.0.1').once('connect', function (this: Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false))), 15_000);
      rows.push(['TCP one stream through the tunnel (512 MiB, `pirelay tcp` on Bun)', `${fmt(await tcpDownload(listen, TCP_BYTES))} MB/s`, '≥ 500 MB/s']);
    } finally {
      client.kill();
    }

    // 1 GiB downloads through the HTTP tunnel, sampling RSS of the relay (workerd) and the agent.
    const agentPid = env.agents.get(deviceId)!.pid!;
    const relayPids = processesNamed('workerd', process.pid);
    const relayAndAgent = () => rss(agentPid).total + relayPids.reduce((a, p) => a + rss(p).total, 0);
    const GiB = 1024 * 1024 * 1024;
    // curl when present: reading 1 GiB in this Node process (which also runs the relay's
    // Miniflare) would make the client the slowest part. The bytes are counted either way.
    const byCurl = onPath('curl');
    const download = async (base: string) => {
      const before = relayAndAgent();
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, relayAndAgent())), 50);
      const t0 = performance.now();
      try {
        const got = byCurl ? await curlDownload(`${base}/big?bytes=${GiB}`) : await undiciDownload(`${base}/big?bytes=${GiB}`, probe);
        if (got !== GiB) throw new Error(`1 GiB download got ${got} bytes`);
      } finally {
        clearInterval(sampler);
      }
      return { mbs: GiB / 1e6 / ((performance.now() - t0) / 1000), before, growth: peak - before };
    };
    const chunked = await download(tunnelUrl);
    rows.push([`1 GiB download through the tunnel (${byCurl ? 'curl' : 'undici'}; chunked)`, `${fmt(chunked.mbs)} MB/s`, '≥ 500 MB/s']);
    rows.push(['relay + agent RSS growth during it', `${fmt(chunked.growth, 1)} MiB (from ${fmt(chunked.before)} MiB)`, '≤ 64 MB']);
    const sized = await download(`http://benchsized.localhost:${port}`);
    rows.push(['… the same with a Content-Length (node:http target)', `${fmt(sized.mbs)} MB/s, RSS growth ${fmt(sized.growth, 1)} MiB`, '≥ 500 MB/s, ≤ 64 MB']);

    // A 200 MB streamed upload through the tunnel, with the same RSS sampling.
    const UPLOAD = 200 * 1000 * 1000;
    const upBefore = relayAndAgent();
    let upPeak = upBefore;
    const upSampler = setInterval(() => (upPeak = Math.max(upPeak, relayAndAgent())), 50);
    const block = Buffer.alloc(256 * 1024, 3);
    const body = Readable.from(
      (function* () {
        for (let sent = 0; sent < UPLOAD; sent += block.byteLength) yield sent + block.byteLength <= UPLOAD ? block : block.subarray(0, UPLOAD - sent);
      })(),
    );
    const u0 = performance.now();
    const up = await request(`${tunnelUrl}/upload`, { dispatcher: probe, method: 'POST', body });
    const seen = (await up.body.json()) as { size: number };
    const upSecs = (performance.now() - u0) / 1000;
    clearInterval(upSampler);
    if (seen.size !== UPLOAD) throw new Error(`upload: the target saw ${seen.size} bytes`);
    rows.push(['200 MB upload through the tunnel', `${fmt(UPLOAD / 1e6 / upSecs)} MB/s, RSS growth ${fmt(upPeak - upBefore, 1)} MiB`, 'flat memory']);

    // 100,000 requests on one tunnel, requests/s per 20,000.
    const marks: number[] = [];
    let last = 0;
    const total = await load(`${tunnelUrl}/tiny`, {
      concurrency: 64,
      durationMs: 10 * 60_000,
      maxRequests: 100_000,
      onProgress: (done, ms) => {
        if (done % 20_000 === 0) {
          marks.push((20_000 / (ms - last)) * 1000);
          last = ms;
        }
      },
    });
    rows.push(['100,000 requests on one tunnel (c=64)', `${fmt(total.rps)} req/s overall; per 20k: ${marks.map((m) => fmt(m)).join(', ')}`, 'no decay']);
  } finally {
    ports.stop();
  }
  return rows;
}
