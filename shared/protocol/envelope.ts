// The envelope of the device socket's JSON control messages (text frames), which every capability
// rides on: hello and its ack, RPC requests and replies, heartbeats, bye. A capability's own
// messages and RPC methods live in its protocol file (system.ts, tunnels.ts); messages.ts
// assembles the unions both the DeviceHub and the agent validate every message with.
import { z } from 'zod';
import { DeviceFactsSchema } from '../api/device-info.ts';

/** Heartbeats are fixed strings so the hub can answer them without waking (auto-response). */
export const HEARTBEAT_PING = '{"t":"ping"}';
export const HEARTBEAT_PONG = '{"t":"pong"}';

export const RpcErrorSchema = z.object({
  code: z.string().max(64),
  message: z.string().max(4096),
  details: z.unknown().optional(),
});
export type RpcError = z.infer<typeof RpcErrorSchema>;

export const HelloSchema = z.object({
  t: z.literal('hello'),
  protocol: z.number().int().positive(),
  agent_version: z.string().max(64),
  /** What this agent serves: derived from its registered capability modules (agent/capabilities.ts). */
  capabilities: z.array(z.string().max(64)).max(64),
  facts: DeviceFactsSchema.optional(),
  /** Wire features this agent reads (e.g. `frame-batch`); absent from older agents. */
  features: z.array(z.string().max(64)).max(64).optional(),
});
export type Hello = z.infer<typeof HelloSchema>;

export const HelloAckSchema = z.object({
  t: z.literal('hello_ack'),
  protocol: z.number().int().positive(),
  device_id: z.string(),
  heartbeat_ms: z.number().int().positive(),
  relay_version: z.string(),
  /** Wire features this relay reads (e.g. `frame-batch`); absent from older relays. */
  features: z.array(z.string().max(64)).max(64).optional(),
});

export const RpcRequestSchema = z.object({
  t: z.literal('req'),
  id: z.number().int().nonnegative(),
  method: z.string().max(64),
  params: z.unknown(),
});

/** The agent's answer to a `req`: the hub checks `result` against the method's schema (messages.ts RpcMethods). */
export const RpcResponseSchema = z.object({
  t: z.literal('res'),
  id: z.number().int().nonnegative(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: RpcErrorSchema.optional(),
});

export const PingSchema = z.object({ t: z.literal('ping') });
export const PongSchema = z.object({ t: z.literal('pong') });

/** Sent before the hub closes a socket on purpose, so the agent can log why. */
export const ByeSchema = z.object({ t: z.literal('bye'), code: z.string().max(64), reason: z.string().max(1024) });

/** Parses a text frame; returns null for anything that is not valid JSON of the given schema. */
export function parseMessage<T extends z.ZodType>(schema: T, text: string): z.infer<T> | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}
