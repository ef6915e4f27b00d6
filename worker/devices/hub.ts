// The Worker's side of talking to a device: find its DeviceHub and call an RPC on the agent,
// turning the hub's outcome into the API's errors (DEVICE_OFFLINE 503, DEVICE_TIMEOUT 504).
import { RpcMethods, type RpcMethod, type RpcParams, type RpcResult } from '../../shared/protocol/messages.ts';
import { ApiError } from '../errors.ts';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { numberVar } from '../../shared/env-vars.ts';
import { DEFAULT_RPC_TIMEOUT_MS } from '../../shared/constants.ts';
import { requireApprovedDevice } from './queries.ts';

/** RpcMethods seen per method, so a result schema looked up by a generic method parses to that method's result type. */
const resultSchemas: { readonly [K in RpcMethod]: { readonly result: z.ZodType<RpcResult<K>> } } = RpcMethods;

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
  const outcome = await hubFor(env, deviceId).call(method, params, timeoutMs);
  // The hub checked the agent's result already; the stub types it as any method's result, and the
  // parse (cheap beside the round trip to the device) narrows it to this method's without a cast.
  if (outcome.ok) {
    const result = resultSchemas[method].result.safeParse(outcome.result);
    if (result.success) return result.data;
    throw new ApiError(502, 'BAD_DEVICE_RESPONSE', `the device's ${method} result did not match the protocol`, { device_id: deviceId, method });
  }
  const { code, message, details } = outcome.error;
  const extra = { device_id: deviceId, method, ...details };
  if (code === 'DEVICE_OFFLINE') throw new ApiError(503, code, 'Device is offline', extra);
  if (code === 'DEVICE_TIMEOUT') throw new ApiError(504, code, 'Device did not answer in time', extra);
  throw agentError(code, message, extra);
}

/**
 * The agent's own error codes that mean more than "the device failed" (502), by the status each
 * stands for: the caller's mistake the Worker could not see (400), a state of the device (409),
 * hardware that is not there (503) or did not take a report in time (504).
 */
export const AGENT_ERROR_STATUS: Readonly<Record<string, ContentfulStatusCode>> = {
  HID_MISSING: 503,
  HID_UNPLUGGED: 503,
  HID_TIMEOUT: 504,
  UNKNOWN_KEY: 400,
  UNKNOWN_LAYOUT: 400,
  UNTYPEABLE_CHARACTER: 400,
  TOO_MANY_KEYS: 409,
  TYPE_BUSY: 409,
  UNKNOWN_TYPE_JOB: 404,
  // More button changes waiting than the gadget can take: try again.
  MOUSE_BUSY: 503,
  PROCESS_NOT_FOUND: 404,
  // pid 1, the agent itself or its parent chain: the agent will not signal them.
  PROCESS_PROTECTED: 403,
  SIGNAL_NOT_ALLOWED: 400,
  // The kernel refused (EPERM): the agent's account may not signal that process.
  SIGNAL_DENIED: 403,
  SESSION_NOT_FOUND: 404,
  TERMINAL_LIMIT: 409,
};

/** What the user is told about a gadget that is not there, beside the agent's own words. */
const GADGET_HINTS: Readonly<Record<string, string>> = {
  HID_MISSING: 'is missing: is the cable connected, and the USB gadget set up?',
  HID_UNPLUGGED: 'is not connected to a host: is the cable connected, and the target computer on?',
  HID_TIMEOUT: 'did not take the report in time: is the target computer reading it (asleep, or still booting)?',
};

/** An agent's error as the API's: its code, with the status of AGENT_ERROR_STATUS (else 502). */
export function agentError(code: string, message: string, details: Record<string, unknown>): ApiError {
  const hint = GADGET_HINTS[code];
  const path = typeof details.path === 'string' ? ` ${details.path}` : '';
  const said = hint ? `The USB gadget${path} ${hint} (${message})` : message;
  return new ApiError(AGENT_ERROR_STATUS[code] ?? 502, code, said, details);
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
