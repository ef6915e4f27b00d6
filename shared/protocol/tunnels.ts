// Capability "tunnels": the hub pushes the device's tunnel table (`tunnels`), then opens one stream
// per visitor request, WebSocket or TCP connection. An OPEN names a tunnel id only: the agent takes
// the host and port from the table, so a visitor can never pick the target.
import { z } from 'zod';
import { HEAD_LIMITS, HeaderListSchema } from './http-rules.ts';

export const TUNNELS_CAPABILITY = 'tunnels';

/**
 * The kinds of tunnel, defined here once for the API (shared/api/tunnels.ts re-exports it), the D1
 * schema and the agent. Here rather than in the API module, which the agent does not load: its
 * schemas cost an idle agent about 1.4 MB of memory.
 */
export const TUNNEL_KINDS = ['http', 'tcp'] as const;

/** The tunnels this device serves: the agent connects only to these targets. */
export const TunnelTargetSchema = z.object({
  id: z.string().max(64),
  name: z.string().max(63),
  kind: z.enum(TUNNEL_KINDS),
  target_host: z.string().max(255),
  target_port: z.number().int().min(1).max(65535),
});
export type TunnelTarget = z.infer<typeof TunnelTargetSchema>;

/** Hub → agent: the whole table, after hello and whenever it changes. */
export const TunnelsMessageSchema = z.object({ t: z.literal('tunnels'), tunnels: z.array(TunnelTargetSchema).max(1000) });

/** OPEN payloads (JSON) of the stream kinds the hub opens toward the agent. `tunnel` is the tunnel id. */
export const HttpOpenSchema = z.object({ kind: z.literal('http'), tunnel: z.string().max(64), method: z.string().max(16), path: z.string().max(HEAD_LIMITS.path), headers: HeaderListSchema });
export const WebSocketOpenSchema = z.object({ kind: z.literal('websocket'), tunnel: z.string().max(64), path: z.string().max(HEAD_LIMITS.path), headers: HeaderListSchema, protocols: z.array(z.string().max(256)).max(32) });
export const TcpOpenSchema = z.object({ kind: z.literal('tcp'), tunnel: z.string().max(64) });
export type HttpOpen = z.infer<typeof HttpOpenSchema>;
export type WebSocketOpen = z.infer<typeof WebSocketOpenSchema>;
export type TcpOpen = z.infer<typeof TcpOpenSchema>;
export type TunnelOpen = HttpOpen | WebSocketOpen | TcpOpen;

/** What messages.ts assembles: the capability's hub → agent messages and its stream kinds. */
export const tunnelHubMessages = [TunnelsMessageSchema] as const;
export const tunnelStreams = [HttpOpenSchema, WebSocketOpenSchema, TcpOpenSchema] as const;
