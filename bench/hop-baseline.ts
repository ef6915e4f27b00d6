// The runtime's own ceilings for a tunnel request, measured in the same run, in the same workerd
// and served the same way as the relay (straight from the Worker, through Miniflare's API):
// - /hop: a Worker that hands each request to a Durable Object (stub.fetch), which answers at once.
//   Every tunnel request makes this hop.
// - /ws: the same hop, plus one WebSocket message from the Durable Object to a Bun peer and one
//   back, the least a tunnel request can do to reach a device. Both ends batch the messages of a
//   turn as the relay and the agent do, so this is the best case of the real wire, without
//   headers, streams or a target.
import { Miniflare } from 'miniflare';
import { spawn } from 'node:child_process';
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
export default {
  fetch(request, env) { return env.HOP.get(env.HOP.idFromName('one')).fetch(request); },
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

export async function startHopBaseline(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const mf = new Miniflare({
    name: 'hop',
    modules: true,
    script: SCRIPT,
    compatibilityDate: '2026-04-01',
    durableObjects: { HOP: 'Hop' },
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
  return {
    url,
    async stop() {
      peer.kill();
      await mf.dispose();
    },
  };
}
