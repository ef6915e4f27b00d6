// Opening a stream toward the agent for a Worker's request, as the kvm (screen, live input) and
// terminal capabilities do: wait briefly for an agent that is reconnecting, open the stream and
// wait for its ACCEPT under the RPC deadline, and turn what went wrong into the API's error — a
// failure before the ACCEPT by its reset code, a device's refusal by its own (checked) code and
// message with only the statuses the capability allows. One place, so every stream kind answers
// a slow, gone or refusing device the same way.
import { errorBody, readErrorBody, ResetCode } from '../../shared/codes.ts';
import { joinBytes } from '../../shared/bytes.ts';
import { DEFAULT_RPC_TIMEOUT_MS } from '../../shared/constants.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { StreamResetError, type MuxStream } from '../../shared/protocol/mux.ts';
import type { Accepted } from '../../shared/protocol/heads.ts';
import type { StreamOpen } from '../../shared/protocol/messages.ts';
import type { HubContext } from './types.ts';

/** How long a request waits for an agent that is saying hello or just went away (a restart). */
const RECONNECT_WAIT_MS = 5_000;
/** The most of a device's error body the hub reads (it re-renders it, never passes it on). */
const MAX_ERROR_BODY = 16 * 1024;

/** The API's error body, never cached. */
export const json = (status: number, code: string, message: string, details: Record<string, unknown> = {}) =>
  Response.json(errorBody(code, message, details), { status, headers: { 'cache-control': 'no-store' } });

/** The ready agent, after a short wait for one that is saying hello or just left (a restart). */
export async function readyAgent(hub: HubContext): Promise<WebSocket | null> {
  const ws = hub.readyAgent();
  if (ws) return ws;
  const goneAt = hub.agentGoneAt();
  const reconnecting = hub.agent() !== null || (goneAt !== null && Date.now() - goneAt < RECONNECT_WAIT_MS);
  return reconnecting ? hub.waitForAgent(RECONNECT_WAIT_MS) : null;
}

/** Opens a stream and waits for its ACCEPT under the RPC deadline; a late one is reset with TARGET_TIMEOUT. */
export async function openAndAccept(hub: HubContext, agent: WebSocket, open: StreamOpen, options?: { fin?: boolean }): Promise<{ stream: MuxStream; head: Accepted }> {
  const stream = hub.openStream(agent, open, options);
  const ms = numberVar(hub.env.RPC_TIMEOUT_MS, DEFAULT_RPC_TIMEOUT_MS, 1);
  const timer = setTimeout(() => stream.reset(ResetCode.TARGET_TIMEOUT, `the device did not answer within ${ms / 1000} s`), ms);
  try {
    return { stream, head: await stream.accepted };
  } catch (e) {
    stream.reset(e instanceof StreamResetError ? e.code : ResetCode.CANCELLED, 'no answer');
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A stream that failed before its ACCEPT: 504 for a slow device, 503 for one that went away, 503
 * `unavailable` for one that refused the kind (an agent without the capability), else 502.
 */
export function streamFailure(e: unknown, unavailable: { code: string; message: string }): Response {
  const err = e instanceof StreamResetError ? e : new StreamResetError(ResetCode.INTERNAL_ERROR, String(e));
  if (err.code === ResetCode.TARGET_TIMEOUT) return json(504, 'DEVICE_TIMEOUT', 'Device did not answer in time');
  if (err.code === ResetCode.SOCKET_CLOSED || err.code === ResetCode.STREAM_LIMIT) return json(503, 'DEVICE_OFFLINE', 'Device is offline');
  if (err.code === ResetCode.REFUSED) return json(503, unavailable.code, unavailable.message);
  return json(502, err.code.slice(0, 64), `The device failed: ${err.message.slice(0, 500)}`);
}

/**
 * A device's error answer (503 NO_SCREEN, 404 SESSION_NOT_FOUND…), re-rendered: its code and
 * message are kept, its status if it is one the capability allows (`statuses`: never 401 or 403,
 * which would tell the client its own credential failed), else 502; nothing else it sent.
 */
export async function deviceError(stream: MuxStream, head: Accepted, status: number, statuses: ReadonlySet<number>): Promise<Response> {
  const body = head.complete ?? (await readSome(stream, MAX_ERROR_BODY));
  stream.readable.cancel().catch(() => {});
  let parsed: ReturnType<typeof readErrorBody> = null;
  try {
    parsed = readErrorBody(JSON.parse(new TextDecoder().decode(body)));
  } catch {
    // not JSON: the status alone speaks
  }
  const code = typeof parsed?.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(parsed.code) ? parsed.code : 'DEVICE_ERROR';
  const message = typeof parsed?.error === 'string' ? parsed.error.slice(0, 1024) : `The device answered ${status}`;
  return json(statuses.has(status) ? status : 502, code, message);
}

/** Up to `max` bytes of a stream's body, within a short wait; what a device sends past that is not read. */
async function readSome(stream: MuxStream, max: number): Promise<Uint8Array> {
  const reader = stream.readable.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  const timer = setTimeout(() => stream.reset(ResetCode.TARGET_TIMEOUT, 'error body too slow'), 2_000);
  try {
    while (size < max) {
      const next = await reader.read();
      if (next.done) break;
      parts.push(next.value);
      size += next.value.byteLength;
    }
  } catch {
    // a reset: what came is what there is
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return joinBytes(parts, size).subarray(0, max);
}
