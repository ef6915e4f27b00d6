// The hub's deadline for a target's response head (TUNNEL_ACCEPT_TIMEOUT_MS, 1 s in these tests):
// a target that never answers gets the visitor a 504 and the agent a TARGET_TIMEOUT reset, while
// an upload slower than the deadline is not cut off, since the wait restarts as it makes progress.
import { beforeAll, describe, expect, it } from 'vitest';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { userWithKey } from './helpers.ts';
import { enrollDevice, waitFor } from './device-helpers.ts';
import { fakeTunnelAgent, makeTunnel, tunnelName, visit } from './tunnels-helpers.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

async function tunnelWithAgent(onOpen: (stream: MuxStream) => void) {
  const { deviceId, privateKey } = await enrollDevice(admin, { autoApprove: true });
  const t = await makeTunnel(admin, deviceId, { name: tunnelName('deadline') });
  const agent = await fakeTunnelAgent(deviceId, privateKey, { onOpen });
  return { t, agent };
}

describe('the deadline for a response head', () => {
  it('a target that never answers: 504 for the visitor, TARGET_TIMEOUT for the agent', async () => {
    const resets: string[] = [];
    const { t, agent } = await tunnelWithAgent((stream) => stream.onReset((e) => resets.push(e.code)));
    const started = Date.now();
    const res = await visit(t.name, '/stuck', { headers: { accept: 'application/json' } });
    const waited = Date.now() - started;
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toBe('TARGET_TIMEOUT');
    expect(waited).toBeGreaterThanOrEqual(900);
    await waitFor(() => resets.length === 1, 'the reset at the agent');
    expect(resets).toEqual(['TARGET_TIMEOUT']);
    agent.ws.close();
  });

  it('an upload that takes longer than the deadline still gets its answer', async () => {
    const { t, agent } = await tunnelWithAgent((stream) => {
      void (async () => {
        let received = 0;
        for await (const chunk of stream.readable) received += chunk.byteLength;
        stream.accept({ status: 200, headers: [] }, { body: new TextEncoder().encode(String(received)), fin: true });
      })();
    });
    // 8 pieces, 250 ms apart: about 2 s of upload against a 1 s deadline.
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 8) return controller.close();
        await new Promise((r) => setTimeout(r, 250));
        sent++;
        controller.enqueue(new Uint8Array(1000));
      },
    });
    const started = Date.now();
    const res = await visit(t.name, '/upload', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(Date.now() - started).toBeGreaterThan(1500);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('8000');
    agent.ws.close();
  });
});
