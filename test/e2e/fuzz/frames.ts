// Malformed messages a fake agent sends its DeviceHub in the fuzz test: JSON control messages of
// the wrong shape (shared/protocol/messages.ts) and binary stream frames with bad types, flags,
// lengths and stream ids (frames.ts, streams.ts), truncated, oversized, batched wrongly, or
// aimed at the streams the hub really opened for tunnel visitors. Built by hand rather than with
// the codec, which refuses to encode most of them.
import { FRAME_HEADER_BYTES, FrameFlag, FrameType, MAX_FRAME_PAYLOAD } from '../../../shared/protocol/frames.ts';
import { PROTOCOL_VERSION } from '../../../shared/version.ts';
import type { Prng } from './prng.ts';

const enc = new TextEncoder();

export function rawFrame(typeByte: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  out[0] = typeByte & 0xff;
  out[1] = streamId >>> 24;
  out[2] = (streamId >>> 16) & 255;
  out[3] = (streamId >>> 8) & 255;
  out[4] = streamId & 255;
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const json = (v: unknown) => enc.encode(JSON.stringify(v));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

/** A frame the socket carries: text (a control message) or binary (stream frames). */
export type Outgoing = { text: string; note: string } | { binary: Uint8Array; note: string };

export class FrameFuzzer {
  constructor(private readonly r: Prng) {}

  /**
   * `open` are ids of streams the hub opened on this socket lately (their visitors may still
   * wait), `rpcs` ids of RPCs it sent lately (their callers may still wait).
   */
  make(open: readonly number[], rpcs: readonly number[]): Outgoing {
    return this.r.chance(0.35) ? this.control(rpcs) : this.binary(open);
  }

  private control(rpcs: readonly number[]): Outgoing {
    const r = this.r;
    const id = rpcs.length && r.chance(0.5) ? r.pick(rpcs) : r.pick([0, 1, 2, 999_999, -1, 1.5, 2 ** 53, 1e309, '1', null]);
    const choices: [string, () => string][] = [
      ['not json', () => r.pick(['', ' ', '{', 'hello', '{"t":', '\u0000', '\ud800', 'x'.repeat(r.int(1, 5000))])],
      ['json scalar', () => r.pick(['null', 'true', '1', '"t"', '[]', '[{"t":"ping"}]', '1e309'])],
      ['unknown t', () => JSON.stringify({ t: r.pick(['', 'req', 'hello_ack', 'bye', 'tunnels', 'nope', 'PING', null, 1, {}]) })],
      ['res unknown id', () => JSON.stringify({ t: 'res', id, ok: r.chance(0.5), result: r.pick([null, {}, [1], 'x']) })],
      ['res bad error', () => JSON.stringify({ t: 'res', id: r.int(0, 100), ok: false, error: r.pick([null, 'x', { code: 1 }, { code: 'X'.repeat(100), message: 'm' }, { code: 'X', message: 'm'.repeat(5000) }]) })],
      ['res bad result', () => JSON.stringify({ t: 'res', id, ok: true, result: r.pick([null, 'x', [], { cpu: 'hot' }, { hostname: 1, memory: {} }, { processes: [{ pid: 'x' }] }, { processes: Array(3).fill({ pid: 1e309 }) }]) })],
      ['res wrong types', () => JSON.stringify({ t: 'res', id: r.pick(['x', null, [], {}]), ok: r.pick(['yes', 1, null]) })],
      ['hello bad', () => JSON.stringify({ t: 'hello', protocol: r.pick(['1', null, 0, -1, 1.5, 1e309]), agent_version: r.pick([1, null, 'v'.repeat(100)]), capabilities: r.pick(['x', [1], null, Array(100).fill('c')]) })],
      ['hello bad facts', () => JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, agent_version: 'fuzz', capabilities: [], facts: r.pick([null, 'x', { hostname: 1 }, { hostname: 'h'.repeat(300) }, { a: 1 }]), features: r.pick([undefined, ['frame-batch'], 'x', [1]]) })],
      ['unknown fields', () => JSON.stringify({ t: 'ping', __proto__: { polluted: true }, extra: 'x'.repeat(1000) })],
      ['deep json', () => '['.repeat(r.pick([1000, 10_000, 100_000])) + ']'.repeat(r.chance(0.5) ? 0 : 10_000)],
      ['lone surrogates', () => `{"t":"\ud800","id":"\udfff"}`],
      ['ping', () => r.pick(['{"t":"ping"}', '{"t":"pong"}', '{"t":"ping","x":1}'])],
    ];
    const [note, make] = r.chance(0.03) ? (['huge text', () => JSON.stringify({ t: 'res', id, ok: true, result: 'r'.repeat(r.int(1, 3) * 1024 * 1024) })] as const) : r.pick(choices);
    return { text: make(), note: `text ${note}` };
  }

  private binary(open: readonly number[]): Outgoing {
    const r = this.r;
    // A stream the hub opened (even ids), one that never existed, or an edge of the id space.
    const sid = () => (open.length && r.chance(0.6) ? r.pick(open) : r.pick([0, 1, 2, 3, 4, 0xfffffffe, 0xffffffff, r.int(1, 10_000), 0x80000000]));
    const choices: [string, () => Uint8Array][] = [
      ['garbage', () => r.bytes(r.int(0, 64))],
      ['short header', () => r.bytes(r.int(0, FRAME_HEADER_BYTES - 1))],
      ['unknown type', () => rawFrame(r.pick([0, 8, 9, 15, 0x0f, 0x30]), sid(), r.bytes(r.int(0, 16)))],
      ['bad flags', () => rawFrame(r.pick([FrameType.WINDOW, FrameType.CLOSE, FrameType.RESET, FrameType.BATCH]) | r.pick([FrameFlag.FIN, FrameFlag.BODY, 0x20, 0x10]), sid(), r.bytes(4))],
      ['data', () => rawFrame(FrameType.DATA | (r.chance(0.3) ? FrameFlag.FIN : 0), sid(), r.bytes(r.int(0, 4096)))],
      ['window', () => rawFrame(FrameType.WINDOW, sid(), r.pick([u32(0), u32(0xffffffff), u32(0x7fffffff), u32(1), new Uint8Array(3), new Uint8Array(5), new Uint8Array(0)]))],
      ['close', () => rawFrame(FrameType.CLOSE, sid(), r.chance(0.3) ? r.bytes(8) : new Uint8Array(0))],
      ['reset', () => rawFrame(FrameType.RESET, sid(), r.pick([new Uint8Array(0), r.bytes(16), enc.encode('X'.repeat(5000)), new Uint8Array([0xff, 0xfe]), enc.encode('CODE: msg')]))],
      ['accept', () => rawFrame(FrameType.ACCEPT | r.pick([0, FrameFlag.FIN]), sid(), this.acceptJson())],
      ['accept body', () => this.acceptWithBody(sid())],
      ['open from agent', () => rawFrame(FrameType.OPEN | r.pick([0, FrameFlag.FIN]), r.pick([1, 3, 2, 4, 0xffffffff, r.int(1, 1e6)]), r.pick([json({ kind: 'http', tunnel: 'x', method: 'GET', path: '/', headers: [] }), json({ kind: 'tcp' }), enc.encode('{'), r.bytes(32), new Uint8Array(0)]))],
      ['batch', () => this.batch(sid)],
    ];
    // Megabytes each: a few of them are enough, and the hub's time is better spent on the rest.
    const big: typeof choices = [
      ['data flood', () => rawFrame(FrameType.DATA, sid(), new Uint8Array(r.pick([256 * 1024, 512 * 1024, MAX_FRAME_PAYLOAD])))],
      ['oversize', () => rawFrame(r.pick([FrameType.DATA, FrameType.ACCEPT, FrameType.OPEN, FrameType.BATCH]), sid(), new Uint8Array(MAX_FRAME_PAYLOAD + r.int(1, 64 * 1024)))],
    ];
    const [note, make] = r.pick(r.chance(0.04) ? big : choices);
    return { binary: make(), note: `binary ${note}` };
  }

  private acceptJson(): Uint8Array {
    const r = this.r;
    return r.pick([
      json({ status: 200, headers: [['content-type', 'text/plain']] }),
      json({ status: r.pick([99, 600, 1e309, -1, 200.5, '200', null]) }),
      json({ headers: r.pick(['x', [['a']], [[1, 2]], [['a', 'b', 'c']], Array.from({ length: 300 }, (_, i) => [`h${i}`, 'v']), [['x', 'v'.repeat(20_000)]]]) }),
      json({ status: 200, headers: [['content-length', r.pick(['-1', '1e309', 'abc', '99999999999999999999', '5'])], ['transfer-encoding', 'chunked']] }),
      json({ status: 200, headers: [['bad name', 'v'], ['x', 'a\r\nb'], ['', ''], [':status', '200']] }),
      json({ status: 101, protocol: r.pick(['p'.repeat(300), 1, null]) }),
      json({ status: r.pick([204, 304, 101, 100]), headers: [] }),
      enc.encode(r.pick(['', '{', 'null', '[]', '"x"'])),
      r.bytes(r.int(1, 64)),
      new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]),
    ]);
  }

  private acceptWithBody(streamId: number): Uint8Array {
    const r = this.r;
    const head = json({ status: 200, headers: [] });
    const lengths = [head.byteLength, 0, 0xffffffff, head.byteLength + 10, head.byteLength - 1, MAX_FRAME_PAYLOAD];
    const payload = r.pick([
      concat(u32(r.pick(lengths)), head, r.bytes(r.int(0, 1024))),
      concat(u32(head.byteLength), head),
      new Uint8Array(r.int(0, 3)),
      concat(u32(4), enc.encode('nope'), r.bytes(10)),
    ]);
    return rawFrame(FrameType.ACCEPT | FrameFlag.BODY | r.pick([0, FrameFlag.FIN]), streamId, payload);
  }

  private batch(sid: () => number): Uint8Array {
    const r = this.r;
    const entry = (f: Uint8Array) => concat(u32(f.byteLength), f);
    const entries: Uint8Array[] = [];
    for (let k = 0; k < r.int(0, 8); k++) {
      entries.push(
        r.pick([
          entry(rawFrame(FrameType.DATA, sid(), r.bytes(r.int(0, 64)))),
          entry(rawFrame(FrameType.WINDOW, sid(), u32(r.int(0, 1 << 20)))),
          entry(rawFrame(FrameType.BATCH, 0, entry(rawFrame(FrameType.CLOSE, sid())))),
          entry(new Uint8Array(0)),
          entry(r.bytes(3)),
          concat(u32(r.pick([0xffffffff, 1 << 20, 100])), r.bytes(8)),
          r.bytes(r.int(1, 3)),
        ]),
      );
    }
    return rawFrame(FrameType.BATCH, r.chance(0.8) ? 0 : r.int(1, 100), concat(...entries));
  }
}
