// The Worker's side of talking to a device: find its DeviceHub and call an RPC on the agent,
// turning the hub's outcome into the API's errors (DEVICE_OFFLINE 503, DEVICE_TIMEOUT 504).
import type { RpcMethod, RpcParams, RpcResult } from '../../shared/protocol/messages.ts';
import { ApiError } from '../errors.ts';
import { numberVar } from '../env-vars.ts';
import { requireApprovedDevice } from './queries.ts';
import type { HubCallResult } from '../../durable-objects/device-hub.ts';

export const DEFAULT_RPC_TIMEOUT_MS = 10_000;

/** The RPC deadline: RPC_TIMEOUT_MS from the environment, else 10 s. */
export function rpcTimeout(env: Env): number {
  return numberVar(env.RPC_TIMEOUT_MS, DEFAULT_RPC_TIMEOUT_MS, 1);
}

/** Hub ids by device id: idFromName hashes the name, and every tunnel request needs the id. */
const hubIds = new Map<string, DurableObjectId>();
const MAX_HUB_IDS = 10_000;

export function hubFor(env: Env, deviceId: string) {
  let id = hubIds.get(deviceId);
  if (!id) {
    if (hubIds.size >= MAX_HUB_IDS) hubIds.clear();
    hubIds.set(deviceId, (id = env.DEVICE_HUB.idFromName(deviceId)));
  }
  return env.DEVICE_HUB.get(id);
}

export async function callDevice<M extends RpcMethod>(
  env: Env,
  deviceId: string,
  method: M,
  params: RpcParams<M>,
  timeoutMs = rpcTimeout(env),
): Promise<RpcResult<M>> {
  // The stub's inferred type loses `unknown` payloads, so name the shape the hub returns.
  const outcome = (await hubFor(env, deviceId).call(method, params, timeoutMs)) as HubCallResult;
  // The hub validated the agent's result against the same schema; no need to parse it twice.
  if (outcome.ok) return outcome.result as RpcResult<M>;
  const { code, message, details } = outcome.error;
  const extra = { device_id: deviceId, method, ...(details && typeof details === 'object' ? (details as Record<string, unknown>) : {}) };
  if (code === 'DEVICE_OFFLINE') throw new ApiError(503, code, 'Device is offline', extra);
  if (code === 'DEVICE_TIMEOUT') throw new ApiError(504, code, 'Device did not answer in time', extra);
  throw new ApiError(502, code, message, extra);
}

/**
 * callDevice for API routes: only an approved device can hold a socket (revoking or rejecting
 * disconnects it), so D1 is consulted only when the hub says offline, to tell an unknown (404)
 * or unapproved (409) device from an offline one (503). The hot path stays one hop.
 */
export async function callApprovedDevice<M extends RpcMethod>(env: Env, deviceId: string, method: M, params: RpcParams<M>): Promise<RpcResult<M>> {
  try {
    return await callDevice(env, deviceId, method, params);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'DEVICE_OFFLINE') await requireApprovedDevice(env.DB, deviceId);
    throw e;
  }
}
