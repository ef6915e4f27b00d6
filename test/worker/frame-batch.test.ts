// The DeviceHub batches the small frames of a turn into one message only for an agent that said in
// its hello that it reads them, tells every agent in hello_ack that it reads them itself, and
// serves visits whose answers came batched. A fake agent on a real hub socket, with its own mux.
import { beforeAll, describe, expect, it } from 'vitest';
import { FRAME_BATCH_FEATURE } from '../../shared/protocol/batch.ts';
import { batchEntries, isBatch } from '../../shared/protocol/frames.ts';
import { userWithKey } from './helpers.ts';
import { enrollDevice } from './device-helpers.ts';
import { fakeTunnelAgent, makeTunnel, tunnelName, visit } from './tunnels-helpers.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

async function visitMany(name: string, n: number) {
  const responses = await Promise.all(Array.from({ length: n }, (_, i) => visit(name, `/${i}`)));
  return Promise.all(responses.map(async (r) => ({ status: r.status, body: await r.text() })));
}

describe('frame batching on the device socket', () => {
  it('an agent that reads batches gets concurrent OPENs batched, and its batched answers reach every visitor', async () => {
    const { deviceId: id, privateKey } = await enrollDevice(admin, { autoApprove: true });
    const t = await makeTunnel(admin, id, { name: tunnelName('batch') });
    const agent = await fakeTunnelAgent(id, privateKey, { features: [FRAME_BATCH_FEATURE] });
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
    const agent = await fakeTunnelAgent(id, privateKey);
    expect(agent.batcher.enabled).toBe(false);

    const results = await visitMany(t.name, 20);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(agent.binary).toHaveLength(20);
    expect(agent.binary.some(isBatch)).toBe(false);
    agent.ws.close();
  });
});
