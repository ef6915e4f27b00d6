// Constants both the relay and the agent rely on.
export const AGENT_JWT_AUDIENCE = 'pirelay-agent-connect';
/** Agent connect tokens are accepted for at most this long after they were issued. */
export const AGENT_JWT_MAX_AGE_S = 120;
export const AGENT_CONNECT_PATH = '/agent/connect';
export const ENROLL_PATH = '/api/v1/enroll';
/** Reconnect backoff of the agent. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_CAP_MS = 30_000;
/** Close codes of the agent's socket, which both sides understand. */
export const CloseCode = {
  /** Another connection of the same device took over (a restart, or a second agent with this identity). */
  REPLACED: 4000,
  PROTOCOL_ERROR: 4002,
  REVOKED: 4003,
  HEARTBEAT_TIMEOUT: 4008,
} as const;
