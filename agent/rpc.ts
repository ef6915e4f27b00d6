// Dispatches the hub's RPC requests to handlers. Every request is validated against the shared
// method table before a handler sees it; every failure becomes an error reply, never a crash.
import { RpcMethods, isRpcMethod, type RpcMethod, type RpcParams, type RpcResult } from '../shared/protocol/messages.ts';
import type { RpcError } from '../shared/protocol/envelope.ts';

export type RpcHandlers = { [M in RpcMethod]?: (params: RpcParams<M>) => Promise<RpcResult<M>> | RpcResult<M> };

export type RpcReply = { ok: true; result: unknown } | { ok: false; error: RpcError };

/** A handler's refusal with a code of its own (UNKNOWN_KEY, HID_MISSING…), which the caller may act on. */
export class RpcFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RpcFailure';
  }

  toRpcError(): RpcError {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export async function dispatchRpc(handlers: RpcHandlers, method: string, params: unknown): Promise<RpcReply> {
  if (!isRpcMethod(method)) return { ok: false, error: { code: 'UNKNOWN_METHOD', message: `unknown method ${method}` } };
  const handler = handlers[method] as ((p: unknown) => Promise<unknown> | unknown) | undefined;
  if (!handler) return { ok: false, error: { code: 'UNSUPPORTED_METHOD', message: `this agent does not support ${method}` } };
  const parsed = RpcMethods[method].params.safeParse(params ?? {});
  if (!parsed.success) {
    return {
      ok: false,
      error: { code: 'INVALID_PARAMS', message: `invalid params for ${method}`, details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } },
    };
  }
  try {
    return { ok: true, result: await handler(parsed.data) };
  } catch (e) {
    if (e instanceof RpcFailure) return { ok: false, error: e.toRpcError() };
    return { ok: false, error: { code: 'AGENT_ERROR', message: e instanceof Error ? e.message : String(e) } };
  }
}
