// The codes both ends of every wire agree on, in one place: close codes of the device socket,
// reset codes of streams, and the error codes and body of the JSON API. The hub, the Worker, the
// agent and the `pirelay` client import them from here instead of repeating string literals, so a
// renamed code is a type error on every side rather than a silent mismatch.
import { z } from 'zod';

/** Close codes of the agent's socket, which both sides understand. */
export const CloseCode = {
  /** Another connection of the same device took over (a restart, or a second agent with this identity). */
  REPLACED: 4000,
  PROTOCOL_ERROR: 4002,
  REVOKED: 4003,
  HEARTBEAT_TIMEOUT: 4008,
} as const;

/**
 * Close codes of a watcher socket (GET /api/v1/stream's WebSocket form, and the socket behind its
 * SSE form). After any of them, a client reconnects with the last event id it saw; after
 * ACCESS_CHANGED it is authorized anew and sees only what it may see now (a revoked credential
 * gets 401); after CREDENTIAL_EXPIRED it needs a credential that is still valid.
 */
export const StreamCloseCode = {
  /** It left more than STREAM_WINDOW events unacknowledged (the WebSocket "try again later"). */
  DROPPED: 1013,
  /** The credential the stream was opened with (session or API key) expired: reconnect with a valid one. */
  CREDENTIAL_EXPIRED: 4001,
  /** The caller's view of the fleet shrank (a team membership, role or team changed, the credential revoked): reconnect. */
  ACCESS_CHANGED: 4003,
} as const;

/**
 * Why a stream ended abnormally (the code of a RESET frame, "CODE: message" on the wire, and of
 * StreamResetError). The peer may send any code; these are the ones the hub and the agent send
 * and act on.
 */
export const ResetCode = {
  // The mux itself.
  /** A RESET without a readable code. */
  RESET_BY_PEER: 'RESET_BY_PEER',
  /** The device socket went away, taking every stream with it. */
  SOCKET_CLOSED: 'SOCKET_CLOSED',
  STREAM_LIMIT: 'STREAM_LIMIT',
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
  FLOW_CONTROL: 'FLOW_CONTROL',
  /** This side takes no streams (or none of this kind). */
  REFUSED: 'REFUSED',
  /** A reader or writer gave up. */
  CANCELLED: 'CANCELLED',
  /** A write after this direction ended, or a stream that closed without ACCEPT. */
  CLOSED: 'CLOSED',
  /** The stream's handler failed. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
  // Tunnels: what the agent found when it tried the target, or why it would not.
  TARGET_ERROR: 'TARGET_ERROR',
  TARGET_REFUSED: 'TARGET_REFUSED',
  TARGET_TIMEOUT: 'TARGET_TIMEOUT',
  BAD_REQUEST: 'BAD_REQUEST',
  UNKNOWN_TUNNEL: 'UNKNOWN_TUNNEL',
  KIND_MISMATCH: 'KIND_MISMATCH',
  TUNNEL_REMOVED: 'TUNNEL_REMOVED',
  TUNNEL_CHANGED: 'TUNNEL_CHANGED',
  /** The hub closed the tunnel's streams (deleted or disabled). */
  TUNNEL_CLOSED: 'TUNNEL_CLOSED',
} as const;
export type ResetCode = (typeof ResetCode)[keyof typeof ResetCode];

/**
 * Error codes of the JSON API that more than one part reads: the generic ones behind the Worker's
 * helpers (worker/errors.ts) and the ones the agent and the client branch on. Routes may use more
 * specific codes; every one travels in ErrorBodySchema.
 */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  VALIDATION_ERROR: 'VALIDATION_ERROR',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  RATE_LIMITED: 'RATE_LIMITED',
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
  /** The device enrolled and waits for approval: the agent keeps trying, quietly. */
  DEVICE_PENDING: 'DEVICE_PENDING',
  /** The device may not connect (revoked, or otherwise not approved). */
  DEVICE_REVOKED: 'DEVICE_REVOKED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error shape of the native API: `{ error, code, details }`. */
export const ErrorBodySchema = z.object({
  error: z.string(),
  code: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** An ErrorBody: what every answer the relay itself gives in JSON carries (Worker, hubs, visitor pages). */
export function errorBody(code: string, message: string, details: Record<string, unknown> = {}): ErrorBody {
  return { error: message, code, details };
}

/** An error body read leniently (a proxy in front of the relay may answer in its own shape): what fits, or null. */
export function readErrorBody(value: unknown): Partial<ErrorBody> | null {
  const parsed = ErrorBodySchema.partial().safeParse(value);
  return parsed.success ? parsed.data : null;
}
