// The Worker's side of a device's terminal, shared by the native routes (worker/routes/terminal.ts)
// and PiTunnel's /terminal: making a link (a single-use token for this device, kept by its hub),
// and opening the terminal socket that token is the credential of.
//
// The socket takes no other credential: not Authorization, not the session cookie (so a page
// elsewhere that makes a browser open it gets nothing from the cookie: no CSRF), only a token
// offered as the subprotocol `pirelay-token.<token>` beside `pirelay-terminal`. The token names
// the user and the credential the link was made with; both are read from D1 again when it is
// redeemed, so a link outlives neither a revoked key or session nor a lost permission or team.
import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.ts';
import { audit } from '../audit.ts';
import { clientIpOf } from '../client-ip.ts';
import { principalOf } from '../auth/middleware.ts';
import { permits } from '../auth/permissions.ts';
import { credentialIdOf, principalByCredentialId } from '../auth/principal.ts';
import { assertInTeam, mayActIn, teamRoleFor } from '../auth/scope.ts';
import { ApiError, forbidden, notFound, validationError } from '../errors.ts';
import { isWebSocketUpgrade } from '../tunnels/forward.ts';
import { callApprovedDevice, hubFor } from './hub.ts';
import { requireApprovedDevice } from './queries.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX, TERMINAL_TOKEN_TTL_MS, type TerminalLink } from '../../shared/api/terminal.ts';
import { TERMINAL_SIZE } from '../../shared/protocol/terminal.ts';
import { INTERNAL, type TerminalRequest } from '../../durable-objects/hub/contract.ts';

/** The page a terminal link opens: the dashboard's terminal view, the token in the fragment (never sent to a server). */
export const terminalPath = (deviceId: string) => `/terminal/${encodeURIComponent(deviceId)}`;

/**
 * Codes of a terminal that could not open for the device's sake, not the token's: the token is
 * put back (it keeps its expiry), so a page retrying while the device reboots does not lose it.
 */
const RETRYABLE = new Set(['DEVICE_OFFLINE', 'DEVICE_TIMEOUT', 'TERMINAL_UNAVAILABLE', 'TERMINAL_LIMIT', 'TOO_MANY_VIEWERS']);

const invalidToken = (message = 'The terminal token is missing, unknown, expired or used; get a new link') => new ApiError(401, 'TERMINAL_TOKEN_INVALID', message);

/** A screen dimension in the query string: decimal digits only (the agent clamps what it takes). */
const dimension = z
  .string()
  .regex(/^[0-9]{1,5}$/, 'must be a whole number')
  .transform(Number)
  .pipe(z.number().int().max(65_535));
const SocketQuerySchema = z.object({ cols: dimension.optional(), rows: dimension.optional() });

/**
 * A link to the device's terminal for the caller (already allowed terminal:open on the device's
 * team): the device must be online with a terminal, and `session`, if given, one it keeps.
 * Records terminal.open.
 */
export async function terminalLink(c: Context<AppEnv>, deviceId: string, teamId: string, session?: string): Promise<TerminalLink> {
  const hub = hubFor(c.env, deviceId);
  const status = await hub.status();
  if (!status.online) {
    await requireApprovedDevice(c.env.DB, deviceId);
    throw new ApiError(503, 'DEVICE_OFFLINE', 'Device is offline', { device_id: deviceId });
  }
  // An agent's hello names a module by the RPC methods it serves (agent/capability.ts advertised()).
  if (!status.capabilities.includes('terminal_list')) {
    throw new ApiError(503, 'TERMINAL_UNAVAILABLE', 'The device does not offer a terminal (its agent is older, or the terminal is off)', { device_id: deviceId });
  }
  if (session !== undefined) {
    const { sessions } = await callApprovedDevice(c.env, deviceId, 'terminal_list', {});
    if (!sessions.some((s) => s.id === session)) throw new ApiError(404, 'SESSION_NOT_FOUND', `No terminal session ${session} on this device`, { device_id: deviceId, session });
  }
  const p = principalOf(c);
  const expiresAt = Date.now() + TERMINAL_TOKEN_TTL_MS;
  const token = await hub.issueTerminalToken({
    user: { user_id: p.userId, name: p.username },
    session: session ?? null,
    purpose: 'link',
    credential: { kind: p.kind, id: credentialIdOf(p) },
    expires_at: expiresAt,
  });
  audit(c, { action: 'terminal.open', targetType: 'device', targetId: deviceId, teamId, details: { session: session ?? 'new' } });
  return {
    terminal_url: `${new URL(c.req.url).origin}${terminalPath(deviceId)}#${token}`,
    device_id: deviceId,
    session: session ?? null,
    expires_at: new Date(expiresAt).toISOString(),
  };
}

/** The token offered beside TERMINAL_SUBPROTOCOL in Sec-WebSocket-Protocol, or null. */
export function offeredToken(header: string | undefined): string | null {
  const offered = (header ?? '').split(',').map((p) => p.trim());
  if (!offered.includes(TERMINAL_SUBPROTOCOL)) return null;
  const tokens = offered.filter((p) => p.startsWith(TERMINAL_TOKEN_PROTOCOL_PREFIX)).map((p) => p.slice(TERMINAL_TOKEN_PROTOCOL_PREFIX.length));
  return tokens.length === 1 && /^[A-Za-z0-9_-]{20,128}$/.test(tokens[0]!) ? tokens[0]! : null;
}

/**
 * GET …/terminal/socket: 401 TERMINAL_TOKEN_INVALID unless a live token for this device is offered
 * (it is used up here), then the credential behind it must still be valid (401), hold
 * terminal:open (403) and act in the device's team (404, as for any route); the upgrade then goes
 * to the device's hub, which answers the 101 (with the subprotocol) or the device's refusal.
 */
export async function terminalSocket(c: Context<AppEnv>, deviceId: string): Promise<Response> {
  const token = offeredToken(c.req.header('sec-websocket-protocol'));
  if (!token || !DeviceIdSchema.safeParse(deviceId).success) throw invalidToken();
  // What could fail without the token's fault is checked before it is used up.
  const query = SocketQuerySchema.safeParse(c.req.query());
  if (!query.success) throw validationError('Invalid query', { issues: query.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  if (!isWebSocketUpgrade(c.req.raw.headers)) throw new ApiError(426, 'UPGRADE_REQUIRED', 'The terminal is a WebSocket: send Upgrade: websocket');
  // Read now, not from the per-isolate cache: a device moved a moment ago is in its new team.
  const device = await c.env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(deviceId).first<{ team_id: string }>();
  // An unknown device has no hub worth waking, and no token: the same 401.
  if (!device) throw invalidToken();
  const hub = hubFor(c.env, deviceId);
  const record = await hub.redeemTerminalToken(token);
  if (!record) throw invalidToken();

  const p = await principalByCredentialId(c.env.DB, record.credential, Date.now());
  if (!p || p.userId !== record.user.user_id) throw invalidToken('The key or session this terminal link was made with is no longer valid; get a new link');
  if (!permits(p.permissions, 'terminal:open')) throw forbidden('Insufficient permissions', { required: ['terminal:open'] });
  assertInTeam(p, device.team_id, teamRoleFor('terminal:open'), () => notFound('Device', { device_id: deviceId }));
  const request: TerminalRequest = {
    ...(record.session ? { session: record.session } : {}),
    user: { user_id: p.userId, name: p.username },
    may_share: permits(p.permissions, 'terminal:share') && mayActIn(p, device.team_id, teamRoleFor('terminal:share')),
    cols: query.data.cols ?? TERMINAL_SIZE.defaultCols,
    rows: query.data.rows ?? TERMINAL_SIZE.defaultRows,
    credential: record.credential,
    ip: clientIpOf(c.req.raw, c.env),
  };
  // Only what the hub needs: the visitor's own headers (and anything they smuggled) stay here.
  const res = await hub.fetch('https://device-hub/terminal', {
    headers: { [INTERNAL.kind]: 'terminal', upgrade: 'websocket', [INTERNAL.terminal]: JSON.stringify(request) },
    signal: c.req.raw.signal,
  });
  if (res.status === 101) return res;
  const said = (await res
    .clone()
    .json()
    .catch(() => null)) as { code?: unknown } | null;
  const code = typeof said?.code === 'string' ? said.code : '';
  if (RETRYABLE.has(code)) await hub.restoreTerminalToken(token, record);
  // Offline may mean revoked since: say which, as the other device routes do.
  if (code === 'DEVICE_OFFLINE') await requireApprovedDevice(c.env.DB, deviceId);
  return res;
}
