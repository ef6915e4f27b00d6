// What the Worker may send a DeviceHub's fetch, as one schema the hub checks before it acts: the
// hub owns this contract (the Worker imports the names from here), so the two cannot drift. Every
// request names what it is in x-pirelay-kind; a visitor can never set an x-pirelay-* header (the
// Worker strips them all before it adds its own), so these come from the Worker alone.
//
//   tunnel-http   a tunnel visitor the Worker let in: x-pirelay-tunnel-id, and for a plain HTTP
//                 visit x-pirelay-head (the VisitHead as JSON; absent for a WebSocket upgrade,
//                 whose own headers the Worker cleaned).
//   tunnel-tcp    a visitor of a TCP tunnel (a WebSocket upgrade): x-pirelay-tunnel-id.
//   agent         the agent's WebSocket upgrade, after the Worker verified its connect token:
//                 x-pirelay-agent-address (where it connected from). The device is the hub's own
//                 name (ctx.id.name), never a header.
//   watch         a watcher's WebSocket upgrade (already authenticated and authorized by the
//                 Worker): x-pirelay-watch, a WatchRequest as JSON, which names the caller, the
//                 teams they may see and the credential (its id and expiry) they opened it
//                 with. See hub/watchers.ts. The FleetHub takes this one request only, the same
//                 header read by WatchHeaderSchema.
//   screen        a screenshot or the live view, already authorized: x-pirelay-screen, a
//                 ScreenRequest as JSON (the `screen` OPEN without its kind).
//   hid           a viewer's live-input WebSocket upgrade, already authorized; its messages are
//                 checked by the hub (HidInputSchema) before they reach the device.
//   terminal      a terminal viewer's WebSocket upgrade, its token already redeemed and its user
//                 authorized: x-pirelay-terminal, a TerminalRequest as JSON (who, which session).
import { z } from 'zod';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { EventIdSchema, StatusEventSchema } from '../../shared/api/stream.ts';
import { ScreenOpenSchema } from '../../shared/protocol/kvm.ts';
import { TerminalOpenSchema, TerminalUserSchema } from '../../shared/protocol/terminal.ts';

/** Headers the hub reads; a visitor can never set them (every x-pirelay-* is stripped first). */
export const INTERNAL = {
  kind: 'x-pirelay-kind',
  tunnelId: 'x-pirelay-tunnel-id',
  unknownTunnel: 'x-pirelay-unknown-tunnel',
  /** An HTTP visit's VisitHead as JSON (worker/tunnels/forward.ts buildHttpVisit). */
  head: 'x-pirelay-head',
  /** The address an agent's connection came from (for the identity-conflict record). */
  agentAddress: 'x-pirelay-agent-address',
  /** A watcher's WatchRequest as JSON. */
  watch: 'x-pirelay-watch',
  /** A screen request's ScreenRequest as JSON (kind `screen`). */
  screen: 'x-pirelay-screen',
  /** A terminal viewer's TerminalRequest as JSON (kind `terminal`). */
  terminal: 'x-pirelay-terminal',
} as const;

type HeaderList = [string, string][];

/**
 * Checked without copying: this runs for every tunnel request, and a zod array of tuples would
 * rebuild the list the Worker built (the entries are checked, not cloned).
 */
function isHeaderList(v: unknown): v is HeaderList {
  if (!Array.isArray(v) || v.length > 10_000) return false;
  for (const e of v) if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string') return false;
  return true;
}

/** What the hub puts in an HTTP stream's OPEN besides the tunnel: the request line and the headers the target gets. */
export const VisitHeadSchema = z.object({
  method: z.string().min(1).max(64),
  /** Path and query, as the visitor sent them. */
  path: z.string(),
  headers: z.custom<HeaderList>(isHeaderList, 'headers must be a list of [name, value] strings'),
});
export type VisitHead = z.infer<typeof VisitHeadSchema>;

/**
 * A watcher's subscription: its topics (each hub checks them against its own), to resume, the last
 * event id it saw, and who it is: the user, and the teams whose events they may see (null: every
 * team, for an instance admin), as the Worker worked them out; and the credential it was opened
 * with (an API key's or a session's id, so revoking that credential ends it) and when that
 * credential expires (ms; null if it does not), so it does not outlive it. All are required, so
 * a Worker that forgot them gets a 400, never every team's events or a stream without an end.
 */
export const WatchRequestSchema = z
  .object({
    topics: z.array(z.string().min(1).max(64)).min(1).max(8),
    /** The FleetHub filters by device; on a DeviceHub it may only name the hub's own device. */
    agent_id: DeviceIdSchema.nullable().optional(),
    after: EventIdSchema.nullable().optional(),
    teams: z.array(StatusEventSchema.shape.team_id).max(10_000).nullable(),
    user_id: z.string().min(1).max(64),
    credential_id: z.string().min(1).max(64),
    expires_at: z.number().int().nonnegative().nullable(),
  })
  .strict();
export type WatchRequest = z.infer<typeof WatchRequestSchema>;

/**
 * Whose watchers the FleetHub's revoke() closes (every criterion given must match): a user's
 * (their role or account changed, their sessions were ended), those opened with one credential
 * (the API key was revoked, the session logged out), those seeing a team through membership (a
 * member left, the team went, or now requires 2FA), those following a device (it moved to
 * another team).
 */
export const WatcherScopeSchema = z
  .object({
    userId: WatchRequestSchema.shape.user_id.optional(),
    credentialId: WatchRequestSchema.shape.credential_id.optional(),
    teamId: StatusEventSchema.shape.team_id.optional(),
    deviceId: DeviceIdSchema.optional(),
  })
  .strict()
  .refine((s) => s.userId !== undefined || s.credentialId !== undefined || s.teamId !== undefined || s.deviceId !== undefined, 'name a user, a credential, a team or a device');
export type WatcherScope = z.infer<typeof WatcherScopeSchema>;

const TunnelId = z.string().min(1).max(64);

const JsonHeader = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** The x-pirelay-watch header's value (JSON) read as a WatchRequest. */
export const WatchHeaderSchema = JsonHeader(WatchRequestSchema);

/** What the Worker asks of the screen: the `screen` OPEN the hub sends the agent, without its kind. */
export const ScreenRequestSchema = ScreenOpenSchema.omit({ kind: true }).strict();
export type ScreenRequest = z.infer<typeof ScreenRequestSchema>;

/** The credential a terminal link was made with (its kind and id, never itself): the socket lives as long as it does, and the audit log names it. */
export const TerminalCredentialSchema = z.object({ kind: z.enum(['session', 'api_key']), id: z.string().min(1).max(64) }).strict();
export type TerminalCredential = z.infer<typeof TerminalCredentialSchema>;

/**
 * A terminal viewer, as the Worker vouches for it: the user (who redeemed a token for this device
 * and still holds terminal:open on its team), whether they hold terminal:share, the session to
 * attach to (none: start one) and the viewer's screen size; for the audit entries and resume
 * tokens the hub makes, the credential behind the token and the viewer's address. The hub makes
 * the viewer's id.
 */
export const TerminalRequestSchema = z
  .object({
    session: TerminalOpenSchema.shape.session,
    user: TerminalUserSchema,
    may_share: z.boolean(),
    cols: TerminalOpenSchema.shape.cols,
    rows: TerminalOpenSchema.shape.rows,
    credential: TerminalCredentialSchema,
    ip: z.string().max(256),
  })
  .strict();
export type TerminalRequest = z.infer<typeof TerminalRequestSchema>;

/** A terminal token as the hub keeps it (by its hash): who may redeem it, for what, until when. */
export const TerminalTokenRecordSchema = z
  .object({
    user: TerminalUserSchema,
    /** The session it attaches to; null: it starts a new one. */
    session: TerminalOpenSchema.shape.session.nullable(),
    /** `link`: made by GET …/terminal or PiTunnel's /terminal; `resume`: made by the hub for a viewer to re-attach. */
    purpose: z.enum(['link', 'resume']),
    /** The credential the link was made with: redeeming checks it is still valid, and its permissions now. */
    credential: TerminalCredentialSchema,
    expires_at: z.number().int().nonnegative(),
  })
  .strict();
export type TerminalTokenRecord = z.infer<typeof TerminalTokenRecordSchema>;

/** Everything the Worker may send the hub, read from the request's internal headers. */
export const HubRequestSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tunnel-http'), upgrade: z.boolean(), tunnelId: TunnelId, head: JsonHeader(VisitHeadSchema).optional() }),
  z.object({ kind: z.literal('tunnel-tcp'), upgrade: z.boolean(), tunnelId: TunnelId }),
  z.object({ kind: z.literal('agent'), upgrade: z.literal(true), address: z.string().max(256).optional() }),
  z.object({ kind: z.literal('watch'), upgrade: z.literal(true), watch: WatchHeaderSchema }),
  z.object({ kind: z.literal('screen'), upgrade: z.literal(false), screen: JsonHeader(ScreenRequestSchema) }),
  z.object({ kind: z.literal('hid'), upgrade: z.literal(true) }),
  z.object({ kind: z.literal('terminal'), upgrade: z.literal(true), terminal: JsonHeader(TerminalRequestSchema) }),
]);
export type HubRequest = z.infer<typeof HubRequestSchema>;
export type HubRequestKind = HubRequest['kind'];

/** The hub's reading of a request from the Worker, or why it refuses it (a 400 that only a bug in the Worker could cause). */
export function readHubRequest(request: Request): { ok: true; value: HubRequest } | { ok: false; problem: string } {
  const h = request.headers;
  const kind = h.get(INTERNAL.kind);
  const upgrade = h.get('upgrade')?.toLowerCase() === 'websocket';
  // Only the headers of the request's kind are read (a tunnel visit reads what it did before the schema).
  const fields =
    kind === 'tunnel-http' || kind === 'tunnel-tcp'
      ? { kind, upgrade, tunnelId: h.get(INTERNAL.tunnelId) ?? undefined, head: (kind === 'tunnel-http' && !upgrade && h.get(INTERNAL.head)) || undefined }
      : { kind, upgrade, address: h.get(INTERNAL.agentAddress) ?? undefined, watch: h.get(INTERNAL.watch) ?? undefined, screen: h.get(INTERNAL.screen) ?? undefined, terminal: h.get(INTERNAL.terminal) ?? undefined };
  const parsed = HubRequestSchema.safeParse(fields);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, problem: `${issue?.path.join('.') || 'request'}: ${issue?.message ?? 'invalid'}` };
}
