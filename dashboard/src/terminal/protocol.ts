// The terminal socket's constants and message types, for the dashboard. The types come from
// shared/api/terminal.ts with `import type`; the two subprotocol strings are copied here because
// that module imports zod, and a value import would put zod in the terminal's chunk
// (test/browser/terminal.test.ts holds these copies against the shared ones).
import type { TerminalClientMessage, TerminalServerMessage, TerminalSession } from '../../../shared/api/terminal.ts';

export type { TerminalClientMessage, TerminalServerMessage, TerminalSession };

/** The subprotocol the terminal socket speaks (shared/api/terminal.ts TERMINAL_SUBPROTOCOL). */
export const TERMINAL_SUBPROTOCOL = 'pirelay-terminal';
/** The token rides as a second offered subprotocol with this prefix (TERMINAL_TOKEN_PROTOCOL_PREFIX). */
export const TERMINAL_TOKEN_PROTOCOL_PREFIX = 'pirelay-token.';

/** Output bytes written to the screen before an ack goes out at once… */
export const ACK_BYTES = 64 * 1024;
/** …or this long after the first unacknowledged write, whichever comes first. */
export const ACK_DELAY_MS = 50;

export type TerminalExit = Extract<TerminalServerMessage, { t: 'exit' }>;

/** The words a person reads for why a session ended. */
export function exitText(e: TerminalExit): string {
  if (e.reason === 'closed') return 'the session was closed';
  if (e.reason === 'idle') return 'the session was closed after nobody watched it for its idle window';
  if (e.signal) return `the shell was ended by ${e.signal}`;
  return e.code === null ? 'the shell exited' : `the shell exited with code ${e.code}`;
}
