// TCP clients that acknowledge (`?flow=ack`, as `pirelay tcp` does): the hub keeps at most
// TCP_CLIENT_WINDOW bytes unacknowledged, so a client whose local reader stalls stops the target
// (through the stream's credit) instead of piling bytes up in the relay or the client. A plain
// WebSocket client, which never acknowledges, still gets everything as fast as it comes.
import { beforeAll, describe, expect, it } from 'vitest';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { TCP_CLIENT_WINDOW } from '../../shared/protocol/tcp-client.ts';
import { api, userWithKey } from './helpers.ts';
import { enrollDevice, waitFor } from './device-helpers.ts';
import { fakeTunnelAgent, makeTunnel, tunnelName } from './tunnels-helpers.ts';

const TOTAL = 24 * 1024 * 1024;
const BLOCK = new Uint8Array(64 * 1024).fill(9);

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

/**
 * A TCP tunnel whose fake target sends TOTAL bytes as fast as the stream's credit allows; `sent`
 * counts them. It half-closes only when the test calls `finish()` once every byte reached the
 * client: in this harness the agent's messages can reach the hub out of order (see
 * fakeTunnelAgent), and a CLOSE that overtook the last DATA frames would rightly be reset as a
 * protocol error.
 */
async function sendingTarget() {
  const { deviceId, privateKey } = await enrollDevice(admin, { autoApprove: true });
  const t = await makeTunnel(admin, deviceId, { name: tunnelName('flow'), kind: 'tcp', target: '127.0.0.1:22' });
  const progress = { sent: 0 };
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const agent = await fakeTunnelAgent(deviceId, privateKey, {
    onOpen: (stream: MuxStream) => {
      stream.accept({});
      void (async () => {
        const writer = stream.writable.getWriter();
        try {
          while (progress.sent < TOTAL) {
            await writer.write(BLOCK);
            progress.sent += BLOCK.byteLength;
          }
          await finished;
          await writer.close();
        } catch {
          // reset by the test's end
        }
      })();
    },
  });
  return { t, agent, progress, finish };
}

async function connect(name: string, query: string) {
  const res = await api(`/api/v1/tunnels/${name}/connect${query}`, { key: admin, headers: { upgrade: 'websocket' } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  ws.binaryType = 'arraybuffer';
  const got = { bytes: 0, text: [] as string[], closed: null as number | null };
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string') got.text.push(e.data);
    else got.bytes += (e.data as ArrayBuffer).byteLength;
  });
  ws.addEventListener('close', (e) => (got.closed = e.code));
  return { ws, got };
}

/** Waits until `read()` stops changing for `quietMs`. */
async function settled(read: () => number, quietMs = 300): Promise<number> {
  let last = -1;
  for (;;) {
    const now = read();
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

describe('TCP client flow control', () => {
  it('with ?flow=ack the target stops once a window is unacknowledged, and goes on with each ack', async () => {
    const { t, agent, progress, finish } = await sendingTarget();
    const { ws, got } = await connect(t.name, '?flow=ack');
    const stalled = await settled(() => got.bytes);
    expect(stalled).toBeGreaterThanOrEqual(TCP_CLIENT_WINDOW);
    expect(stalled).toBeLessThan(TCP_CLIENT_WINDOW + 1024 * 1024);
    // The target is held back by credit, not just the client: what it sent is bounded too (the
    // hub's stream window and what is in flight), far below the 24 MiB it wants to send.
    expect(progress.sent).toBeLessThan(TCP_CLIENT_WINDOW + 8 * 1024 * 1024);

    // Acknowledge what arrived, bit by bit as the client would: everything else follows.
    let acked = 0;
    while (got.bytes < TOTAL) {
      if (acked < got.bytes) {
        const n = got.bytes - acked;
        ws.send(JSON.stringify({ t: 'ack', n }));
        acked += n;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(got.bytes).toBe(TOTAL);
    finish();
    await waitFor(() => got.text.includes('{"t":"eof"}'), 'the eof', 20_000).catch((e: Error) => {
      throw new Error(`${e.message}: the client got ${JSON.stringify(got.text)}, closed ${got.closed}`);
    });
    ws.close();
    agent.ws.close();
    // 24 MiB acknowledged 5 ms at a time: under a full suite on two cores this took over 30 s.
  }, 90_000);

  it('a plain client, which never acknowledges, gets everything', async () => {
    const { t, agent, finish } = await sendingTarget();
    const { ws, got } = await connect(t.name, '');
    // 24 MiB through workerd: seconds when the rest of the suite shares the two cores.
    await waitFor(() => got.bytes === TOTAL, 'all bytes', 20_000);
    finish();
    await waitFor(() => got.text.includes('{"t":"eof"}'), 'the eof', 20_000);
    ws.close();
    agent.ws.close();
  }, 30_000);

  it('refuses a malformed text message or an ack of more than was sent, with an error and close 1008', async () => {
    for (const [query, message] of [
      ['?flow=ack', 'not json'],
      ['?flow=ack', '{"t":"ack","n":-5}'],
      ['?flow=ack', '{"t":"ack","n":999999999}'],
      ['', '{"t":"ack","n":1}'],
    ] as const) {
      const { t, agent } = await sendingTarget();
      const { ws, got } = await connect(t.name, query);
      ws.send(message);
      await waitFor(() => got.closed !== null, 'the close');
      expect(got.closed).toBe(1008);
      expect(got.text.some((m) => JSON.parse(m).code === 'BAD_MESSAGE')).toBe(true);
      agent.ws.close();
    }
  });

  it('rejects an unknown flow mode with 400', async () => {
    const { t, agent } = await sendingTarget();
    const res = await api(`/api/v1/tunnels/${t.name}/connect?flow=turbo`, { key: admin, headers: { upgrade: 'websocket' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('VALIDATION_ERROR');
    agent.ws.close();
  });
});
