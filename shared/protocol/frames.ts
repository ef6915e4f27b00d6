// The binary frame codec of the device socket: [type u8][streamId u32 BE][payload].
// Text frames carry JSON control messages (messages.ts); binary frames carry streams.
// Web-standard APIs only: this module runs unchanged on workerd, Bun and Deno.

export const FrameType = {
  /** Open a stream; payload is a JSON StreamOpen (messages.ts). */
  OPEN: 1,
  DATA: 2,
  /** Grant more credit; payload is a u32 BE byte count. */
  WINDOW: 3,
  /** Half-close: the sender will send no more data on this stream. */
  CLOSE: 4,
  /** Abort the stream in both directions; payload is an optional UTF-8 reason. */
  RESET: 5,
  /** The opened side's answer to OPEN: payload is a JSON StreamAccept (e.g. an HTTP response head). */
  ACCEPT: 6,
  /**
   * Several small frames in one WebSocket message (stream id 0): the payload is a sequence of
   * [u32 BE length][frame]. Sent only to a peer that said it reads them (hello capability
   * `frame-batch`, hello_ack feature of the same name); a batch never holds another batch.
   */
  BATCH: 7,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/**
 * Flags in the high bits of the type byte (like HTTP/2's END_STREAM): they let the common case of
 * a small request or response travel as one frame instead of three.
 * FIN on OPEN, ACCEPT or DATA: the sender's direction ends with this frame (no CLOSE follows).
 * BODY on ACCEPT: the payload is [u32 BE json length][json][first bytes of the body].
 */
export const FrameFlag = { FIN: 0x80, BODY: 0x40 } as const;
const TYPE_MASK = 0x0f;
const FLAGS_ALLOWED: Record<number, number> = {
  [FrameType.OPEN]: FrameFlag.FIN,
  [FrameType.DATA]: FrameFlag.FIN,
  [FrameType.ACCEPT]: FrameFlag.FIN | FrameFlag.BODY,
};

export const FRAME_HEADER_BYTES = 5;

// Big-endian u32 by hand: a DataView needs the array's .buffer, which under Bun's JavaScriptCore
// turns a fast typed array into a slow one with a buffer object of its own, on every frame.
function putU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 255;
  out[at + 2] = (n >>> 8) & 255;
  out[at + 3] = n & 255;
}

function getU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
/** Well under the 32 MiB Durable Object WebSocket message limit. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;
export const MAX_STREAM_ID = 0xffffffff;

export interface Frame {
  type: FrameType;
  /** FrameFlag bits; 0 for most frames. */
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export function encodeFrame(type: FrameType, streamId: number, payload: Uint8Array = new Uint8Array(0), flags = 0): Uint8Array {
  if (!KNOWN_TYPES.has(type)) throw new FrameError(`unknown frame type ${type}`);
  if (flags & ~(FLAGS_ALLOWED[type] ?? 0)) throw new FrameError(`flags ${flags} are not allowed on frame type ${type}`);
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > MAX_STREAM_ID) throw new FrameError(`bad stream id ${streamId}`);
  if (payload.byteLength > MAX_FRAME_PAYLOAD) throw new FrameError(`payload of ${payload.byteLength} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  out[0] = type | flags;
  putU32(out, 1, streamId);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Bytes of a batch entry's length prefix. */
export const BATCH_ENTRY_HEADER_BYTES = 4;

/** Joins frames into one BATCH frame (see FrameType.BATCH). */
export function encodeBatch(frames: readonly Uint8Array[]): Uint8Array {
  let size = FRAME_HEADER_BYTES;
  for (const f of frames) {
    if (f.byteLength < FRAME_HEADER_BYTES || (f[0]! & TYPE_MASK) === FrameType.BATCH) throw new FrameError('a batch holds whole frames and no batches');
    size += BATCH_ENTRY_HEADER_BYTES + f.byteLength;
  }
  if (size - FRAME_HEADER_BYTES > MAX_FRAME_PAYLOAD) throw new FrameError(`batch of ${size} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const out = new Uint8Array(size);
  out[0] = FrameType.BATCH;
  let at = FRAME_HEADER_BYTES;
  for (const f of frames) {
    putU32(out, at, f.byteLength);
    out.set(f, at + BATCH_ENTRY_HEADER_BYTES);
    at += BATCH_ENTRY_HEADER_BYTES + f.byteLength;
  }
  return out;
}

/** Whether a binary message is a BATCH frame (check before decodeFrame). */
export function isBatch(bytes: Uint8Array): boolean {
  return bytes.byteLength >= FRAME_HEADER_BYTES && bytes[0] === FrameType.BATCH;
}

/**
 * The frames of a BATCH message, as views (no copies). Throws FrameError when the batch is
 * malformed: a stream id other than 0, an entry that overruns the message, a batch in a batch.
 * Frames before the fault have been yielded already, as they would have as separate messages.
 */
export function* batchEntries(bytes: Uint8Array): Generator<Uint8Array> {
  if (!isBatch(bytes)) throw new FrameError('not a batch');
  if (getU32(bytes, 1) !== 0) throw new FrameError('a batch travels on stream 0');
  let at = FRAME_HEADER_BYTES;
  while (at < bytes.byteLength) {
    if (bytes.byteLength - at < BATCH_ENTRY_HEADER_BYTES) throw new FrameError('truncated batch entry length');
    const length = getU32(bytes, at);
    at += BATCH_ENTRY_HEADER_BYTES;
    if (length > bytes.byteLength - at) throw new FrameError(`batch entry of ${length} bytes overruns the message`);
    const frame = bytes.subarray(at, at + length);
    if (length >= 1 && (frame[0]! & TYPE_MASK) === FrameType.BATCH) throw new FrameError('a batch inside a batch');
    at += length;
    yield frame;
  }
}

/** Decodes one frame; throws FrameError on anything malformed. The payload is a view, not a copy. */
export function decodeFrame(data: ArrayBuffer | Uint8Array): Frame {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.byteLength < FRAME_HEADER_BYTES) throw new FrameError(`frame of ${bytes.byteLength} bytes is shorter than its header`);
  const type = bytes[0]! & TYPE_MASK;
  const flags = bytes[0]! & ~TYPE_MASK;
  if (!KNOWN_TYPES.has(type)) throw new FrameError(`unknown frame type ${bytes[0]}`);
  if (flags & ~(FLAGS_ALLOWED[type] ?? 0)) throw new FrameError(`flags ${flags} are not allowed on frame type ${type}`);
  if (bytes.byteLength - FRAME_HEADER_BYTES > MAX_FRAME_PAYLOAD) throw new FrameError('frame payload too large');
  const streamId = getU32(bytes, 1);
  return { type: type as FrameType, flags, streamId, payload: bytes.subarray(FRAME_HEADER_BYTES) };
}
