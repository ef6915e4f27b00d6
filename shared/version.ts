// Versions both sides agree on. PROTOCOL_VERSION changes only when the wire changes.
export const PROTOCOL_VERSION = 1;
export const RELAY_VERSION = '0.1.0';
export const AGENT_VERSION = '0.1.0';
