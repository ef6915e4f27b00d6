// The one-frame fast path: OPEN with FIN (a request without a body), and ACCEPT carrying the
// body with FIN (a small complete response). It must be exactly equivalent to the long form.
import { describe, expect, it } from 'bun:test';
import { decodeFrame, encodeFrame, FrameError, FrameFlag, FrameType } from '../../../shared/protocol/frames.ts';
import { MAX_DATA_CHUNK } from '../../../shared/protocol/flow.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { bytes, loopback, readAll, settle } from './helpers.ts';

const GET: StreamOpen = { kind: 'http', tunnel: 't', method: 'GET', path: '/', headers: [] };

describe('FIN and inline bodies', () => {
  it('a GET and its small answer take one frame each way, and both ends free the stream', async () => {
    const l = loopback({ log: true });
    const s = l.hub.open(GET, { fin: true });
    const peer = await l.agentOffers.next();
    expect(await readAll(peer.readable)).toEqual(new Uint8Array(0)); // nothing will come
    const body = bytes(1000, 7);
    peer.accept({ status: 200, headers: [['content-length', '1000']] }, { body, fin: true });
    const head = await s.accepted;
    expect(head.status).toBe(200);
    expect(head.complete).toEqual(body);
    await settle();
    expect(l.log.map((d) => [d.from, d.frame.type, d.frame.flags])).toEqual([
      ['hub', FrameType.OPEN, FrameFlag.FIN],
      ['agent', FrameType.ACCEPT, FrameFlag.FIN | FrameFlag.BODY],
    ]);
    await Promise.all([s.closed, peer.closed]);
    expect(l.hub.size).toBe(0);
    expect(l.agent.size).toBe(0);
    expect(l.hubErrors).toEqual([]);
    expect(l.agentErrors).toEqual([]);
  });

  it('the inline body is also the first chunk of the readable, before later DATA', async () => {
    const l = loopback();
    const s = l.hub.open(GET, { fin: true });
    const peer = await l.agentOffers.next();
    peer.accept({ status: 200 }, { body: new TextEncoder().encode('first,') });
    const w = peer.writable.getWriter();
    await w.write(new TextEncoder().encode('second'));
    await w.close();
    const head = await s.accepted;
    expect(head.complete).toBeUndefined();
    expect(new TextDecoder().decode(await readAll(s.readable))).toBe('first,second');
  });

  it('an empty complete answer is one frame with no body flag', async () => {
    const l = loopback({ log: true });
    const s = l.hub.open(GET, { fin: true });
    const peer = await l.agentOffers.next();
    peer.accept({ status: 204 }, { fin: true });
    expect((await s.accepted).complete).toEqual(new Uint8Array(0));
    await settle();
    expect(l.log.at(-1)!.frame.flags).toBe(FrameFlag.FIN);
  });

  it('writing after FIN fails instead of sending DATA the peer would refuse', async () => {
    const l = loopback();
    const s = l.hub.open(GET, { fin: true });
    const err = await s.writable.getWriter().write(new Uint8Array([1])).then(() => null, (e) => e);
    expect(err?.code).toBe('CLOSED');
  });

  it('bodies over one chunk are refused by accept()', async () => {
    const l = loopback();
    l.hub.open(GET, { fin: true });
    const peer = await l.agentOffers.next();
    expect(() => peer.accept({ status: 200 }, { body: new Uint8Array(MAX_DATA_CHUNK + 1), fin: true })).toThrow(RangeError);
  });

  it('counts the inline body against the stream window: without credit it follows as DATA', async () => {
    const l = loopback();
    const s = l.hub.open(GET, { fin: true });
    const peer = await l.agentOffers.next();
    const w = peer.writable.getWriter();
    // Fill the window with DATA nobody reads, then an "inline" body can no longer ride along:
    // accept() must fall back to queued DATA rather than exceed the credit.
    void w.write(new Uint8Array(256 * 1024));
    w.releaseLock();
    await settle();
    peer.accept({ status: 200 }, { body: new Uint8Array(10), fin: true });
    const head = await s.accepted;
    expect(head.complete).toBeUndefined();
    const all = await readAll(s.readable);
    expect(all.byteLength).toBe(256 * 1024 + 10);
  });
});

describe('frame flags', () => {
  it('round-trip and are refused where they mean nothing', () => {
    const f = decodeFrame(encodeFrame(FrameType.DATA, 3, new Uint8Array([1]), FrameFlag.FIN));
    expect(f.type).toBe(FrameType.DATA);
    expect(f.flags).toBe(FrameFlag.FIN);
    expect(() => encodeFrame(FrameType.WINDOW, 3, new Uint8Array(4), FrameFlag.FIN)).toThrow(FrameError);
    expect(() => decodeFrame(new Uint8Array([FrameType.DATA | FrameFlag.BODY, 0, 0, 0, 1]))).toThrow(FrameError);
    expect(() => decodeFrame(new Uint8Array([FrameType.RESET | 0x10, 0, 0, 0, 1]))).toThrow(FrameError);
  });
});

describe('peerFinished and onReset', () => {
  it('peerFinished is true at once for an OPEN with FIN, and only after the CLOSE otherwise', async () => {
    const l = loopback();
    l.hub.open(GET, { fin: true });
    expect((await l.agentOffers.next()).peerFinished).toBe(true);
    const s = l.hub.open({ ...GET, method: 'POST' });
    const peer = await l.agentOffers.next();
    expect(peer.peerFinished).toBe(false);
    await s.writable.getWriter().close();
    await settle();
    expect(peer.peerFinished).toBe(true);
  });

  it('onReset fires once with the code for a reset, late listeners too, and never for a clean end', async () => {
    const l = loopback();
    const s = l.hub.open(GET);
    const peer = await l.agentOffers.next();
    const seen: string[] = [];
    peer.onReset((e) => seen.push(`first ${e.code}`));
    s.reset('CANCELLED', 'visitor left');
    await settle();
    peer.onReset((e) => seen.push(`late ${e.code}`));
    await settle();
    expect(seen).toEqual(['first CANCELLED', 'late CANCELLED']);

    const clean = l.hub.open(GET, { fin: true });
    const other = await l.agentOffers.next();
    let fired = false;
    other.onReset(() => (fired = true));
    other.accept({ status: 204 }, { fin: true });
    await Promise.all([clean.closed, other.closed]);
    await settle();
    expect(fired).toBe(false);
  });
});
