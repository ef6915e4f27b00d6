// The native tunnels API: list, create, read, change and delete a device's tunnels (a tunnel may
// be named by id or name in the path), every tunnel at once for the dashboard, and the two
// WebSocket endpoints TCP clients dial:
//
//   GET /api/v1/tunnels/{name}/connect              Upgrade: websocket   (tunnels:use)
//   GET /api/v1/devices/{id}/tcp/{port}/connect     Upgrade: websocket   (tunnels:use)
//
// Each accepted WebSocket is one TCP connection to the tunnel's target on the device: binary
// messages carry the bytes both ways; a text message {"t":"eof"} is a half-close (that side sends
// no more, the other may still answer, as with `nc -N` or ssh); {"t":"error","code","message"}
// from the relay explains a failure; closing the WebSocket closes the connection. The second form
// is what `pirelay tcp <device>:<port>` uses: the device by id or display name, the tunnel by its
// target port. Credentials go in the Authorization header (API key or session), or as
// `?api_key=` for WebSocket clients that cannot set headers. A plain GET (no upgrade) answers
// 426 once the caller and tunnel check out, so a client can learn why a dial failed.
//
// Every route reaches a tunnel through its device's team (worker/auth/scope.ts): another team's
// tunnel, whether named by id, name or port, is a 404 like one that does not exist.
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { after, allows, onDevice, onDeviceNamed } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { assertInTeam, scopedTeam, visibleTeams } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { ApiError, notFound } from '../errors.ts';
import { json, security } from '../devices/api-schemas.ts';
import { hubFor } from '../devices/hub.ts';
import * as S from '../tunnels/api-schemas.ts';
import { getDeviceTunnel, listTeamTunnels, listTunnels, tcpTunnelsOnPort, type VisitedTunnel } from '../tunnels/queries.ts';
import type { Tunnel } from '../../shared/db/schema.ts';
import { presentTunnel, type UrlBase } from '../tunnels/present.ts';
import { changeTunnel, createTunnel, removeTunnel, type Saved } from '../tunnels/save.ts';
import { apiKeyFromQuery } from '../tunnels/credential.ts';
import { TUNNEL_USE_PERMISSION } from '../tunnels/access.ts';
import { buildForwardRequest, isWebSocketUpgrade } from '../tunnels/forward.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { clientIpOf } from '../client-ip.ts';
import { forgetTunnel, tunnelNamed } from '../tunnels/name-cache.ts';
import { tunnelDomain } from '../tunnels/ingress.ts';

const tags = ['tunnels'];
const read = allows('tunnels:read');
const write = allows('tunnels:write');
const use = after(apiKeyFromQuery, allows(TUNNEL_USE_PERMISSION));

export const urlBase = (c: Context<AppEnv>): UrlBase => ({ requestUrl: new URL(c.req.url), domain: tunnelDomain(c.env) });

const saved = (c: Context<AppEnv>, s: Saved) => ({ ...presentTunnel(s.row, urlBase(c)), ...(s.bearerToken ? { bearer_token: s.bearerToken } : {}) });

const body = <T>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });

/** A tunnel change, in the audit log under the device's team (never its password or token). */
const audited = (c: Context<AppEnv>, action: 'tunnel.create' | 'tunnel.update' | 'tunnel.delete', t: Tunnel, teamId: string, details: Record<string, unknown> = {}) =>
  audit(c, { action, targetType: 'tunnel', targetId: t.id, teamId, details: { name: t.name, device_id: t.deviceId, ...details } });

const connectResponses = {
  101: { description: 'Switching Protocols: the WebSocket now carries one TCP connection to the target' },
  ...authErrors,
  ...notFoundError,
  409: errorResponse('Several tunnels or devices match (AMBIGUOUS_TUNNEL, AMBIGUOUS_DEVICE)'),
  426: errorResponse('Not a WebSocket upgrade (UPGRADE_REQUIRED)'),
  503: errorResponse('The tunnel is disabled or closed, or the device is offline'),
} as const;

/** Hands a TCP client's WebSocket upgrade to the tunnel's DeviceHub. */
async function connectTcp(c: Context<AppEnv>, tunnel: VisitedTunnel): Promise<Response> {
  const details = { tunnel: tunnel.name };
  if (tunnel.kind !== 'tcp') throw new ApiError(400, 'NOT_A_TCP_TUNNEL', `Tunnel ${tunnel.name} is an http tunnel; visit its public URL instead`, details);
  if (!tunnel.enabled) throw new ApiError(503, 'TUNNEL_DISABLED', `Tunnel ${tunnel.name} is disabled`, details);
  if (!tunnel.connected) throw new ApiError(503, 'TUNNEL_CLOSED', `Tunnel ${tunnel.name} is closed (disconnected)`, details);
  if (tunnel.deviceStatus !== 'approved') {
    throw new ApiError(503, 'DEVICE_NOT_APPROVED', `The device behind ${tunnel.name} is ${tunnel.deviceStatus}`, { ...details, status: tunnel.deviceStatus });
  }
  if (!isWebSocketUpgrade(c.req.raw.headers)) throw new ApiError(426, 'UPGRADE_REQUIRED', 'Expected a WebSocket upgrade', details);
  // The hub needs no credential; the key in the query string stays here.
  const url = new URL(c.req.url);
  url.searchParams.delete('api_key');
  const res = await hubFor(c.env, tunnel.deviceId).fetch(
    buildForwardRequest(c.req.raw, tunnel, clientIpOf(c.req.raw, c.env), { stripAuthorization: true, kind: 'tunnel-tcp', url: url.toString() }),
  );
  if (res.status === 404 && res.headers.get(INTERNAL.unknownTunnel) === '1') {
    forgetTunnel(tunnel.name);
    throw notFound('Tunnel', details);
  }
  return res;
}

export function registerTunnelRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tunnels',
      tags,
      summary: "List the tunnels of every device of the caller's teams",
      security,
      ...read,
      responses: { 200: json(S.TunnelList, 'The tunnels, by name'), ...authErrors },
    }),
    async (c) => {
      const base = urlBase(c);
      return c.json({ tunnels: (await listTeamTunnels(c.env.DB, visibleTeams(principalOf(c)))).map((t) => presentTunnel(t, base)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/tunnels',
      tags,
      summary: "List a device's tunnels",
      security,
      ...onDevice(read),
      request: { params: S.DeviceTunnelsParams },
      responses: { 200: json(S.TunnelList, "The device's tunnels, by name"), ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const base = urlBase(c);
      return c.json({ tunnels: (await listTunnels(c.env.DB, id)).map((t) => presentTunnel(t, base)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/tunnels',
      tags,
      summary: 'Create a tunnel (a bearer token, if one is made, is shown only in this answer)',
      security,
      ...onDevice(write),
      request: { params: S.DeviceTunnelsParams, body: body(S.CreateTunnel) },
      responses: {
        201: json(S.SavedTunnel, 'The new tunnel'),
        ...authErrors,
        ...notFoundError,
        409: errorResponse('The name is taken (TUNNEL_NAME_TAKEN) or the device has too many tunnels (TUNNEL_LIMIT_REACHED)'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const teamId = scopedTeam(c);
      const result = await createTunnel(c.env, id, c.req.valid('json'), new URL(c.req.url));
      audited(c, 'tunnel.create', result.row, teamId, { kind: result.row.kind, access: result.row.access });
      return c.json(saved(c, result), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/tunnels/{tunnelId}',
      tags,
      summary: 'Get a tunnel by id or name',
      security,
      ...onDevice(read),
      request: { params: S.DeviceTunnelParams },
      responses: { 200: json(S.Tunnel, 'The tunnel'), ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id, tunnelId } = c.req.valid('param');
      return c.json(presentTunnel(await getDeviceTunnel(c.env.DB, id, tunnelId), urlBase(c)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/v1/devices/{id}/tunnels/{tunnelId}',
      tags,
      summary: 'Change a tunnel (access {mode:"bearer", rotate:true} makes a new token, shown only in this answer)',
      security,
      ...onDevice(write),
      request: { params: S.DeviceTunnelParams, body: body(S.UpdateTunnel) },
      responses: { 200: json(S.SavedTunnel, 'The tunnel after the change'), ...authErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => {
      const { id, tunnelId } = c.req.valid('param');
      const teamId = scopedTeam(c);
      const current = await getDeviceTunnel(c.env.DB, id, tunnelId);
      const change = c.req.valid('json');
      const result = await changeTunnel(c.env, current, change, new URL(c.req.url));
      // Which fields changed, by name only: an access change may carry a password or make a token.
      audited(c, 'tunnel.update', result.row, teamId, { fields: Object.keys(change).sort() });
      return c.json(saved(c, result), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/devices/{id}/tunnels/{tunnelId}',
      tags,
      summary: 'Delete a tunnel (its open connections are closed)',
      security,
      ...onDevice(write),
      request: { params: S.DeviceTunnelParams },
      responses: { 204: { description: 'Deleted' }, ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id, tunnelId } = c.req.valid('param');
      const teamId = scopedTeam(c);
      const tunnel = await getDeviceTunnel(c.env.DB, id, tunnelId);
      await removeTunnel(c.env, tunnel);
      audited(c, 'tunnel.delete', tunnel, teamId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tunnels/{name}/connect',
      tags,
      summary: 'Open a TCP connection through a tcp tunnel, as a WebSocket',
      description: 'Send `Upgrade: websocket`. Binary messages carry the TCP bytes both ways.',
      security,
      ...use,
      request: { params: S.TunnelNameParams, query: S.ConnectQuery },
      responses: connectResponses,
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const hidden = () => notFound('Tunnel', { tunnel: name });
      const tunnel = await tunnelNamed(c.env.DB, name);
      if (!tunnel) throw hidden();
      // The cached row carries the device's team, so the check costs no query.
      assertInTeam(principalOf(c), tunnel.deviceTeamId, 'member', hidden);
      return connectTcp(c, tunnel);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/tcp/{port}/connect',
      tags,
      summary: "Open a TCP connection to a device's port, as a WebSocket (what `pirelay tcp <device>:<port>` dials)",
      description: 'The device is named by id or display name; the tcp tunnel whose target port is {port} carries the connection.',
      security,
      ...onDeviceNamed(use),
      request: { params: S.DevicePortParams, query: S.ConnectQuery },
      responses: connectResponses,
    }),
    async (c) => {
      const { port } = c.req.valid('param');
      const device = c.get('device')!; // found among the caller's teams' devices by the declaration (onDeviceNamed)
      const tunnels = await tcpTunnelsOnPort(c.env.DB, device.id, Number(port));
      if (tunnels.length === 0) throw notFound('TCP tunnel', { device_id: device.id, port: Number(port) });
      if (tunnels.length > 1) {
        throw new ApiError(409, 'AMBIGUOUS_TUNNEL', `Several tcp tunnels of this device target port ${port}; use /api/v1/tunnels/{name}/connect`, {
          tunnels: tunnels.map((t) => t.name),
        });
      }
      return connectTcp(c, { ...tunnels[0]!, deviceStatus: device.status });
    },
  );
}
