// A TCP tunnel client that closes its WebSocket (sends a close frame) must get the close answered:
// without the hub's reply the runtime drops the connection and the client sees 1006, an abnormal
// closure, for what was an orderly goodbye. Found by the e2e fuzz (clients of a TCP tunnel that
// close after sending nothing).
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { enrollDevice, waitFor } from './device-helpers.ts';
import { fakeTunnelAgent, makeTunnel, tunnelName } from './tunnels-helpers.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

describe('a TCP tunnel client closing its WebSocket', () => {
  it('gets a close frame back and its stream to the device ends', async () => {
    const { deviceId, privateKey } = await enrollDevice(admin, { autoApprove: true });
    const t = await makeTunnel(admin, deviceId, { name: tunnelName('tcpclose'), kind: 'tcp', target: '127.0.0.1:22' });
    const streams: MuxStream[] = [];
    const agent = await fakeTunnelAgent(deviceId, privateKey, {
      onOpen: (stream) => {
        streams.push(stream);
        stream.accept({});
      },
    });
    const res = await api(`/api/v1/tunnels/${t.name}/connect`, { key: admin, headers: { upgrade: 'websocket' } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
    await waitFor(() => streams.length === 1, 'the stream to the device');
    ws.close(1000, 'bye');
    expect(await closed).toEqual({ code: 1000, reason: expect.any(String) });
    await waitFor(() => agent.mux.size === 0, 'the stream to end');
    agent.ws.close();
  });
});
