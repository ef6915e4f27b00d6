// The runtime's own ceilings for a tunnel request, measured in the same run, in the same workerd
// and served the same way as the relay (straight from the Worker, through Miniflare's API):
// - /hop: a Worker that hands each request to a Durable Object (stub.fetch), which answers at once.
//   Every tunnel request makes this hop.
// - /ws: the same hop, plus one WebSocket message from the Durable Object to a Bun peer and one
//   back, the least a tunnel request can do to reach a device. Both ends batch the messages of a
//   turn as the relay and the agent do, so this is the best case of the real wire, without
//   headers, streams or a target.
// - relay (relayCeiling): a Bun peer's 256 KiB binary messages, relayed by a Durable Object to a
//   second Bun peer's WebSocket, with a 4 MiB ack window back to the source: what a TCP stream
//   through `pirelay tcp` (device socket → hub → client WebSocket) can reach at best.
import { Miniflare } from 'miniflare';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from '../test/e2e/harness.ts';
import { BUN } from '../scripts/dev-env.ts';

const SCRIPT = `
import { DurableObject } from 'cloudflare:workers';
export class Hop extends DurableObject {
  waiting = new Map();
  next = 1;
  peer = null;
  queue = [];
  fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === '/peer') {
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server);
      this.peer = server;
      return new Response(null, { status: 101, webSocket: client });
    }
    if (path !== '/ws' || !this.peer) return new Response('ok');
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.queue.push(id);
      if (this.queue.length === 1) setTimeout(() => { this.peer.send(this.queue.join(',')); this.queue = []; }, 0);
    });
  }
  webSocketMessage(ws, message) {
    for (const id of String(message).split(',')) {
      this.waiting.get(Number(id))?.(new Response('ok'));
      this.waiting.delete(Number(id));
    }
  }
  webSocketClose() {}
  webSocketError() {}
}
export class Relay extends DurableObject {
  src = null; sink = null; got = 0; acked = 0;
  fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    if (new URL(request.url).pathname === '/relay/src') {
      this.ctx.acceptWebSocket(server);
      this.src = server;
    } else {
      server.accept();
      this.sink = server;
      this.src.send('go');
    }
    return new Response(null, { status: 101, webSocket: client });
  }
  webSocketMessage(ws, message) {
    if (typeof message === 'string') return this.sink.send(message);
    this.got += message.byteLength;
    this.sink.send(message);
    if (this.got - this.acked >= 1048576) { this.acked = this.got; this.src.send(String(this.got)); }
  }
  webSocketClose() {}
  webSocketError() {}
}
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.startsWith('/relay/')) return env.RELAY.get(env.RELAY.idFromName(url.searchParams.get('run') ?? 'one')).fetch(request);
    return env.HOP.get(env.HOP.idFromName('one')).fetch(request);
  },
};
`;

/** The relay ceiling's source: sends `total` bytes in `size` messages, at most 4 MiB ahead of the acks. */
const RELAY_SRC = `
const [url, total, size] = process.argv.slice(-3).map((v, i) => (i ? Number(v) : v));
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
const buf = new Uint8Array(size).fill(7);
let sent = 0, acked = 0;
const pump = () => { while (sent < total && sent - acked < 4194304) { ws.send(buf); sent += size; } if (sent >= total) ws.send('end'); };
ws.onmessage = (ev) => { if (ev.data !== 'go') acked = Number(ev.data); if (sent < total) pump(); };
ws.onopen = () => console.log('ready');
`;

/** The relay ceiling's sink: counts bytes until the text 'end', prints MB/s. */
const RELAY_SINK = `
const [url] = process.argv.slice(-1);
let got = 0; const t0 = performance.now();
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
ws.onmessage = (ev) => {
  if (typeof ev.data !== 'string') return void (got += ev.data.byteLength);
  console.log(JSON.stringify({ got, mbs: got / 1e6 / ((performance.now() - t0) / 1000) }));
  process.exit(0);
};
`;

/** The Bun peer: echoes the ids of each message, batched per event-loop turn like the agent. */
const PEER = `
const ws = new WebSocket(process.argv.at(-1));
let queue = [];
ws.onmessage = (ev) => {
  queue.push(ev.data);
  if (queue.length === 1) setImmediate(() => { ws.send(queue.join(',')); queue = []; });
};
ws.onopen = () => console.log('ready');
`;

export async function startHopBaseline(): Promise<{ url: string; relayCeiling(bytes: number): Promise<number>; stop(): Promise<void> }> {
  const port = await freePort();
  const mf = new Miniflare({
    name: 'hop',
    modules: true,
    script: SCRIPT,
    compatibilityDate: '2026-04-01',
    durableObjects: { HOP: 'Hop', RELAY: 'Relay' },
    port: 0,
    unsafeDirectSockets: [{ host: '127.0.0.1', port }],
  } as ConstructorParameters<typeof Miniflare>[0]);
  await mf.ready;
  const url = (await mf.unsafeGetDirectURL()).toString().replace(/\/$/, '');
  const peer = spawn(BUN, ['-e', PEER, `${url.replace(/^http/, 'ws')}/peer`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    peer.stdout!.once('data', () => resolve());
    peer.once('exit', (code) => reject(new Error(`the hop baseline's Bun peer exited (${code})`)));
  });
  let runs = 0;
  return {
    url,
    async relayCeiling(bytes: number): Promise<number> {
      const run = ++runs;
      const ws = url.replace(/^http/, 'ws');
      const src = spawn(BUN, ['-e', RELAY_SRC, `${ws}/relay/src?run=${run}`, String(bytes), String(256 * 1024)], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve) => src.stdout!.once('data', () => resolve()));
        const { stdout } = await promisify(execFile)(BUN, ['-e', RELAY_SINK, `${ws}/relay/sink?run=${run}`], { encoding: 'utf8' });
        const { got, mbs } = JSON.parse(stdout.trim()) as { got: number; mbs: number };
        if (got !== bytes) throw new Error(`relay ceiling got ${got} of ${bytes} bytes`);
        return mbs;
      } finally {
        src.kill();
      }
    },
    async stop() {
      peer.kill();
      await mf.dispose();
    },
  };
}
