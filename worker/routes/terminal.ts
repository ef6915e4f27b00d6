// The terminal API: a link (GET /api/v1/devices/{id}/terminal, permission terminal:open) with a
// short-lived, single-use token for this device, the terminal socket that token opens (and the
// hub's resume token re-opens), and the sessions the device keeps, listed and closed.
//
// The socket (GET …/terminal/socket) is not an OpenAPI route: its credential is the token alone,
// offered as a subprotocol, so it is declared in worker/auth/raw-routes.ts (worker/devices/terminal.ts
// explains the checks). Audit: getting a link (terminal.open: the session, or "new") and closing a
// session (terminal.close); a handover of typing is recorded by the hub (terminal.handover).
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { allows, onDevice } from '../auth/access.ts';
import { scopedTeam } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { DeviceIdParam, json, security } from '../devices/api-schemas.ts';
import { callApprovedDevice } from '../devices/hub.ts';
import { terminalLink, terminalSocket } from '../devices/terminal.ts';
import { TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX, TERMINAL_TOKEN_TTL_MS, TerminalLinkQuerySchema, TerminalLinkSchema, TerminalSessionListSchema } from '../../shared/api/terminal.ts';
import { TerminalSessionIdSchema, TerminalSessionSchema } from '../../shared/protocol/terminal.ts';

const tags = ['terminal'];
const open = onDevice(allows('terminal:open'));

const TerminalLink = TerminalLinkSchema.openapi('TerminalLink');
const TerminalSession = TerminalSessionSchema.openapi('TerminalSession');
const TerminalSessionList = TerminalSessionListSchema.extend({ sessions: z.array(TerminalSession) }).openapi('TerminalSessionList');

const SessionParams = DeviceIdParam.extend({
  session: TerminalSessionIdSchema.openapi({ param: { name: 'session', in: 'path' }, description: 'A session id, as the session list shows it' }),
});

const terminalErrors = {
  ...authErrors,
  ...notFoundError,
  409: errorResponse('The device is not approved (DEVICE_NOT_APPROVED)'),
  502: errorResponse('The device failed (BAD_DEVICE_RESPONSE)'),
  503: errorResponse('The device is offline (DEVICE_OFFLINE), or does not offer a terminal (TERMINAL_UNAVAILABLE)'),
  504: errorResponse('The device did not answer in time (DEVICE_TIMEOUT)'),
} as const;

/** The socket's route, served here but declared in RAW_ROUTES (its credential is a token, not a relay credential). */
export const TERMINAL_SOCKET_PATTERN = '/api/v1/devices/:id/terminal/socket';

export function registerTerminalRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/terminal',
      tags,
      summary: "A link to the device's terminal (a page with a single-use token), for a new session or one it keeps",
      description:
        `\`terminal_url\` is the relay's terminal page, \`/terminal/{id}#<token>\`: the token is in the fragment, so it never reaches a server log or a Referer. ` +
        `It works once, within ${TERMINAL_TOKEN_TTL_MS / 1000} s, for this device only, as the caller (whose key or session must still be valid, with terminal:open, when it is used). ` +
        'Without `session` it starts a new session owned by the caller; with one, it attaches to it (read-only unless the caller owns it and nobody types). ' +
        `The page opens GET …/terminal/socket with the subprotocols \`${TERMINAL_SUBPROTOCOL}\` and \`${TERMINAL_TOKEN_PROTOCOL_PREFIX}<token>\`.`,
      security,
      ...open,
      request: { params: DeviceIdParam, query: TerminalLinkQuerySchema },
      responses: {
        200: json(TerminalLink, 'The link, and when its token stops working'),
        ...terminalErrors,
        404: errorResponse('No such device (NOT_FOUND), or no such session on it (SESSION_NOT_FOUND)'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json(await terminalLink(c, id, scopedTeam(c), c.req.valid('query').session), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/terminal/sessions',
      tags,
      summary: 'The terminal sessions the device keeps: who owns each, who types, who watches, and when an unwatched one closes',
      security,
      ...open,
      request: { params: DeviceIdParam },
      responses: { 200: json(TerminalSessionList, 'The sessions, read from the device just now'), ...terminalErrors },
    }),
    async (c) => c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'terminal_list', {}), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/devices/{id}/terminal/sessions/{session}',
      tags,
      summary: 'Close a terminal session: its whole process group is ended, and its viewers are told',
      security,
      ...open,
      request: { params: SessionParams },
      responses: {
        200: json(z.object({ session: TerminalSession }).openapi('ClosedTerminalSession'), 'The session as it was when it closed'),
        ...terminalErrors,
        404: errorResponse('No such device (NOT_FOUND), or no such session on it (SESSION_NOT_FOUND)'),
      },
    }),
    async (c) => {
      const { id, session } = c.req.valid('param');
      const closed = await callApprovedDevice(c.env, id, 'terminal_close', { session });
      audit(c, { action: 'terminal.close', targetType: 'device', targetId: id, teamId: scopedTeam(c), details: { session } });
      return c.json(closed, 200);
    },
  );

  app.get(TERMINAL_SOCKET_PATTERN, (c) => terminalSocket(c, c.req.param('id')));
}
