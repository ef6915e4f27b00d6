// A device that sends the hub frames it must not (larger than any frame may be, garbage naming a
// live stream, response headers the runtime refuses) costs that one stream a reset and its visitor
// a 502; the hub and the device socket carry on, and the next visit is served.
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FrameType, MAX_FRAME_PAYLOAD } from '../../shared/protocol/frames.ts';
import { userWithKey } from './helpers.ts';
import { enrollDevice } from './device-helpers.ts';
import { fakeTunnelAgent, makeTunnel, tunnelName, visit } from './tunnels-helpers.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

/** A frame header naming `id`, with one byte more payload than a frame may carry. */
function oversize(type: FrameType, id: number): Uint8Array {
  const head = encodeFrame(type, id, new Uint8Array(0));
  const frame = new Uint8Array(head.byteLength + MAX_FRAME_PAYLOAD + 1);
  frame.set(head);
  return frame;
}

describe('bad frames from a device', () => {
  it('an oversize or malformed answer, or headers the runtime refuses, reset that stream (502 for its visitor); the socket and the next visit are fine', async () => {
    const { deviceId: id, privateKey } = await enrollDevice(admin, { autoApprove: true });
    const t = await makeTunnel(admin, id, { name: tunnelName('badframe') });
    const sends: ((stream: MuxStream) => void)[] = [];
    let ws: WebSocket | null = null;
    const agent = await fakeTunnelAgent(id, privateKey, {
      onOpen: (stream) => {
        const misbehave = sends.shift();
        if (misbehave) return misbehave(stream);
        stream.accept({ status: 200, headers: [['content-type', 'text/plain']] }, { body: new TextEncoder().encode('fine'), fin: true });
      },
    });
    ws = agent.ws;

    sends.push((s) => ws!.send(oversize(FrameType.ACCEPT, s.id)));
    const big = await visit(t.name, '/', { headers: { accept: 'application/json' } });
    expect(big.status).toBe(502);
    expect(((await big.json()) as { code: string }).code).toBe('PROTOCOL_ERROR');

    sends.push((s) => ws!.send(encodeFrame(FrameType.ACCEPT, s.id, new TextEncoder().encode('{"status": "teapot"'))));
    const garbled = await visit(t.name, '/', { headers: { accept: 'application/json' } });
    expect(garbled.status).toBe(502);

    // An oversize DATA after a good head ends that body with an error; it is not delivered. It is
    // sent once the visitor has the head, not right behind the ACCEPT: the workers-test pool may
    // deliver back-to-back agent messages out of order (README, "The two commands"; workers-sdk#13433).
    let cutStream = -1;
    sends.push((s) => {
      cutStream = s.id;
      s.accept({ status: 200, headers: [] });
    });
    const cut = await visit(t.name, '/');
    expect(cut.status).toBe(200);
    ws.send(oversize(FrameType.DATA, cutStream));
    await expect(cut.text()).rejects.toThrow();

    // A header value the runtime refuses (the agent's own client refuses these too) is a 502, not a 500.
    sends.push((s) => s.accept({ status: 200, headers: [['x-bad', 'a\u0000b']] }, { body: new TextEncoder().encode('x'), fin: true }));
    const badHeader = await visit(t.name, '/', { headers: { accept: 'application/json' } });
    expect(badHeader.status).toBe(502);
    expect(((await badHeader.json()) as { code: string }).code).toBe('BAD_TARGET_RESPONSE');
    sends.push((s) => s.accept({ status: 200, headers: [['x-bad', 'a\rb']] }));
    const badStreamed = await visit(t.name, '/', { headers: { accept: 'application/json' } });
    expect(badStreamed.status).toBe(502);

    const ok = await visit(t.name, '/');
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('fine');
    expect(agent.mux.size).toBe(0);
    agent.ws.close();
  });
});
