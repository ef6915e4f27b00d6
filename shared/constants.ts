// Constants both the relay and the agent rely on.
export const AGENT_JWT_AUDIENCE = 'pirelay-agent-connect';
/** Agent connect tokens are accepted for at most this long after they were issued. */
export const AGENT_JWT_MAX_AGE_S = 120;
export const AGENT_CONNECT_PATH = '/agent/connect';
export const ENROLL_PATH = '/api/v1/enroll';
/** Reconnect backoff of the agent. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_CAP_MS = 30_000;
/** How long the relay waits for a device's answer (an RPC, a stream's ACCEPT) unless RPC_TIMEOUT_MS says otherwise. */
export const DEFAULT_RPC_TIMEOUT_MS = 10_000;
