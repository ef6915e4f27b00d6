// Assembly only: the unions of the device socket, built from the envelope and each capability's
// protocol file. A new capability adds its messages, RPC methods and stream kinds here, one entry
// each; nothing else is defined in this file.
import { z } from 'zod';
import { ByeSchema, HelloAckSchema, HelloSchema, PingSchema, PongSchema, RpcRequestSchema, RpcResponseSchema } from './envelope.ts';
import { kvmRpc, kvmStreams } from './kvm.ts';
import { logsAgentMessages, logsHubMessages } from './logs.ts';
import { metricsAgentMessages, metricsHubMessages } from './metrics.ts';
import { systemRpc } from './system.ts';
import { terminalRpc, terminalStreams } from './terminal.ts';
import { tunnelHubMessages, tunnelStreams } from './tunnels.ts';

/** Messages an agent may send to the hub. */
export const AgentMessageSchema = z.discriminatedUnion('t', [HelloSchema, PingSchema, PongSchema, RpcResponseSchema, ...logsAgentMessages, ...metricsAgentMessages]);
export type AgentMessage = z.infer<typeof AgentMessageSchema>;

/** Messages the hub may send to an agent. */
export const HubMessageSchema = z.discriminatedUnion('t', [HelloAckSchema, RpcRequestSchema, PingSchema, PongSchema, ByeSchema, ...tunnelHubMessages, ...logsHubMessages, ...metricsHubMessages]);
export type HubMessage = z.infer<typeof HubMessageSchema>;

/** Every RPC the hub may call on an agent: params are validated by the agent, results by the hub. */
export const RpcMethods = { ...systemRpc, ...kvmRpc, ...terminalRpc } as const;
export type RpcMethod = keyof typeof RpcMethods;
export type RpcParams<M extends RpcMethod> = z.infer<(typeof RpcMethods)[M]['params']>;
export type RpcResult<M extends RpcMethod> = z.infer<(typeof RpcMethods)[M]['result']>;

export function isRpcMethod(name: string): name is RpcMethod {
  return Object.hasOwn(RpcMethods, name);
}

/** OPEN payloads of every stream kind either side may open, by `kind`. */
export const StreamOpenSchema = z.discriminatedUnion('kind', [...tunnelStreams, ...kvmStreams, ...terminalStreams]);
export type StreamOpen = z.infer<typeof StreamOpenSchema>;
