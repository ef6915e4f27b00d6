// The TCP-client WebSocket protocol: how `pirelay tcp` (client/pirelay.ts) and the hub's TCP proxy
// talk over the one WebSocket a local connection rides. Binary messages are raw TCP bytes, both
// ways; text messages are the few below. The relay closes the WebSocket once both sides are done.
import { z } from 'zod';

/** That side half-closed (TCP FIN). A fixed string, so either end can compare it without parsing. */
export const TCP_EOF_MESSAGE = '{"t":"eof"}';
/** The query value (`?flow=ack`) by which a client promises to acknowledge what it delivered. */
export const TCP_FLOW_ACK = 'ack';
/** Bytes the relay sends a `?flow=ack` client beyond what it acknowledged. */
export const TCP_CLIENT_WINDOW = 4 * 1024 * 1024;
/** The most one ack may acknowledge (far above anything the window lets through). */
export const MAX_TCP_ACK_BYTES = 2 ** 31;

/** Client → relay: its half-close, or bytes the local app's socket took (with ?flow=ack). */
export const TcpClientMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('eof') }),
  z.object({ t: z.literal('ack'), n: z.number().int().positive().max(MAX_TCP_ACK_BYTES) }),
]);
export type TcpClientMessage = z.infer<typeof TcpClientMessageSchema>;

/** Relay → client: its half-close, or why the connection failed (a ResetCode, or BAD_MESSAGE for a client message it refused). */
export const TcpRelayMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('eof') }),
  z.object({ t: z.literal('error'), code: z.string().max(64), message: z.string().max(4096) }),
]);
export type TcpRelayMessage = z.infer<typeof TcpRelayMessageSchema>;

/** The ack text for `n` delivered bytes, built without JSON.stringify (it is sent every 256 KiB). */
export function tcpAckMessage(n: number): string {
  return `{"t":"ack","n":${n}}`;
}
