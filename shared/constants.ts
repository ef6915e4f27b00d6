// Constants both the relay and the agent rely on.
export const AGENT_JWT_AUDIENCE = 'pirelay-agent-connect';
/** Agent connect tokens are accepted for at most this long after they were issued. */
export const AGENT_JWT_MAX_AGE_S = 120;
export const AGENT_CONNECT_PATH = '/agent/connect';
export const ENROLL_PATH = '/api/v1/enroll';
/** Reconnect backoff of the agent. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_CAP_MS = 30_000;
