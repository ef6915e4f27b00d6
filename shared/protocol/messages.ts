// The JSON control messages of the device socket (text frames), as one zod discriminated union
// on `t`, plus the table of RPC methods with their param and result schemas. Both the DeviceHub
// and the agent validate every message with these before acting on it.
import { z } from 'zod';
import { DeviceFactsSchema, DeviceInfoSchema, ProcessListSchema } from '../api/device-info.ts';

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
  capabilities: z.array(z.string().max(64)).max(64),
  facts: DeviceFactsSchema.optional(),
  /** Wire features this agent reads (e.g. `frame-batch`); absent from older agents. */
  features: z.array(z.string().max(64)).max(64).optional(),
});

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

export const RpcResponseSchema = z.union([
  z.object({ t: z.literal('res'), id: z.number().int().nonnegative(), ok: z.literal(true), result: z.unknown() }),
  z.object({ t: z.literal('res'), id: z.number().int().nonnegative(), ok: z.literal(false), error: RpcErrorSchema }),
]);

export const PingSchema = z.object({ t: z.literal('ping') });
export const PongSchema = z.object({ t: z.literal('pong') });
/** The tunnels this device serves: the agent connects only to these targets. */
export const TunnelTargetSchema = z.object({
  id: z.string().max(64),
  name: z.string().max(63),
  kind: z.enum(['http', 'tcp']),
  target_host: z.string().max(255),
  target_port: z.number().int().min(1).max(65535),
});
export type TunnelTarget = z.infer<typeof TunnelTargetSchema>;
export const TunnelsMessageSchema = z.object({ t: z.literal('tunnels'), tunnels: z.array(TunnelTargetSchema).max(1000) });

/** Sent before the hub closes a socket on purpose, so the agent can log why. */
export const ByeSchema = z.object({ t: z.literal('bye'), code: z.string().max(64), reason: z.string().max(1024) });

/** Messages an agent may send to the hub. */
export const AgentMessageSchema = z.discriminatedUnion('t', [
  HelloSchema,
  PingSchema,
  PongSchema,
  z.object({ t: z.literal('res'), id: z.number().int().nonnegative(), ok: z.boolean(), result: z.unknown().optional(), error: RpcErrorSchema.optional() }),
]);
export type AgentMessage = z.infer<typeof AgentMessageSchema>;

/** Messages the hub may send to an agent. */
export const HubMessageSchema = z.discriminatedUnion('t', [HelloAckSchema, RpcRequestSchema, PingSchema, PongSchema, ByeSchema, TunnelsMessageSchema]);
export type HubMessage = z.infer<typeof HubMessageSchema>;

/** Every RPC the hub may call on an agent: params are validated by the agent, results by the hub. */
export const RpcMethods = {
  device_info: { params: z.object({}).strict(), result: DeviceInfoSchema },
  process_list: { params: z.object({}).strict(), result: ProcessListSchema },
  ping: { params: z.object({}).strict(), result: z.object({ now: z.number() }) },
} as const;
export type RpcMethod = keyof typeof RpcMethods;
export type RpcParams<M extends RpcMethod> = z.infer<(typeof RpcMethods)[M]['params']>;
export type RpcResult<M extends RpcMethod> = z.infer<(typeof RpcMethods)[M]['result']>;

export function isRpcMethod(name: string): name is RpcMethod {
  return Object.hasOwn(RpcMethods, name);
}

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
