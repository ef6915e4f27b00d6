// WebSocket messages over a stream: a stream is a byte pipe, so a tunnelled WebSocket's messages
// (and its close) are framed as records [kind u8][length u32 BE][payload] (WsRecordKind below).
// The decoder reassembles records split across DATA frames at any byte, and refuses
// a record larger than its cap before buffering it, so a peer cannot make it allocate at will.

/**
 * WebSocket messages ride a websocket-kind stream as records: [kind u8 (0 text, 1 binary,
 * 2 close)][length u32 BE][payload]; a close record's payload is [code u16 BE][reason UTF-8].
 * Records may be split across DATA frames arbitrarily; the receiver reassembles them.
 */
export const WsRecordKind = { TEXT: 0, BINARY: 1, CLOSE: 2 } as const;
export type WsRecordKind = (typeof WsRecordKind)[keyof typeof WsRecordKind];

export const WS_RECORD_HEADER_BYTES = 5;
/** Default cap on one record's payload; larger ones are refused by both encoder and decoder. */
export const MAX_WS_RECORD = 16 * 1024 * 1024;
/** A close reason is at most 123 UTF-8 bytes, or WebSocket.close() throws. */
export const MAX_WS_CLOSE_REASON = 123;

export type WsRecord = { kind: 'text'; text: string } | { kind: 'binary'; data: Uint8Array } | { kind: 'close'; code: number; reason: string };

export class WsRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WsRecordError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** The code a close without one reports, as the WebSocket API does. */
const NO_STATUS = 1005;

/** Encodes one record. A close record's payload is wsClosePayload(code, reason); strings are UTF-8. */
export function encodeWsRecord(kind: WsRecordKind, payload: Uint8Array | string, maxRecord = MAX_WS_RECORD): Uint8Array {
  if (kind !== WsRecordKind.TEXT && kind !== WsRecordKind.BINARY && kind !== WsRecordKind.CLOSE) throw new WsRecordError(`unknown record kind ${kind}`);
  const body = typeof payload === 'string' ? encoder.encode(payload) : payload;
  if (body.byteLength > maxRecord) throw new WsRecordError(`record of ${body.byteLength} bytes exceeds the limit of ${maxRecord}`);
  if (kind === WsRecordKind.CLOSE && body.byteLength === 1) throw new WsRecordError('a close payload is empty or starts with a u16 code');
  const out = new Uint8Array(WS_RECORD_HEADER_BYTES + body.byteLength);
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, body.byteLength, false);
  out.set(body, WS_RECORD_HEADER_BYTES);
  return out;
}

/** [code u16 BE][reason UTF-8], the reason cut at a character boundary to fit a WebSocket close. */
export function wsClosePayload(code: number, reason = ''): Uint8Array {
  let text = encoder.encode(reason);
  if (text.byteLength > MAX_WS_CLOSE_REASON) {
    let cut = MAX_WS_CLOSE_REASON;
    while (cut > 0 && (text[cut]! & 0xc0) === 0x80) cut--; // never split a multi-byte character
    text = text.subarray(0, cut);
  }
  const out = new Uint8Array(2 + text.byteLength);
  new DataView(out.buffer).setUint16(0, code, false);
  out.set(text, 2);
  return out;
}

/**
 * Turns the bytes of a stream back into records. A record that arrived whole inside one chunk is
 * returned as a view of that chunk (no copy); only records split across chunks are copied together.
 * After an error the stream is corrupt, so every later push throws the same error.
 */
export class WsRecordDecoder {
  private readonly header = new Uint8Array(WS_RECORD_HEADER_BYTES);
  private headerFill = 0;
  private kind = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private failed: WsRecordError | null = null;

  constructor(private readonly maxRecord = MAX_WS_RECORD) {}

  /** True when no partial record is buffered, so the stream may cleanly end here. */
  get idle(): boolean {
    return this.headerFill === 0 && this.body === null;
  }

  push(chunk: Uint8Array): WsRecord[] {
    if (this.failed) throw this.failed;
    try {
      return this.decode(chunk);
    } catch (e) {
      this.failed = e instanceof WsRecordError ? e : new WsRecordError(String(e));
      throw this.failed;
    }
  }

  private decode(chunk: Uint8Array): WsRecord[] {
    const out: WsRecord[] = [];
    const end = chunk.byteLength;
    let pos = 0;
    while (pos < end) {
      if (this.body) {
        const take = Math.min(this.body.byteLength - this.bodyFill, end - pos);
        this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
        this.bodyFill += take;
        pos += take;
        if (this.bodyFill === this.body.byteLength) {
          out.push(toRecord(this.kind, this.body));
          this.body = null;
        }
        continue;
      }
      let length: number;
      if (this.headerFill === 0 && end - pos >= WS_RECORD_HEADER_BYTES) {
        this.kind = chunk[pos]!;
        length = readU32(chunk, pos + 1);
        pos += WS_RECORD_HEADER_BYTES;
      } else {
        const take = Math.min(WS_RECORD_HEADER_BYTES - this.headerFill, end - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < WS_RECORD_HEADER_BYTES) break;
        this.headerFill = 0;
        this.kind = this.header[0]!;
        length = readU32(this.header, 1);
      }
      this.check(length);
      if (end - pos >= length) {
        out.push(toRecord(this.kind, chunk.subarray(pos, pos + length)));
        pos += length;
      } else {
        this.body = new Uint8Array(length);
        this.bodyFill = 0;
      }
    }
    return out;
  }

  private check(length: number): void {
    if (this.kind > WsRecordKind.CLOSE) throw new WsRecordError(`unknown record kind ${this.kind}`);
    if (length > this.maxRecord) throw new WsRecordError(`record of ${length} bytes exceeds the limit of ${this.maxRecord}`);
    if (this.kind === WsRecordKind.CLOSE && length === 1) throw new WsRecordError('close record of 1 byte');
  }
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function toRecord(kind: number, payload: Uint8Array): WsRecord {
  if (kind === WsRecordKind.TEXT) return { kind: 'text', text: decoder.decode(payload) };
  if (kind === WsRecordKind.BINARY) return { kind: 'binary', data: payload };
  if (payload.byteLength === 0) return { kind: 'close', code: NO_STATUS, reason: '' };
  return { kind: 'close', code: (payload[0]! << 8) | payload[1]!, reason: decoder.decode(payload.subarray(2)) };
}
