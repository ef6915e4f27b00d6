// SPEC (to be implemented): stream multiplexing over the one device socket.
//
// Streams carry tunnel traffic (HTTP requests, WebSockets, TCP connections) as binary frames
// [type u8][streamId u32][payload] (frames.ts). Either side may open a stream: the hub allocates
// even ids (2, 4, …), the agent odd ids (1, 3, …), so ids never collide. Flow control is
// credit-based per stream (like HTTP/2): a sender never has more unacknowledged DATA bytes in
// flight than the window its peer granted (INITIAL_WINDOW at open, then WINDOW frames as the
// receiver's consumer reads), and the whole socket has a cap too, so one bulk transfer can
// neither exhaust memory nor starve a terminal or a small request.
import { z } from 'zod';

/** Per-stream window each side grants at open. */
export const INITIAL_WINDOW = 256 * 1024;
/** Largest DATA payload; well under the 32 MiB Durable Object message limit. */
export const MAX_DATA_CHUNK = 64 * 1024;
/** At most this many open streams per socket; more OPENs are reset with STREAM_LIMIT. */
export const MAX_STREAMS = 4096;

const Headers = z.array(z.tuple([z.string().max(256), z.string().max(16 * 1024)])).max(256);

/** OPEN payload (JSON). `tunnel` is the tunnel id: the agent looks up the target itself. */
export const StreamOpenSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('http'), tunnel: z.string().max(64), method: z.string().max(16), path: z.string().max(16 * 1024), headers: Headers }),
  z.object({ kind: z.literal('websocket'), tunnel: z.string().max(64), path: z.string().max(16 * 1024), headers: Headers, protocols: z.array(z.string().max(256)).max(32) }),
  z.object({ kind: z.literal('tcp'), tunnel: z.string().max(64) }),
]);
export type StreamOpen = z.infer<typeof StreamOpenSchema>;

/** ACCEPT payload (JSON): an HTTP response head, the WebSocket subprotocol chosen, or {} for tcp. */
export const StreamAcceptSchema = z.object({
  status: z.number().int().min(100).max(599).optional(),
  headers: Headers.optional(),
  protocol: z.string().max(256).optional(),
});
export type StreamAccept = z.infer<typeof StreamAcceptSchema>;

/**
 * WebSocket messages ride a websocket-kind stream as records: [kind u8 (0 text, 1 binary,
 * 2 close)][length u32 BE][payload]; a close record's payload is [code u16 BE][reason UTF-8].
 * Records may be split across DATA frames arbitrarily; the receiver reassembles them.
 */
export const WsRecordKind = { TEXT: 0, BINARY: 1, CLOSE: 2 } as const;
