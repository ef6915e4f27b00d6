// WebSocket records over a stream: every record comes back whole however the bytes are split,
// close records carry code and reason, and a record over the cap is refused before it is buffered.
import { describe, expect, it } from 'bun:test';
import { encodeWsRecord, WsRecordKind, MAX_WS_CLOSE_REASON, WS_RECORD_HEADER_BYTES, WsRecordDecoder, WsRecordError, wsClosePayload, type WsRecord } from '../../../shared/protocol/ws-records.ts';
import { bytes, concat, prng, randInt } from './helpers.ts';

function encode(r: WsRecord): Uint8Array {
  if (r.kind === 'text') return encodeWsRecord(WsRecordKind.TEXT, r.text);
  if (r.kind === 'binary') return encodeWsRecord(WsRecordKind.BINARY, r.data);
  return encodeWsRecord(WsRecordKind.CLOSE, wsClosePayload(r.code, r.reason));
}

function randomRecord(rand: () => number, i: number): WsRecord {
  const k = rand();
  if (k < 0.4) return { kind: 'text', text: `message ${i} ünïcödé ✓ ${'x'.repeat(randInt(rand, 0, 3000))}` };
  if (k < 0.95) return { kind: 'binary', data: bytes(rand() < 0.2 ? randInt(rand, 0, 300_000) : randInt(rand, 0, 200), i) };
  return { kind: 'close', code: randInt(rand, 3000, 4999), reason: `bye ${i}` };
}

/** Splits bytes at random points, including into single bytes and empty chunks. */
function split(rand: () => number, data: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.byteLength; ) {
    const style = rand();
    const n = style < 0.1 ? 0 : style < 0.4 ? randInt(rand, 1, 7) : randInt(rand, 1, 100_000);
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

describe('ws records', () => {
  it('encodes the header as [kind u8][length u32 BE]', () => {
    const r = encodeWsRecord(WsRecordKind.TEXT, 'hé');
    expect([...r]).toEqual([0, 0, 0, 0, 3, 0x68, 0xc3, 0xa9]);
    const c = encodeWsRecord(WsRecordKind.CLOSE, wsClosePayload(4001, 'ok'));
    expect([...c]).toEqual([2, 0, 0, 0, 4, 0x0f, 0xa1, 0x6f, 0x6b]);
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`round-trips random records split at random points (seed ${seed})`, () => {
      const rand = prng(seed);
      const records = Array.from({ length: 200 }, (_, i) => randomRecord(rand, i));
      const wire = concat(records.map(encode));
      const decoder = new WsRecordDecoder();
      const out: WsRecord[] = [];
      for (const chunk of split(rand, wire)) out.push(...decoder.push(chunk));
      expect(out.length).toBe(records.length);
      expect(out).toEqual(records);
      expect(decoder.idle).toBe(true);
    });
  }

  it('round-trips every record when fed one byte at a time', () => {
    const records: WsRecord[] = [
      { kind: 'text', text: '' },
      { kind: 'binary', data: new Uint8Array(0) },
      { kind: 'text', text: '€ and 😀' },
      { kind: 'binary', data: bytes(1000, 1) },
      { kind: 'close', code: 1000, reason: '' },
    ];
    const wire = concat(records.map(encode));
    const decoder = new WsRecordDecoder();
    const out: WsRecord[] = [];
    for (let i = 0; i < wire.byteLength; i++) {
      out.push(...decoder.push(wire.subarray(i, i + 1)));
      if (i < wire.byteLength - 1) expect(out.length).toBeLessThan(records.length);
    }
    expect(out).toEqual(records);
  });

  it('returns a record that arrived whole as a view of the chunk, without copying', () => {
    const wire = encodeWsRecord(WsRecordKind.BINARY, bytes(64, 2));
    const [rec] = new WsRecordDecoder().push(wire);
    expect(rec!.kind).toBe('binary');
    expect((rec as { data: Uint8Array }).data.buffer).toBe(wire.buffer);
  });

  it('reports an empty close payload as 1005 and cuts long reasons at a character boundary', () => {
    const [rec] = new WsRecordDecoder().push(encodeWsRecord(WsRecordKind.CLOSE, new Uint8Array(0)));
    expect(rec).toEqual({ kind: 'close', code: 1005, reason: '' });
    const long = 'é'.repeat(100); // 200 UTF-8 bytes
    const payload = wsClosePayload(4000, long);
    expect(payload.byteLength - 2).toBeLessThanOrEqual(MAX_WS_CLOSE_REASON);
    const [back] = new WsRecordDecoder().push(encodeWsRecord(WsRecordKind.CLOSE, payload));
    expect(back).toEqual({ kind: 'close', code: 4000, reason: 'é'.repeat(61) });
  });

  it('refuses a record over the cap from its header alone, and stays failed', () => {
    const decoder = new WsRecordDecoder(1024);
    const header = new Uint8Array([1, 0, 0, 4, 1]); // binary, 1025 bytes
    expect(() => decoder.push(header)).toThrow(WsRecordError);
    expect(() => decoder.push(header)).toThrow('exceeds the limit of 1024');
    expect(() => decoder.push(new Uint8Array([0, 0, 0, 0, 0]))).toThrow(WsRecordError);
    const big = new WsRecordDecoder();
    expect(() => big.push(new Uint8Array([1, 0xff, 0xff, 0xff, 0xff]))).toThrow('exceeds the limit of 16777216');
    // Exactly at the cap is fine, split or not.
    const atCap = new WsRecordDecoder(1024);
    const rec = encodeWsRecord(WsRecordKind.BINARY, bytes(1024, 3));
    expect(atCap.push(rec.subarray(0, 3)).length).toBe(0);
    expect(atCap.push(rec.subarray(3))[0]!.kind).toBe('binary');
    expect(() => encodeWsRecord(WsRecordKind.BINARY, new Uint8Array(2048), 1024)).toThrow(WsRecordError);
  });

  it('refuses unknown kinds and 1-byte close payloads', () => {
    expect(() => new WsRecordDecoder().push(new Uint8Array([7, 0, 0, 0, 0]))).toThrow('unknown record kind 7');
    expect(() => new WsRecordDecoder().push(new Uint8Array([2, 0, 0, 0, 1, 3]))).toThrow('close record of 1 byte');
    expect(() => encodeWsRecord(9 as WsRecordKind, 'x')).toThrow(WsRecordError);
    expect(() => encodeWsRecord(WsRecordKind.CLOSE, new Uint8Array(1))).toThrow(WsRecordError);
  });

  it('is not idle while a record is half received', () => {
    const d = new WsRecordDecoder();
    const rec = encodeWsRecord(WsRecordKind.TEXT, 'hello');
    d.push(rec.subarray(0, 2));
    expect(d.idle).toBe(false);
    d.push(rec.subarray(2, WS_RECORD_HEADER_BYTES + 1));
    expect(d.idle).toBe(false);
    expect(d.push(rec.subarray(WS_RECORD_HEADER_BYTES + 1))).toEqual([{ kind: 'text', text: 'hello' }]);
    expect(d.idle).toBe(true);
  });
});
