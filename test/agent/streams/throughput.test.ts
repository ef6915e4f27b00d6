// How fast the mux is in one process, over a loopback that delivers every frame in a later
// microtask (or, closer to a socket, as its own task): one bulk stream's MB/s, and short
// request/response streams per second. The figures are printed, and what is asserted is that
// every byte and every stream arrived: speed targets belong to `npm run bench`, not to tests.
import { describe, expect, it } from 'bun:test';
import { StreamMux, type MuxStream } from '../../../shared/protocol/mux.ts';
import { bytes, loopback, readAll, writeAll } from './helpers.ts';

const MiB = 1024 * 1024;
const enc = new TextEncoder();

/** Drains a readable and counts its bytes without keeping them. */
async function count(readable: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of readable) n += chunk.byteLength;
  return n;
}

/** Two muxes joined by a MessageChannel: every frame is a separate task, as socket messages are. */
function channelPair(): { hub: StreamMux; offered: Promise<MuxStream> } {
  const { port1, port2 } = new MessageChannel();
  let offer!: (s: MuxStream) => void;
  const offered = new Promise<MuxStream>((resolve) => (offer = resolve));
  const hub = new StreamMux({ send: (f) => port1.postMessage(f, [f.buffer]) }, { side: 'hub' });
  const agent = new StreamMux({ send: (f) => port2.postMessage(f, [f.buffer]) }, { side: 'agent', onOpen: (s) => offer(s) });
  port1.onmessage = (ev) => hub.receive(ev.data);
  port2.onmessage = (ev) => agent.receive(ev.data);
  return { hub, offered };
}

async function bulk(hub: StreamMux, offered: Promise<MuxStream>, total: number): Promise<{ mbps: number; received: number; seconds: number }> {
  const chunk = bytes(MiB, 5);
  const s = hub.open({ kind: 'tcp', tunnel: 'bulk' });
  const peer = await offered;
  peer.accept({});
  const started = performance.now();
  const [received] = await Promise.all([
    count(peer.readable),
    (async () => {
      const w = s.writable.getWriter();
      for (let sent = 0; sent < total; sent += chunk.byteLength) await w.write(chunk);
      await w.close();
    })(),
  ]);
  const seconds = (performance.now() - started) / 1000;
  return { mbps: total / 1e6 / seconds, received, seconds };
}

describe('throughput', () => {
  it('carries one bulk stream whole (frames delivered in a later microtask)', async () => {
    const total = 128 * MiB;
    const l = loopback();
    const { mbps, received, seconds } = await bulk(l.hub, l.agentOffers.next(), total);
    console.log(`single stream, microtask loopback: ${mbps.toFixed(0)} MB/s (${total / MiB} MiB in ${seconds.toFixed(2)} s)`);
    expect(received).toBe(total);
  });

  it('carries one bulk stream when every frame is its own task (MessageChannel)', async () => {
    const total = 64 * MiB;
    const { hub, offered } = channelPair();
    const { mbps, received, seconds } = await bulk(hub, offered, total);
    console.log(`single stream, MessageChannel loopback: ${mbps.toFixed(0)} MB/s (${total / MiB} MiB in ${seconds.toFixed(2)} s)`);
    expect(received).toBe(total);
  });

  it('runs 20,000 short request/response streams, 100 at a time, without leaking one', async () => {
    const l = loopback({
      agent: {
        onOpen: (s) => {
          s.accept({ status: 200 });
          void (async () => {
            const req = await readAll(s.readable);
            await writeAll(s.writable, req);
          })();
        },
      },
    });
    const total = 20_000;
    const concurrency = 100;
    const body = enc.encode('GET / HTTP/1.1 and a small body');
    let next = 0;
    let ok = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          next++;
          const s = l.hub.open({ kind: 'http', tunnel: 't', method: 'GET', path: '/', headers: [] });
          const [, head, reply] = await Promise.all([writeAll(s.writable, body), s.accepted, readAll(s.readable)]);
          await s.closed;
          if (head.status === 200 && reply.byteLength === body.byteLength) ok++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const rate = total / seconds;
    console.log(`short streams: ${rate.toFixed(0)} streams/s (${total} in ${seconds.toFixed(2)} s, ${concurrency} at a time)`);
    expect(ok).toBe(total);
    expect(l.hub.size + l.agent.size).toBe(0);
  });
});
