// The stream mux's lifecycle between two real muxes, and its answers to a hand-driven peer:
// open/accept, data both ways, each half-close on its own, resets from either side at any
// point, id allocation, limits, resetAll, and malformed frames that must never throw.
import { describe, expect, it } from 'bun:test';
import { encodeFrame, FrameType, MAX_FRAME_PAYLOAD } from '../../../shared/protocol/frames.ts';
import { INITIAL_WINDOW } from '../../../shared/protocol/flow.ts';
import { StreamMux, StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { bytes, loopback, rawPeer, readAll, settle, text, u32, writeAll } from './helpers.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const HTTP: StreamOpen = { kind: 'http', tunnel: 'tun_1', method: 'GET', path: '/x?y=1', headers: [['accept', 'text/plain']] };
const TCP: StreamOpen = { kind: 'tcp', tunnel: 'tun_2' };

/** The next stream the agent is offered, not yet answered. */
async function offered(l: ReturnType<typeof loopback>): Promise<{ stream: MuxStream; open: StreamOpen }> {
  const stream = await l.agentOffers.next();
  return { stream, open: stream.open! };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('stream lifecycle', () => {
  it('opens, accepts and carries bytes both ways with the open and accept payloads intact', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(HTTP);
    const { stream: peer, open } = await got;
    expect(open).toEqual(HTTP);
    expect(peer.open).toEqual(HTTP);
    expect(s.open).toBeNull();
    expect(peer.id).toBe(s.id);
    peer.accept({ status: 201, headers: [['content-type', 'text/plain']] });
    expect(await s.accepted).toEqual({ status: 201, headers: [['content-type', 'text/plain']] });
    expect(await peer.accepted).toEqual({ status: 201, headers: [['content-type', 'text/plain']] });

    const [toAgent, toHub] = await Promise.all([
      readAll(peer.readable),
      readAll(s.readable),
      writeAll(s.writable, enc.encode('request body')),
      writeAll(peer.writable, enc.encode('response body')),
    ]);
    expect(dec.decode(toAgent)).toBe('request body');
    expect(dec.decode(toHub)).toBe('response body');
    await Promise.all([s.closed, peer.closed]);
    expect(l.hub.size).toBe(0);
    expect(l.agent.size).toBe(0);
    expect(l.hubErrors).toEqual([]);
    expect(l.agentErrors).toEqual([]);
  });

  it('keeps the other direction flowing after the opener half-closes', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(TCP);
    const { stream: peer } = await got;
    peer.accept({});
    await writeAll(s.writable, enc.encode('question'));
    expect(dec.decode(await readAll(peer.readable))).toBe('question');
    // The opener's side is closed, the acceptor's is not: the stream is still alive on both ends.
    expect(l.hub.size).toBe(1);
    expect(l.agent.size).toBe(1);
    const w = peer.writable.getWriter();
    const reader = s.readable.getReader();
    await w.write(enc.encode('answer 1'));
    expect(dec.decode((await reader.read()).value)).toBe('answer 1');
    await w.write(enc.encode('answer 2'));
    expect(dec.decode((await reader.read()).value)).toBe('answer 2');
    await w.close();
    expect((await reader.read()).done).toBe(true);
    await Promise.all([s.closed, peer.closed]);
    expect(l.hub.size + l.agent.size).toBe(0);
  });

  it('keeps the other direction flowing after the acceptor half-closes', async () => {
    const l = loopback();
    const s = l.agent.open(TCP);
    const peer = await l.hubOffers.next();
    peer.accept({});
    await writeAll(peer.writable, enc.encode('early answer'));
    expect(dec.decode(await readAll(s.readable))).toBe('early answer');
    expect(l.hub.size).toBe(1);
    const reader = peer.readable.getReader();
    const w = s.writable.getWriter();
    await w.write(enc.encode('still talking'));
    expect(dec.decode((await reader.read()).value)).toBe('still talking');
    await w.close();
    expect((await reader.read()).done).toBe(true);
    await Promise.all([s.closed, peer.closed]);
    expect(l.hub.size + l.agent.size).toBe(0);
  });

  it('a reset before accept rejects accepted and both directions with the code and message', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(HTTP);
    const { stream: peer } = await got;
    peer.reset('TARGET_REFUSED', 'connect ECONNREFUSED 127.0.0.1:8080');
    const e = await rejection(s.accepted);
    expect(e).toBeInstanceOf(StreamResetError);
    expect((e as StreamResetError).code).toBe('TARGET_REFUSED');
    expect((e as StreamResetError).message).toBe('connect ECONNREFUSED 127.0.0.1:8080');
    expect(((await rejection(readAll(s.readable))) as StreamResetError).code).toBe('TARGET_REFUSED');
    expect(((await rejection(s.writable.getWriter().write(enc.encode('x')))) as StreamResetError).code).toBe('TARGET_REFUSED');
    await s.closed;
    await peer.closed;
    expect(((await rejection(peer.accepted)) as StreamResetError).code).toBe('TARGET_REFUSED');
    expect(l.hub.size + l.agent.size).toBe(0);
    // Accepting after the reset is a harmless race, not an error.
    peer.accept({ status: 200 });
    await settle();
    expect(l.hubErrors).toEqual([]);
  });

  it('a reset after accept, mid-transfer, errors the peer\'s reader and writer', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(TCP);
    const { stream: peer } = await got;
    peer.accept({});
    await s.accepted;
    const reader = peer.readable.getReader();
    const w = s.writable.getWriter();
    await w.write(enc.encode('part 1'));
    expect(dec.decode((await reader.read()).value)).toBe('part 1');
    s.reset('CANCELLED', 'visitor went away');
    const e = (await rejection(reader.read())) as StreamResetError;
    expect(e.code).toBe('CANCELLED');
    expect(e.message).toBe('visitor went away');
    const pw = peer.writable.getWriter();
    expect(((await rejection(pw.write(enc.encode('late')))) as StreamResetError).code).toBe('CANCELLED');
    expect(((await rejection(w.write(enc.encode('after my own reset')))) as StreamResetError).code).toBe('CANCELLED');
    await Promise.all([s.closed, peer.closed]);
    expect(l.hub.size + l.agent.size).toBe(0);
    expect(await s.accepted).toEqual({});
  });

  it('writable.abort() and readable.cancel() reset the stream for the peer', async () => {
    const l = loopback({ agent: { onOpen: (st) => st.accept({}) } });
    const a = l.hub.open(TCP);
    await a.accepted;
    await a.writable.abort(new StreamResetError('TARGET_ERROR', 'disk full'));
    await a.closed;
    const b = l.hub.open(TCP);
    await b.accepted;
    await b.readable.cancel();
    await b.closed;
    await settle();
    expect(l.agent.size).toBe(0);
    expect(l.hub.size).toBe(0);
  });

  it('cancelling a readable the peer already closed does not reset the writing direction', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(TCP);
    const { stream: peer } = await got;
    peer.accept({});
    await writeAll(peer.writable, enc.encode('all of it'));
    await settle();
    await s.readable.cancel();
    await writeAll(s.writable, enc.encode('reply'));
    expect(dec.decode(await readAll(peer.readable))).toBe('reply');
    await Promise.all([s.closed, peer.closed]);
  });

  it('reports a stream closed by both sides without ACCEPT through accepted, not silence', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(TCP);
    const { stream: peer } = await got;
    await Promise.all([s.writable.close(), peer.writable.close()]);
    await Promise.all([s.closed, peer.closed]);
    expect(((await rejection(s.accepted)) as StreamResetError).code).toBe('CLOSED');
  });

  it('refuses a second accept on a live stream and accept on a stream this side opened', async () => {
    const l = loopback();
    const got = offered(l);
    const s = l.hub.open(TCP);
    const { stream: peer } = await got;
    peer.accept({});
    expect(() => peer.accept({})).toThrow('already accepted');
    expect(() => s.accept({})).toThrow();
  });
});

describe('stream ids', () => {
  it('hub ids are even and agent ids odd, without collisions when both open at once', async () => {
    const l = loopback({ mode: 'manual', hub: { onOpen: (s) => s.accept({}) }, agent: { onOpen: (s) => s.accept({}) } });
    const fromHub = Array.from({ length: 100 }, () => l.hub.open(TCP));
    const fromAgent = Array.from({ length: 100 }, () => l.agent.open(TCP));
    expect(fromHub.map((s) => s.id).slice(0, 3)).toEqual([2, 4, 6]);
    expect(fromAgent.map((s) => s.id).slice(0, 3)).toEqual([1, 3, 5]);
    // Both OPEN batches cross on the wire before either side sees the other's.
    l.toAgent.deliver();
    l.toHub.deliver();
    l.toAgent.deliver();
    l.toHub.deliver();
    const infos = await Promise.all([...fromHub, ...fromAgent].map((s) => s.accepted));
    expect(infos.length).toBe(200);
    expect(new Set([...fromHub, ...fromAgent].map((s) => s.id)).size).toBe(200);
    expect(l.hub.size).toBe(200);
    expect(l.agent.size).toBe(200);
    expect(l.hubErrors).toEqual([]);
    expect(l.agentErrors).toEqual([]);
  });

  it('frees ids as streams finish and never reuses one while it is live', async () => {
    const l = loopback({ agent: { onOpen: (s) => s.accept({}) } });
    const live = l.hub.open(TCP);
    const done = l.hub.open(TCP);
    done.reset('CANCELLED');
    await done.closed;
    const next = l.hub.open(TCP);
    expect(next.id).not.toBe(live.id);
    expect(next.id).not.toBe(done.id);
    expect(l.hub.size).toBe(2);
  });
});

describe('limits and resetAll', () => {
  it('open() beyond maxStreams throws STREAM_LIMIT, and the peer refuses OPENs beyond its own', async () => {
    const l = loopback({ hub: { maxStreams: 2 }, agent: { maxStreams: 1, onOpen: (s) => s.accept({}) } });
    const a = l.hub.open(TCP);
    const b = l.hub.open(TCP);
    let thrown: unknown;
    try {
      l.hub.open(TCP);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(StreamResetError);
    expect((thrown as StreamResetError).code).toBe('STREAM_LIMIT');
    await a.accepted;
    expect(((await rejection(b.accepted)) as StreamResetError).code).toBe('STREAM_LIMIT');
    await b.closed;
    expect(l.hub.size).toBe(1);
  });

  it('refuses peer streams with REFUSED when this side has no onOpen', async () => {
    const l = loopback({ hub: { onOpen: undefined } });
    const s = l.agent.open(TCP);
    expect(((await rejection(s.accepted)) as StreamResetError).code).toBe('REFUSED');
    expect(l.hub.size + l.agent.size).toBe(0);
  });

  it('resets a stream whose onOpen throws with INTERNAL_ERROR and reports it', async () => {
    const l = loopback({
      agent: {
        onOpen: () => {
          throw new Error('handler bug');
        },
      },
    });
    const s = l.hub.open(TCP);
    expect(((await rejection(s.accepted)) as StreamResetError).code).toBe('INTERNAL_ERROR');
    expect(l.agentErrors.join('\n')).toContain('handler bug');
  });

  it('resetAll errors every stream with the given code, frees every id, and sends nothing', async () => {
    const l = loopback({ agent: { onOpen: (s) => s.accept({}) } });
    const streams = [l.hub.open(TCP), l.hub.open(HTTP), l.hub.open(TCP)];
    await Promise.all(streams.map((s) => s.accepted));
    const pending = l.hub.open(TCP); // OPEN still in flight: accepted has not settled
    const sentBefore = l.toAgent.sent;
    l.hub.resetAll('SOCKET_CLOSED', 'agent disconnected');
    expect(l.toAgent.sent).toBe(sentBefore);
    expect(l.hub.size).toBe(0);
    for (const s of streams) {
      const e = (await rejection(readAll(s.readable))) as StreamResetError;
      expect(e.code).toBe('SOCKET_CLOSED');
      expect(e.message).toBe('agent disconnected');
      expect(((await rejection(s.writable.getWriter().write(enc.encode('x')))) as StreamResetError).code).toBe('SOCKET_CLOSED');
      await s.closed;
    }
    expect(((await rejection(pending.accepted)) as StreamResetError).code).toBe('SOCKET_CLOSED');
    // The mux stays usable for the next socket.
    const again = l.hub.open(TCP);
    l.agent.resetAll('SOCKET_CLOSED', 'gone');
    await settle();
    expect(await again.accepted).toEqual({});
    expect(l.hubErrors).toEqual([]);
  });

  it('resetAll wakes a writer blocked on credit', async () => {
    const l = loopback({ agent: { onOpen: (s) => s.accept({}) } });
    const s = l.hub.open(TCP);
    const write = s.writable.getWriter().write(bytes(INITIAL_WINDOW * 2, 1));
    await settle();
    l.hub.resetAll('SOCKET_CLOSED', 'gone');
    expect(((await rejection(write)) as StreamResetError).code).toBe('SOCKET_CLOSED');
  });
});

describe('a hand-driven peer', () => {
  it('encodes RESET reasons as "CODE: message" and parses them back', async () => {
    const p = rawPeer({ side: 'agent' });
    p.feed(FrameType.OPEN, 2, JSON.stringify(TCP));
    p.opened[0]!.reset('TARGET_REFUSED', 'no route');
    expect(text(p.sent.at(-1)!)).toBe('TARGET_REFUSED: no route');
    const codes: [string, string, string][] = [
      ['TARGET_TIMEOUT: took too long', 'TARGET_TIMEOUT', 'took too long'],
      ['SOCKET_CLOSED', 'SOCKET_CLOSED', 'SOCKET_CLOSED'],
      ['', 'RESET_BY_PEER', 'RESET_BY_PEER'],
      ['something odd happened', 'RESET_BY_PEER', 'something odd happened'],
    ];
    for (const [reason, code, message] of codes) {
      const s = p.mux.open(TCP);
      p.feed(FrameType.RESET, s.id, reason);
      const e = (await rejection(s.accepted)) as StreamResetError;
      expect([e.code, e.message]).toEqual([code, message]);
    }
    expect(p.errors).toEqual([]);
  });

  it('never throws on malformed frames, reports each, and resets the stream they name', () => {
    const p = rawPeer({ side: 'hub' });
    const s = p.mux.open(TCP);
    const live = () => p.mux.size;
    const resets = () => p.sent.filter((f) => f.type === FrameType.RESET).map((f) => [f.streamId, text(f).split(':')[0]]);

    p.mux.receive(new Uint8Array([2, 0, 0])); // shorter than a header
    p.mux.receive(new ArrayBuffer(0));
    expect(p.errors.length).toBe(2);
    p.mux.receive(new Uint8Array([99, 0, 0, 0, s.id])); // unknown type naming a live stream
    expect(p.errors.length).toBe(3);
    expect(live()).toBe(0);
    expect(resets()).toEqual([[s.id, 'PROTOCOL_ERROR']]);

    p.feed(FrameType.OPEN, 1, '{not json');
    p.feed(FrameType.OPEN, 3, JSON.stringify({ kind: 'ftp', tunnel: 'x' }));
    p.feed(FrameType.OPEN, 5, JSON.stringify({ kind: 'http', tunnel: 'x', method: 'GET', path: '/', headers: 'nope' }));
    expect(p.opened.length).toBe(0);
    expect(resets().slice(1)).toEqual([
      [1, 'PROTOCOL_ERROR'],
      [3, 'PROTOCOL_ERROR'],
      [5, 'PROTOCOL_ERROR'],
    ]);
    expect(p.errors.length).toBe(6);

    const t = p.mux.open(TCP);
    p.feed(FrameType.WINDOW, t.id, new Uint8Array([0, 1])); // WINDOW payload must be 4 bytes
    expect(p.errors.length).toBe(7);
    expect(resets().at(-1)).toEqual([t.id, 'PROTOCOL_ERROR']);

    const u = p.mux.open(TCP);
    p.feed(FrameType.ACCEPT, u.id, '{"status": "two hundred"}');
    expect(p.errors.length).toBe(8);
    expect(resets().at(-1)).toEqual([u.id, 'PROTOCOL_ERROR']);

    p.feed(FrameType.WINDOW, 0, new Uint8Array([1])); // socket WINDOW of the wrong length
    p.feed(FrameType.DATA, 0, 'x'); // only WINDOW is meaningful on stream 0
    expect(p.errors.length).toBe(10);
    expect(p.mux.size).toBe(0);
  });

  it('resets the stream an oversize frame names (DATA or ACCEPT), and the others carry on', async () => {
    const p = rawPeer({ side: 'hub' });
    const victim = p.mux.open(TCP);
    const other = p.mux.open(TCP);
    const victimOutcome = rejection(victim.accepted);
    // A frame header naming the stream, with one byte more payload than any frame may carry.
    const oversize = (type: FrameType, id: number) => {
      const head = encodeFrame(type, id, new Uint8Array(0));
      const frame = new Uint8Array(head.byteLength + MAX_FRAME_PAYLOAD + 1);
      frame.set(head);
      return frame;
    };
    p.mux.receive(oversize(FrameType.ACCEPT, victim.id));
    expect(p.errors).toHaveLength(1);
    expect(p.errors[0]).toContain('too large');
    expect(p.sent.filter((f) => f.type === FrameType.RESET).map((f) => [f.streamId, text(f).split(':')[0]])).toEqual([[victim.id, 'PROTOCOL_ERROR']]);
    expect(((await victimOutcome) as StreamResetError).code).toBe('PROTOCOL_ERROR');

    // The other stream is untouched: accepted, then an oversize DATA resets it too, nothing throws.
    p.feed(FrameType.ACCEPT, other.id, '{}');
    await other.accepted;
    p.mux.receive(oversize(FrameType.DATA, other.id));
    expect(p.sent.filter((f) => f.type === FrameType.RESET).map((f) => f.streamId)).toEqual([victim.id, other.id]);
    expect(p.mux.size).toBe(0);
    // The mux is still usable.
    const next = p.mux.open(TCP);
    p.feed(FrameType.ACCEPT, next.id, '{}');
    await next.accepted;
  });

  it('answers an OPEN with this side\'s parity or a live id with PROTOCOL_ERROR', () => {
    const p = rawPeer({ side: 'hub' });
    p.feed(FrameType.OPEN, 4, JSON.stringify(TCP)); // even ids are the hub's own
    expect(p.opened.length).toBe(0);
    expect(p.sent.map((f) => [f.type, f.streamId, text(f).split(':')[0]])).toEqual([[FrameType.RESET, 4, 'PROTOCOL_ERROR']]);
    p.feed(FrameType.OPEN, 7, JSON.stringify(TCP));
    expect(p.opened.length).toBe(1);
    p.feed(FrameType.OPEN, 7, JSON.stringify(TCP));
    expect(p.opened.length).toBe(1);
    expect(p.sent.at(-1)!.streamId).toBe(7);
    expect(text(p.sent.at(-1)!).startsWith('PROTOCOL_ERROR')).toBe(true);
    expect(p.mux.size).toBe(0);
    expect(p.errors.length).toBe(2);
  });

  it('ignores late frames for a stream it reset, but reports frames for ids never opened', () => {
    const p = rawPeer({ side: 'agent' });
    p.feed(FrameType.OPEN, 2, JSON.stringify(TCP));
    p.opened[0]!.reset('CANCELLED');
    const s = p.mux.open(TCP);
    s.reset('CANCELLED');
    for (const id of [2, s.id]) {
      p.feed(FrameType.DATA, id, 'late');
      p.feed(FrameType.WINDOW, id, u32(10));
      p.feed(FrameType.CLOSE, id);
      p.feed(FrameType.RESET, id, 'CANCELLED');
    }
    p.feed(FrameType.ACCEPT, s.id, '{}');
    expect(p.errors).toEqual([]);
    p.feed(FrameType.DATA, 40, 'never opened by the hub');
    p.feed(FrameType.WINDOW, 99, u32(10)); // an agent id this side never allocated
    p.feed(FrameType.ACCEPT, 33, '{}');
    expect(p.errors.length).toBe(3);
  });

  it('treats DATA after CLOSE, a second CLOSE and a second ACCEPT as protocol errors', () => {
    const p = rawPeer({ side: 'agent' });
    p.feed(FrameType.OPEN, 2, JSON.stringify(TCP));
    p.feed(FrameType.CLOSE, 2);
    p.feed(FrameType.DATA, 2, 'after close');
    expect(text(p.sent.at(-1)!)).toStartWith('PROTOCOL_ERROR');
    p.feed(FrameType.OPEN, 4, JSON.stringify(TCP));
    p.feed(FrameType.CLOSE, 4);
    p.feed(FrameType.CLOSE, 4);
    expect(p.sent.at(-1)!.streamId).toBe(4);
    const s = p.mux.open(TCP);
    p.feed(FrameType.ACCEPT, s.id, '{}');
    p.feed(FrameType.ACCEPT, s.id, '{}');
    expect(p.sent.at(-1)!.streamId).toBe(s.id);
    expect(p.sent.at(-1)!.type).toBe(FrameType.RESET);
    expect(p.errors.length).toBe(3);
    expect(p.mux.size).toBe(0);
  });

  it('grants the extra window of a larger initialWindow at open', () => {
    const p = rawPeer({ side: 'hub', initialWindow: INITIAL_WINDOW * 4 });
    const s = p.mux.open(TCP);
    expect(p.sent.map((f) => f.type)).toEqual([FrameType.OPEN, FrameType.WINDOW]);
    expect(new DataView(p.sent[1]!.payload.buffer, p.sent[1]!.payload.byteOffset).getUint32(0)).toBe(INITIAL_WINDOW * 3);
    // …and accepts DATA up to the larger window.
    for (let i = 0; i < 16; i++) p.feed(FrameType.DATA, s.id, new Uint8Array(64 * 1024));
    expect(p.mux.size).toBe(1);
    p.feed(FrameType.DATA, s.id, new Uint8Array(1));
    expect(p.mux.size).toBe(0);
  });

  it('rejects options it could not honour', () => {
    const t = { send() {} };
    expect(() => new StreamMux(t, { side: 'hub', initialWindow: 1024 })).toThrow(RangeError);
    expect(() => new StreamMux(t, { side: 'hub', maxBufferedBytes: 1024 })).toThrow(RangeError);
    expect(() => new StreamMux(t, { side: 'hub', maxStreams: 0 })).toThrow(RangeError);
  });

  it('a transport that throws is reported, not thrown out of receive()', () => {
    const errors: string[] = [];
    const mux = new StreamMux(
      {
        send() {
          throw new Error('socket is closed');
        },
      },
      { side: 'agent', onError: (m) => errors.push(m), onOpen: (s) => s.accept({}) },
    );
    mux.receive(new Uint8Array([FrameType.OPEN, 0, 0, 0, 2, ...enc.encode(JSON.stringify(TCP))]));
    expect(errors.some((m) => m.includes('socket is closed'))).toBe(true);
    expect(mux.size).toBe(1);
  });
});
