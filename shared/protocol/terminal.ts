// Capability "terminal": login shells in real PTYs on the device, kept by the agent as sessions
// that outlive their viewers. The hub opens one `terminal` stream per viewer (its browser's
// WebSocket bridged onto it); the agent fans a session's output out to its viewers, keeps the
// screen's state (so a viewer attaching later sees the screen as it is) and decides who types.
//
// A terminal stream carries records (shared/protocol/ws-records.ts) both ways: BINARY records are
// terminal bytes (the PTY's output toward the viewer; keystrokes toward the agent), TEXT records
// are one JSON control message each (TerminalAgentControl toward the viewer, TerminalViewerControl
// toward the agent). The viewer's WebSocket carries the same thing as binary and text messages.
import { z } from 'zod';

export const TERMINAL_CAPABILITY = 'terminal';

/** Sizes a session may take; a resize outside them is clamped, never refused. */
export const TERMINAL_SIZE = { minCols: 2, maxCols: 500, minRows: 1, maxRows: 200, defaultCols: 80, defaultRows: 24 } as const;
/** How long a session with no viewer keeps running (the agent's --terminal-idle overrides it). */
export const TERMINAL_IDLE_MS = 10 * 60_000;
/** The largest BINARY record either side sends (so no WebSocket message comes near 1 MiB). */
export const TERMINAL_MAX_RECORD = 64 * 1024;
/** Output bytes a viewer may have unacknowledged ({t:"ack"}) before the hub stops reading for it. */
export const TERMINAL_WINDOW = 1 << 20;
/** Sessions one agent keeps at once; one more is refused (TERMINAL_LIMIT). */
export const MAX_TERMINAL_SESSIONS = 16;
/** Viewers one session takes at once; one more is refused (TOO_MANY_VIEWERS). */
export const MAX_TERMINAL_VIEWERS = 8;

export const TerminalSessionIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'a terminal session id');
export const ViewerIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'a viewer id');

/** Who a viewer is, as the Worker vouched for it: the user, and whether they may be handed typing. */
export const TerminalUserSchema = z.object({
  user_id: z.string().min(1).max(64),
  name: z.string().min(1).max(256),
});
export type TerminalUser = z.infer<typeof TerminalUserSchema>;

export const TerminalViewerSchema = TerminalUserSchema.extend({
  /** One attachment (a tab); a user may attach twice. Made by the hub. */
  id: ViewerIdSchema,
  /** Holds terminal:share: may be handed typing by the owner. */
  may_share: z.boolean(),
});
export type TerminalViewer = z.infer<typeof TerminalViewerSchema>;

/** A viewer as a session lists it. */
export const AttachedViewerSchema = TerminalUserSchema.extend({
  id: ViewerIdSchema,
  typing: z.boolean(),
  /** May be handed typing (holds terminal:share), so a page offers the handover only to them. */
  may_share: z.boolean(),
  attached_at: z.number().int().nonnegative(),
});

export const TerminalSessionSchema = z.object({
  id: TerminalSessionIdSchema,
  /** Who started it; they type unless they hand typing over. */
  owner: TerminalUserSchema,
  /** The viewer that types now (null: nobody, until the owner attaches or takes it). */
  typist: AttachedViewerSchema.nullable(),
  viewers: z.array(AttachedViewerSchema).max(MAX_TERMINAL_VIEWERS),
  /** The command line the PTY runs and the account it runs as. */
  command: z.array(z.string().max(4096)).min(1).max(64),
  user: z.string().max(256),
  /** The shell's pid, which leads its process group. */
  pid: z.number().int().positive(),
  cols: z.number().int().positive(),
  rows: z.number().int().positive(),
  created_at: z.number().int().nonnegative(),
  /** When the last viewer left (ms), while nobody watches; null while someone does. */
  idle_since: z.number().int().nonnegative().nullable(),
  /** When an unwatched session will be closed (idle_since + the idle window). */
  closes_at: z.number().int().nonnegative().nullable(),
});
export type TerminalSession = z.infer<typeof TerminalSessionSchema>;

/** Terminal dimensions on the wire: any non-negative integer, clamped to TERMINAL_SIZE by the agent. */
const Dimension = z.number().int().min(0).max(65_535);

/**
 * OPEN of a `terminal` stream (hub → agent): one viewer attaching. Without `session` the agent
 * starts a new session owned by the viewer's user; with one, the viewer joins it (read-only unless
 * it is the owner's and nobody types). The agent ACCEPTs, then sends `attached`, then the screen
 * as it is (one BINARY record that redraws it), then live output. A session that does not exist is
 * refused with ACCEPT status 404 and an error body; a full agent or session with 409.
 */
export const TerminalOpenSchema = z.object({
  kind: z.literal('terminal'),
  session: TerminalSessionIdSchema.optional(),
  viewer: TerminalViewerSchema,
  cols: Dimension,
  rows: Dimension,
});
export type TerminalOpen = z.infer<typeof TerminalOpenSchema>;

/** Control messages from a viewer to the agent (TEXT records; also the viewer's WebSocket text messages). */
export const TerminalViewerControlSchema = z.discriminatedUnion('t', [
  /** The viewer's window changed; only the typist's resize changes the session's size. */
  z.object({ t: z.literal('resize'), cols: Dimension, rows: Dimension }).strict(),
  /** The owner (or the typist) hands typing to another viewer, who must hold terminal:share. */
  z.object({ t: z.literal('handover'), to: ViewerIdSchema }).strict(),
  /** The owner takes typing back. */
  z.object({ t: z.literal('take') }).strict(),
  /** Closes the session (kills its process group) for everyone. */
  z.object({ t: z.literal('close') }).strict(),
]);
export type TerminalViewerControl = z.infer<typeof TerminalViewerControlSchema>;

/** Control messages from the agent to one viewer (TEXT records). */
export const TerminalAgentControlSchema = z.discriminatedUnion('t', [
  /** First message of every attachment: the session, and this viewer's id. */
  z.object({ t: z.literal('attached'), session: TerminalSessionSchema, viewer: ViewerIdSchema, typing: z.boolean() }).strict(),
  /** Who types changed, or who watches: sent to every viewer, with this viewer's own `typing`. */
  z.object({ t: z.literal('session'), session: TerminalSessionSchema, typing: z.boolean() }).strict(),
  /**
   * Sent to the viewer that asked for a handover or take, once it is done (the hub writes the
   * audit entry from it): who typed before, who types now.
   */
  z.object({ t: z.literal('handed_over'), from: TerminalUserSchema.nullable(), to: TerminalUserSchema }).strict(),
  /** The session's size changed (the viewer sizes its own screen to match). */
  z.object({ t: z.literal('size'), cols: z.number().int().positive(), rows: z.number().int().positive() }).strict(),
  /** This viewer did something it may not (typed while read-only, handed over without being the owner…). */
  z.object({ t: z.literal('error'), code: z.string().max(64), message: z.string().max(1024) }).strict(),
  /** The shell ended (or the session was closed); the stream ends after it. */
  z.object({ t: z.literal('exit'), code: z.number().int().nullable(), signal: z.string().max(32).nullable(), reason: z.enum(['exited', 'closed', 'idle']) }).strict(),
]);
export type TerminalAgentControl = z.infer<typeof TerminalAgentControlSchema>;

export const terminalRpc = {
  terminal_list: { params: z.object({}).strict(), result: z.object({ sessions: z.array(TerminalSessionSchema).max(MAX_TERMINAL_SESSIONS) }) },
  /** Closes a session: its whole process group gets SIGHUP, then SIGKILL if it lingers. Error SESSION_NOT_FOUND. */
  terminal_close: { params: z.object({ session: TerminalSessionIdSchema }).strict(), result: z.object({ session: TerminalSessionSchema }) },
} as const;

export const terminalStreams = [TerminalOpenSchema] as const;
