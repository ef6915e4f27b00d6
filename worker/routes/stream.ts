// GET /api/v1/stream: live events of the fleet, as Tyto documents it (`event: status` whenever a
// device goes online or offline, for one device with `agent_id=` or all the caller may see).
// As Server-Sent Events, the Worker holds a watcher socket to the FleetHub and turns its messages
// into SSE (worker/stream/sse.ts); with `Upgrade: websocket` the client's own socket is handed to
// the FleetHub (the dashboard's form, JSON messages of shared/api/stream.ts; the client acks what
// it has handled, and one that leaves more than STREAM_WINDOW unacked is dropped). Every event has an
// id; Last-Event-ID (or ?last_event_id=, for clients that cannot set it) resumes after it within
// the hub's replay window. Credentials as for every route, or ?api_key= for browsers' EventSource
// and WebSocket, which cannot set headers.
// A caller sees the events of the devices in the teams they may see (worker/auth/scope.ts): the
// Worker sends the hub those teams with the watch, and the hub filters each event by its team_id.
// When someone's access shrinks or their credential is revoked, worker/stream/revoke.ts closes
// their streams; the reconnect is authorized anew, with the caller read from D1 rather than the
// principal cache (see freshCaller). A stream ends when its credential expires: the hub closes
// the socket (CREDENTIAL_EXPIRED), and the SSE bridge ends at that time by itself too.
import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { after, allows } from '../auth/access.ts';
import { principalFor, principalOf, requestCredential } from '../auth/middleware.ts';
import { credentialIdOf } from '../auth/principal.ts';
import { authorizeDevice, visibleTeams } from '../auth/scope.ts';
import { ApiError } from '../errors.ts';
import { security } from '../devices/api-schemas.ts';
import { isWebSocketUpgrade } from '../tunnels/forward.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { EventIdSchema, STREAM_WINDOW } from '../../shared/api/stream.ts';
import { StreamCloseCode } from '../../shared/codes.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { INTERNAL, type WatchRequest } from '../../durable-objects/hub/contract.ts';
import { sseFromWatcher } from '../stream/sse.ts';

/** How long an SSE client waits before reconnecting after the stream ends. */
const RETRY_MS = 2_000;

/**
 * Authenticates the stream's caller from D1, not the per-isolate principal cache: a stream outlives
 * the cache's few seconds, so a caller whose stream was just closed for losing a team could
 * otherwise reconnect through an isolate that still holds their old teams, and keep them for as
 * long as the stream lasts. One query per stream opened, none per event. The credential is found
 * as for every route (requestCredential), with ?api_key= standing in for a missing Authorization.
 */
export const freshCaller: MiddlewareHandler<AppEnv> = async (c, next) => {
  const credential = requestCredential(c, c.req.query('api_key'));
  if (credential) c.set('principal', await principalFor(c.env, c.executionCtx, credential, Date.now(), { fresh: true }));
  await next();
};

const StreamQuery = z.object({
  agent_id: DeviceIdSchema.optional().openapi({ description: 'Only this device (its id); without it, every device the caller may see' }),
  last_event_id: EventIdSchema.optional().openapi({ description: 'Resume after this event id (the Last-Event-ID header wins when both are given)' }),
  api_key: z.string().optional().openapi({ description: 'An API key, for clients that cannot set the Authorization header (it will show in logs)' }),
});
const StreamHeaders = z.object({
  'last-event-id': EventIdSchema.optional().openapi({ description: 'What browsers send when an EventSource reconnects' }),
});

export function registerStreamRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/stream',
      tags: ['stream'],
      summary: 'Live device status events (Server-Sent Events, or a WebSocket with Upgrade: websocket)',
      description:
        'Each event: `id: <id>`, `event: status`, `data: {"agent_id","team_id","status":"online"|"offline","timestamp","name","hostname"}`, ' +
        'for the devices of the teams the caller may see (an instance admin: every team). ' +
        'A `: heartbeat` comment every 15 s. `event: gap` when the events after Last-Event-ID are no longer kept; ' +
        '`event: dropped` when the reader fell too far behind (the stream then ends). ' +
        `The WebSocket form sends \`{"t":"event","id","event","data"}\`, \`{"t":"gap","id"}\`, \`{"t":"dropped","reason"}\` (then close ${StreamCloseCode.DROPPED}) ` +
        'and `{"t":"error","code","reason"}`; the client sends `{"t":"ack","n":<events handled>}` and is dropped once it leaves more than ' +
        `${STREAM_WINDOW} events unacknowledged. ` +
        `When the caller's teams change (removed from a team, a team deleted or now requiring 2FA, a device moved away) or the credential is revoked ` +
        `(the API key revoked, the session logged out or ended by a password change) the stream ends after \`: access changed\` ` +
        `(the WebSocket form: close ${StreamCloseCode.ACCESS_CHANGED}); reconnect with Last-Event-ID to go on with what the caller may see now. ` +
        `It also ends when the credential expires, after \`: credential expired\` (the WebSocket form: close ${StreamCloseCode.CREDENTIAL_EXPIRED}).`,
      security,
      ...after(freshCaller, allows('devices:read')),
      request: { query: StreamQuery, headers: StreamHeaders },
      responses: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } },
        101: { description: 'Switching Protocols: the WebSocket form, one JSON message per event; the client acks events ({"t":"ack","n"})' },
        ...authErrors,
        ...notFoundError,
        502: errorResponse('The stream could not be opened (STREAM_UNAVAILABLE)'),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const agentId = q.agent_id ?? null;
      // A device of a team the caller is not in is as unknown as one that does not exist (404), before any upgrade.
      if (agentId) await authorizeDevice(c, agentId);
      const p = principalOf(c);
      const watch: WatchRequest = {
        topics: ['status'],
        agent_id: agentId,
        after: c.req.valid('header')['last-event-id'] ?? q.last_event_id ?? null,
        teams: visibleTeams(p),
        user_id: p.userId,
        credential_id: credentialIdOf(p),
        expires_at: p.expiresAt,
      };
      const hub = fleetHubFor(c.env);
      // Only what the hub needs: the client's headers (its credential among them) stay here.
      const toHub = new Request('https://fleet-hub/watch', { headers: { upgrade: 'websocket', [INTERNAL.watch]: JSON.stringify(watch) } });
      const res = await hub.fetch(toHub);
      if (!res.webSocket) throw new ApiError(502, 'STREAM_UNAVAILABLE', 'The event stream could not be opened', { status: res.status });
      if (isWebSocketUpgrade(c.req.raw.headers)) return res;
      res.webSocket.accept();
      const body = sseFromWatcher(res.webSocket, {
        heartbeatMs: numberVar(c.env.STREAM_HEARTBEAT_MS, 15_000, 10),
        bufferBytes: numberVar(c.env.STREAM_BUFFER_BYTES, 1 << 20, 1024),
        retryMs: RETRY_MS,
        expiresAt: p.expiresAt,
      });
      return new Response(body, {
        headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' },
      });
    },
  );
}
