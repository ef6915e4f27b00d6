// The DeviceHub batches the small frames of a turn into one message only for an agent that said in
// its hello that it reads them, tells every agent in hello_ack that it reads them itself, and
// serves visits whose answers came batched. A fake agent on a real hub socket, with its own mux.
import { beforeAll, describe, expect, it } from 'vitest';
import { FRAME_BATCH_FEATURE, FrameBatcher } from '../../shared/protocol/batch.ts';
import { batchEntries, isBatch } from '../../shared/protocol/frames.ts';
import { StreamMux } from '../../shared/protocol/streams.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';
import { userWithKey } from './helpers.ts';
import { agentJwt, connectRequest, enrollDevice, waitFor } from './device-helpers.ts';
import { makeTunnel, tunnelName, visit } from './tunnels-helpers.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

/** An agent that answers every OPEN with a small 200, batching its own frames when `batches`. */
async function fakeTunnelAgent(deviceId: string, privateKey: CryptoKey, features: string[] | undefined) {
  const res = await connectRequest(await agentJwt(deviceId, privateKey));
  const ws = res.webSocket!;
  ws.accept();
  ws.binaryType = 'arraybuffer';
  const text: Record<string, unknown>[] = [];
  const binary: Uint8Array[] = [];
  const batcher = new FrameBatcher({ send: (m) => ws.send(m), schedule: (f) => setTimeout(f, 0) });
  const mux = new StreamMux(batcher, {
    side: 'agent',
    onOpen: (stream) => stream.accept({ status: 200, headers: [['content-type', 'text/plain']] }, { body: new TextEncoder().encode(`stream ${stream.id}`), fin: true }),
  });
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string') {
      const msg = JSON.parse(e.data) as Record<string, unknown>;
      text.push(msg);
      if (msg.t === 'hello_ack') batcher.enabled = features !== undefined && ((msg.features as string[] | undefined) ?? []).includes(FRAME_BATCH_FEATURE);
      return;
    }
    const bytes = new Uint8Array(e.data as ArrayBuffer);
    binary.push(bytes);
    mux.receive(bytes);
  });
  ws.send(JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, agent_version: '0.1.0-test', capabilities: ['tunnels'], ...(features ? { features } : {}) }));
  await waitFor(() => text.some((m) => m.t === 'tunnels'), 'the tunnel table');
  return { ws, text, binary, batcher };
}

async function visitMany(name: string, n: number) {
  const responses = await Promise.all(Array.from({ length: n }, (_, i) => visit(name, `/${i}`)));
  return Promise.all(responses.map(async (r) => ({ status: r.status, body: await r.text() })));
}

describe('frame batching on the device socket', () => {
  it('an agent that reads batches gets concurrent OPENs batched, and its batched answers reach every visitor', async () => {
    const { deviceId: id, privateKey } = await enrollDevice(admin, { autoApprove: true });
    const t = await makeTunnel(admin, id, { name: tunnelName('batch') });
    const agent = await fakeTunnelAgent(id, privateKey, [FRAME_BATCH_FEATURE]);
    expect(agent.text.find((m) => m.t === 'hello_ack')?.features).toEqual([FRAME_BATCH_FEATURE]);
    expect(agent.batcher.enabled).toBe(true);

    const results = await visitMany(t.name, 20);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(results.map((r) => r.body)).size).toBe(20);
    const opens = agent.binary.flatMap((m) => (isBatch(m) ? [...batchEntries(m)] : [m])).filter((f) => (f[0]! & 0x0f) === 1);
    expect(opens).toHaveLength(20);
    expect(agent.binary.some(isBatch)).toBe(true);
    expect(agent.binary.length).toBeLessThan(20);
    agent.ws.close();
  });

  it('an older agent (no features in its hello) gets one frame per message and is still served', async () => {
    const { deviceId: id, privateKey } = await enrollDevice(admin, { autoApprove: true });
    const t = await makeTunnel(admin, id, { name: tunnelName('nobatch') });
    const agent = await fakeTunnelAgent(id, privateKey, undefined);
    expect(agent.batcher.enabled).toBe(false);

    const results = await visitMany(t.name, 20);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(agent.binary).toHaveLength(20);
    expect(agent.binary.some(isBatch)).toBe(false);
    agent.ws.close();
  });
});
