// GET /api/v1/stream: live events of the fleet, as Tyto documents it: `event: status` whenever a
// device goes online or offline, `event: metrics` with each sample (`events=` picks), for one
// device with `agent_id=` or all the caller may see.
// As Server-Sent Events, the Worker holds watcher sockets to the hubs and turns their messages
// into SSE (worker/stream/sse.ts). With `Upgrade: websocket` (the dashboard's form, JSON
// messages of shared/api/stream.ts; the client acks what it has handled, and one that leaves more
// than STREAM_WINDOW unacked is dropped) the client's own socket is handed to the FleetHub; for
// one device's metrics alone (agent_id= with events=metrics) the Worker bridges it to the device
// hub's watcher, holding a FleetHub watcher of that device beside it whose close (access changed,
// credential expired) closes the client's socket with the same code (worker/stream/socket-bridge.ts):
// revoke.ts reaches FleetHub watchers only, so a socket handed to the device hub would outlive a
// logout or a revoked key until its credential expired. Every event has an id; Last-Event-ID (or
// ?last_event_id=, for clients that cannot set it) resumes after it within the hub's replay
// window. Credentials as for every route, or ?api_key= for browsers' EventSource and WebSocket,
// which cannot set headers.
// Two feeds of samples (docs/architecture.md): fleet-wide, the FleetHub's, which every device hub
// publishes to at most once per refresh interval; for one device (agent_id= with metrics), that
// device's own hub, at the rate it samples (a watcher there makes it sample live). Such a stream
// merges two sockets, the FleetHub's (status, and the end of the stream when access changes) and
// the device hub's (metrics), each numbering its events on its own: the reader is given the
// composite id "<status id>:<metrics id>", which resumes both (StreamResumeIdSchema).
// A caller sees the events of the devices in the teams they may see (worker/auth/scope.ts): the
// Worker sends the hub those teams with the watch, and the hub filters each event by its team_id.
// When someone's access shrinks or their credential is revoked, worker/stream/revoke.ts closes
// their streams (every form of the stream holds a FleetHub watcher for this); the reconnect is
// authorized anew, with the caller read from D1 rather than the principal cache (see freshCaller).
// A stream ends when its credential expires: the hubs close their sockets (CREDENTIAL_EXPIRED),
// and the SSE bridge ends at that time by itself too.
import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { after, allows } from '../auth/access.ts';
import { principalFor, principalOf, requestCredential } from '../auth/middleware.ts';
import { credentialIdOf } from '../auth/principal.ts';
import { permits } from '../auth/permissions.ts';
import { authorizeDevice, visibleTeams } from '../auth/scope.ts';
import { ApiError, forbidden, validationError } from '../errors.ts';
import { security } from '../devices/api-schemas.ts';
import { isWebSocketUpgrade } from '../tunnels/forward.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { STREAM_TOPICS, STREAM_WINDOW, StreamResumeIdSchema, type StreamTopic } from '../../shared/api/stream.ts';
import { LIVE_INTERVAL_MS } from '../../shared/api/series.ts';
import { StreamCloseCode } from '../../shared/codes.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { INTERNAL, type WatchRequest } from '../../durable-objects/hub/contract.ts';
import { sseFromWatcher, sseFromWatchers } from '../stream/sse.ts';
import { bridgeDeviceWatcher } from '../stream/socket-bridge.ts';
import { hubFor } from '../devices/hub.ts';

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

const EVENTS_DESCRIPTION = `A comma list of ${STREAM_TOPICS.join(', ')} (default both)`;
const StreamQuery = z.object({
  agent_id: DeviceIdSchema.optional().openapi({ description: 'Only this device (its id); without it, every device the caller may see' }),
  events: z.string().optional().openapi({ description: EVENTS_DESCRIPTION, example: 'metrics' }),
  last_event_id: StreamResumeIdSchema.optional().openapi({ description: 'Resume after this event id (the Last-Event-ID header wins when both are given)' }),
  api_key: z.string().optional().openapi({ description: 'An API key, for clients that cannot set the Authorization header (it will show in logs)' }),
});
const StreamHeaders = z.object({
  'last-event-id': StreamResumeIdSchema.optional().openapi({ description: 'What browsers send when an EventSource reconnects' }),
});

/** The topics `events=` names, in STREAM_TOPICS order; a 400 naming events for an unknown or empty one. */
export function readEvents(raw: string | undefined): StreamTopic[] {
  if (raw === undefined) return [...STREAM_TOPICS];
  const named = raw.split(',').map((t) => t.trim());
  const bad = named.find((t) => !(STREAM_TOPICS as readonly string[]).includes(t));
  if (bad !== undefined) {
    const message = bad === '' ? `events names no event: ${EVENTS_DESCRIPTION.toLowerCase()}` : `no event "${bad.slice(0, 64)}": events is ${EVENTS_DESCRIPTION.toLowerCase()}`;
    throw validationError('Invalid request query', { target: 'query', issues: [{ path: 'events', message, code: 'custom' }] });
  }
  return STREAM_TOPICS.filter((t) => named.includes(t));
}

/**
 * The two sides of a resume id (shared/api/stream.ts StreamResumeIdSchema): the FleetHub's
 * (status) and the device hub's (metrics) event id, each null when absent. A plain decimal id is
 * the status side: every stream sent only FleetHub ids before metrics came.
 */
export function splitResumeId(id: string | null): { status: string | null; metrics: string | null } {
  if (id === null) return { status: null, metrics: null };
  const colon = id.indexOf(':');
  if (colon < 0) return { status: id, metrics: null };
  return { status: id.slice(0, colon) || null, metrics: id.slice(colon + 1) || null };
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' };

export function registerStreamRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/stream',
      tags: ['stream'],
      summary: 'Live device status and metrics events (Server-Sent Events, or a WebSocket with Upgrade: websocket)',
      description:
        'Each event: `id: <id>`, then `event: status` with `data: {"agent_id","team_id","status":"online"|"offline","timestamp","name","hostname"}`, ' +
        'or `event: metrics` with `data:` a sample in Tyto\'s metrics structure plus `agent_id` and `team_id`, ' +
        'for the devices of the teams the caller may see (an instance admin: every team). `events=` picks (a comma list of status, metrics; default both). ' +
        'Without agent_id every device\'s samples come at the relay\'s refresh interval (POST /api/v1/settings/refresh); ' +
        `with agent_id and metrics the device's own samples come as it takes them, every ${LIVE_INTERVAL_MS / 1000} s while the stream is open, ` +
        'and event ids are `<status id>:<metrics id>` (either side empty until that kind of event came; a plain decimal id given to resume stands for the status side). ' +
        'A `: heartbeat` comment every 15 s. `event: gap` when the status events after Last-Event-ID are no longer kept; ' +
        '`event: metrics` on the fleet-wide stream resumes as the current state instead (each device\'s latest sample with an id greater than the one given, once, in id order; never a gap), ' +
        'and with `agent_id=` from the device\'s own hub, which replays every sample of its window (a gap past it). Ids are strictly increasing but not consecutive. ' +
        '`event: dropped` when the reader fell too far behind (the stream then ends). ' +
        `The WebSocket form sends \`{"t":"event","id","event","data"}\`, \`{"t":"gap","id"}\`, \`{"t":"dropped","reason"}\` (then close ${StreamCloseCode.DROPPED}) ` +
        'and `{"t":"error","code","reason"}`; the client sends `{"t":"ack","n":<events handled>}` and is dropped once it leaves more than ' +
        `${STREAM_WINDOW} events unacknowledged. With agent_id and events=metrics the WebSocket is the device's own feed (its hub's decimal ids, ` +
        `samples as the device takes them, status events never); otherwise the fleet's (decimal ids, metrics at the refresh interval). ` +
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
      const p = principalOf(c);
      // Samples need metrics:read: a caller without it (an API key narrowed to devices:read) gets status by default, and a 403 for asking for metrics.
      const mayReadMetrics = permits(p.permissions, 'metrics:read');
      const topics = q.events === undefined && !mayReadMetrics ? (['status'] as StreamTopic[]) : readEvents(q.events);
      if (topics.includes('metrics') && !mayReadMetrics) throw forbidden('Insufficient permissions', { required: ['metrics:read'] });
      const agentId = q.agent_id ?? null;
      // A device of a team the caller is not in is as unknown as one that does not exist (404), before any upgrade.
      if (agentId) await authorizeDevice(c, agentId);
      const who = { teams: visibleTeams(p), user_id: p.userId, credential_id: credentialIdOf(p), expires_at: p.expiresAt };
      const resume = c.req.valid('header')['last-event-id'] ?? q.last_event_id ?? null;
      const from = splitResumeId(resume);
      const upgrade = isWebSocketUpgrade(c.req.raw.headers);
      const deviceFeed = agentId !== null && topics.includes('metrics');

      if (upgrade) {
        // The dashboard's device page: the device hub's own feed, whose ids are that hub's, bridged
        // here beside a FleetHub watcher of the device that is never shown (socket-bridge.ts): revoke.ts
        // closes FleetHub watchers only, and that one's close ends the client's socket.
        if (deviceFeed && topics.length === 1) {
          const after = resume !== null && resume.includes(':') ? from.metrics : resume;
          const [device, fleet] = await openWatchers([
            deviceWatch(c.env, agentId, { topics: ['metrics'], agent_id: agentId, after, ...who }),
            fleetWatch(c.env, { topics: ['status'], agent_id: agentId, after: null, ...who }),
          ]);
          return new Response(null, { status: 101, webSocket: bridgeDeviceWatcher(device!, fleet!) });
        }
        return (await openWatcher(fleetWatch(c.env, { topics, agent_id: agentId, after: from.status, ...who }))).response;
      }

      const sse = {
        heartbeatMs: numberVar(c.env.STREAM_HEARTBEAT_MS, 15_000, 10),
        bufferBytes: numberVar(c.env.STREAM_BUFFER_BYTES, 1 << 20, 1024),
        retryMs: RETRY_MS,
        expiresAt: p.expiresAt,
      };
      if (!deviceFeed) {
        const { socket } = await openWatcher(fleetWatch(c.env, { topics, agent_id: agentId, after: from.status, ...who }));
        socket.accept();
        return new Response(sseFromWatcher(socket, sse), { headers: SSE_HEADERS });
      }

      // Two feeds: the device's status from the FleetHub (which also ends the stream when the
      // caller's access changes: revoke.ts closes FleetHub watchers), its samples from its own hub.
      const wantStatus = topics.includes('status');
      const sockets = await openWatchers([
        fleetWatch(c.env, { topics: ['status'], agent_id: agentId, after: wantStatus ? from.status : null, ...who }),
        deviceWatch(c.env, agentId, { topics: ['metrics'], agent_id: agentId, after: from.metrics, ...who }),
      ]);
      for (const ws of sockets) ws.accept();
      const last = [wantStatus ? (from.status ?? '') : '', from.metrics ?? ''];
      const idOf = (socket: number, id: string) => {
        last[socket] = id;
        return `${last[0]}:${last[1]}`;
      };
      const body = sseFromWatchers(sockets, {
        ...sse,
        idOf,
        render: (e, socket) => (socket === 0 && !wantStatus ? null : `id: ${idOf(socket, e.id)}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`),
      });
      return new Response(body, { headers: SSE_HEADERS });
    },
  );
}

const fleetWatch = (env: Env, watch: WatchRequest) => () =>
  fleetHubFor(env).fetch(new Request('https://fleet-hub/watch', { headers: { upgrade: 'websocket', [INTERNAL.watch]: JSON.stringify(watch) } }));

const deviceWatch = (env: Env, deviceId: string, watch: WatchRequest) => () =>
  hubFor(env, deviceId).fetch(new Request('https://device-hub/watch', { headers: { upgrade: 'websocket', [INTERNAL.kind]: 'watch', [INTERNAL.watch]: JSON.stringify(watch) } }));

/** Opens one hub watcher: the hub's 101 response (for a client's WebSocket) and its socket. Only what the hub needs goes: the client's headers (its credential among them) stay here. */
async function openWatcher(open: () => Promise<Response>): Promise<{ response: Response; socket: WebSocket }> {
  const res = await open();
  if (!res.webSocket) throw new ApiError(502, 'STREAM_UNAVAILABLE', 'The event stream could not be opened', { status: res.status });
  return { response: res, socket: res.webSocket };
}

/** Opens several watchers (not accepted yet: what arrives meanwhile waits); if one fails, the others are closed and the stream is a 502. */
async function openWatchers(opens: (() => Promise<Response>)[]): Promise<WebSocket[]> {
  const opened = await Promise.allSettled(opens.map((open) => openWatcher(open)));
  const sockets = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value.socket] : []));
  if (sockets.length === opened.length) return sockets;
  for (const ws of sockets) {
    ws.accept();
    ws.close(1000, 'the stream could not be opened');
  }
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason;
  throw failed instanceof ApiError ? failed : new ApiError(502, 'STREAM_UNAVAILABLE', 'The event stream could not be opened', {});
}
