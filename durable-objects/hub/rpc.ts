// RPC to the agent: a request id, a deadline per call, and the agent's result checked against the
// method's schema in RpcMethods before anyone sees it. Errors are values (HubCallResult), since
// classes do not cross Durable Object RPC. What waits here dies with the instance, as the calls
// that wait do.
import { z } from 'zod';
import { RpcMethods, isRpcMethod, type AgentMessage, type RpcMethod, type RpcParams, type RpcResult } from '../../shared/protocol/messages.ts';
import type { RpcError } from '../../shared/protocol/envelope.ts';

// An error's details cross to the Worker as JSON of bounded depth: the stub's typing drops an
// `unknown` (the whole error would vanish from the type) and recurses too deep on a recursive JSON type.
const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const Level1 = z.union([Scalar, z.array(Scalar), z.record(z.string(), Scalar)]);
const Level2 = z.union([Level1, z.array(Level1), z.record(z.string(), Level1)]);
const DetailsSchema = z.record(z.string(), Level2);

/** An RPC error as the Worker gets it: details kept when they are a JSON object at most three levels deep. */
export interface HubCallError {
  code: string;
  message: string;
  details?: z.infer<typeof DetailsSchema>;
}

/** One call's outcome; `result` has the type of `method`'s result schema. */
export type RpcOutcome<M extends RpcMethod> = { ok: true; result: RpcResult<M> } | { ok: false; error: HubCallError };
/** What the Worker gets from the hub's `call` stub method (the result of one of RpcMethods). */
export type HubCallResult = RpcOutcome<RpcMethod>;

type AgentResponse = Extract<AgentMessage, { t: 'res' }>;

interface Pending {
  method: RpcMethod;
  resolve: (r: HubCallResult) => void;
  timer: ReturnType<typeof setTimeout>;
}

const offline = (message: string): { ok: false; error: HubCallError } => ({ ok: false, error: { code: 'DEVICE_OFFLINE', message } });

export class AgentRpc {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** `send` hands a request to the agent's socket (false: there is none, or it is closing). */
  constructor(private readonly send: (id: number, method: RpcMethod, params: unknown) => boolean) {}

  /** Calls `method` on the agent; resolves with its checked result, or an error value at the deadline. */
  call<M extends RpcMethod>(method: M, params: RpcParams<M>, timeoutMs: number): Promise<RpcOutcome<M>>;
  /** The stub's form: a method name from the Worker, checked here. */
  call(method: string, params: unknown, timeoutMs: number): Promise<HubCallResult>;
  call(method: string, params: unknown, timeoutMs: number): Promise<HubCallResult> {
    if (!isRpcMethod(method)) return Promise.resolve({ ok: false, error: { code: 'UNKNOWN_METHOD', message: `no RPC method ${method.slice(0, 64)}` } });
    const id = this.nextId++;
    return new Promise<HubCallResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: { code: 'DEVICE_TIMEOUT', message: `the device did not answer ${method} within ${timeoutMs} ms` } });
      }, timeoutMs);
      this.pending.set(id, { method, resolve, timer });
      if (!this.send(id, method, params)) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(offline('the device is not connected'));
      }
    });
  }

  /** The agent answered: settle the call that waits for it (none: answered after its deadline). */
  answer(msg: AgentResponse): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (!msg.ok) return p.resolve({ ok: false, error: msg.error ? callError(msg.error) : { code: 'DEVICE_ERROR', message: 'the device reported an error' } });
    const parsed = RpcMethods[p.method].result.safeParse(msg.result);
    if (!parsed.success) {
      console.warn(`device answered ${p.method} with an invalid result`, parsed.error.issues.slice(0, 3));
      return p.resolve({ ok: false, error: { code: 'BAD_DEVICE_RESPONSE', message: `the device's ${p.method} result did not match the protocol` } });
    }
    p.resolve({ ok: true, result: parsed.data });
  }

  /** Settles every waiting call with DEVICE_OFFLINE (the socket went away, or was replaced). */
  failAll(message: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve(offline(message));
      this.pending.delete(id);
    }
  }
}

/** The agent's error with its details kept only when they are a JSON object. */
function callError(e: RpcError): HubCallError {
  const details = e.details === undefined ? null : DetailsSchema.safeParse(e.details);
  return details?.success ? { code: e.code, message: e.message, details: details.data } : { code: e.code, message: e.message };
}
