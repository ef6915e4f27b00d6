// The terminal API: a link to open a terminal (GET /api/v1/devices/:id/terminal, PiTunnel's
// /terminal), the sessions a device keeps (listed and closed), and the messages of the terminal's
// WebSocket (GET /api/v1/devices/:id/terminal/socket). The socket carries the terminal protocol
// (shared/protocol/terminal.ts) as binary (terminal bytes) and text (JSON control) messages, plus
// what only the browser and the hub exchange: the viewer's acks and the hub's resume token.
import { z } from 'zod';
import { TerminalAgentControlSchema, TerminalSessionIdSchema, TerminalSessionSchema, TerminalViewerControlSchema } from '../protocol/terminal.ts';

export { TerminalSessionSchema, type TerminalSession } from '../protocol/terminal.ts';

/** How long a terminal link's token may wait to be used (it is single-use). */
export const TERMINAL_TOKEN_TTL_MS = 60_000;
/**
 * The WebSocket subprotocol the terminal socket speaks; the token rides beside it as a second
 * offered subprotocol `pirelay-token.<token>` (browsers cannot set an Authorization header on a
 * WebSocket, and a query string ends up in logs). The relay answers with TERMINAL_SUBPROTOCOL only.
 */
export const TERMINAL_SUBPROTOCOL = 'pirelay-terminal';
export const TERMINAL_TOKEN_PROTOCOL_PREFIX = 'pirelay-token.';

/**
 * Input bytes (and control messages) a viewer may have waiting for a device that is slower than
 * its typing (a paste); past it the socket is closed with TerminalCloseCode.INPUT_OVERFLOW.
 */
export const TERMINAL_INPUT_LIMIT = 1 << 20;

/**
 * How the relay closes a terminal socket, so the page can tell what to do next. A socket that
 * ends any other way (1001, 1006: the network, a relay restart) is a drop: reconnect with the
 * resume token.
 */
export const TerminalCloseCode = {
  /** The session ended (after {t:"exit"}): its shell exited or it was closed. Do not reconnect. */
  ENDED: 1000,
  /** The relay failed, or the device broke the protocol (after {t:"error"}): reconnect. */
  FAILED: 1011,
  /** The viewer sent more than TERMINAL_INPUT_LIMIT the device had not taken yet: reconnect, and send less at once. */
  INPUT_OVERFLOW: 1013,
  /** The device's connection dropped (after {t:"error", code:"DEVICE_OFFLINE"}): the session lives on the device; reconnect with the resume token. */
  DEVICE_OFFLINE: 4503,
} as const;

export const TerminalLinkQuerySchema = z.object({
  /** Attach to this session instead of starting a new one. */
  session: TerminalSessionIdSchema.optional(),
});

/** A terminal link: the page to open, and the token it carries (in the URL's fragment, never sent to a server). */
export const TerminalLinkSchema = z.object({
  terminal_url: z.string().url(),
  device_id: z.string(),
  /** The session it attaches to; null: it starts a new one. */
  session: TerminalSessionIdSchema.nullable(),
  /** When the token stops working if unused (ISO 8601). */
  expires_at: z.string(),
});
export type TerminalLink = z.infer<typeof TerminalLinkSchema>;

export const TerminalSessionListSchema = z.object({ sessions: z.array(TerminalSessionSchema) });

/** What the browser sends: terminal bytes as binary messages; these as text. */
export const TerminalClientMessageSchema = z.union([
  TerminalViewerControlSchema,
  /** Output bytes the page has written to its screen since its last ack. */
  z.object({ t: z.literal('ack'), n: z.number().int().positive().max(1 << 30) }).strict(),
]);
export type TerminalClientMessage = z.infer<typeof TerminalClientMessageSchema>;

/** What the page is sent as text: the agent's control messages, and the hub's own. */
export const TerminalServerMessageSchema = z.union([
  TerminalAgentControlSchema,
  /**
   * Sent by the hub once attached, and again when it is used: a single-use token that re-attaches
   * this viewer to this session after a drop (offered like the link's token). Valid while the
   * session may live (its idle window), for this device, this session and this user only.
   */
  z.object({ t: z.literal('resume'), token: z.string().min(20).max(128), expires_at: z.number().int() }).strict(),
]);
export type TerminalServerMessage = z.infer<typeof TerminalServerMessageSchema>;
