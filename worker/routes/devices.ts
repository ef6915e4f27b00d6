// The native devices API (/api/v1/devices): list, read, rename, tag, approve, reject, revoke,
// move between teams and remove devices, and ask a device for its live info and process list
// through its DeviceHub. Every route sees only the caller's teams' devices (worker/auth/scope.ts):
// another team's device is a 404, as if it did not exist.
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, conflictError, deviceErrors, errorResponse, notFoundError } from '../openapi.ts';
import { allows, onDevice } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { assertTeamExists, authorizeTeam, forgetDeviceTeam, listedTeams, scopedTeam } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import * as S from '../devices/api-schemas.ts';
import { getDevice, listDevices, moveDevice, renameDevice, setDeviceTags } from '../devices/queries.ts';
import { APPROVE, REJECT, REVOKE, applyStatus, removeDevice } from '../devices/lifecycle.ts';
import { presentDevice } from '../devices/present.ts';
import { callApprovedDevice, hubFor } from '../devices/hub.ts';
import { forgetTunnels } from '../tunnels/name-cache.ts';
import { revokeWatchers } from '../stream/revoke.ts';

const tags = ['devices'];
const one = (summary: string) => ({ 200: S.json(S.Device, summary), ...authErrors, ...notFoundError });
const statusChange = (action: 'approve' | 'reject' | 'revoke', summary: string) =>
  createRoute({
    method: 'post',
    path: `/api/v1/devices/{id}/${action}`,
    tags,
    summary,
    security: S.security,
    ...onDevice(allows('devices:admin')),
    request: { params: S.DeviceIdParam },
    responses: { ...one('The device after the change'), ...conflictError, 502: errorResponse('The socket could not be closed (DISCONNECT_FAILED)') },
  });

export function registerDeviceRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices',
      tags,
      summary: "List the devices of the caller's teams",
      security: S.security,
      ...allows('devices:read'),
      request: { query: S.DeviceListQuery },
      responses: { 200: S.json(S.DeviceList, 'Devices, by name'), ...authErrors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const rows = await listDevices(c.env.DB, {
        teams: listedTeams(principalOf(c), q.team_id),
        status: q.status,
        online: q.online === undefined ? undefined : q.online === 'true',
      });
      return c.json({ devices: rows.map(presentDevice) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}',
      tags,
      summary: 'Get a device',
      security: S.security,
      ...onDevice(allows('devices:read')),
      request: { params: S.DeviceIdParam },
      responses: one('The device'),
    }),
    async (c) => {
      return c.json(presentDevice(await getDevice(c.env.DB, c.req.valid('param').id)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/v1/devices/{id}',
      tags,
      summary: 'Rename a device',
      security: S.security,
      ...onDevice(allows('devices:write')),
      request: { params: S.DeviceIdParam, body: { required: true, content: { 'application/json': { schema: S.RenameDevice } } } },
      responses: one('The renamed device'),
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const teamId = scopedTeam(c);
      const row = await renameDevice(c.env.DB, id, c.req.valid('json').name, Date.now());
      audit(c, { action: 'device.rename', targetType: 'device', targetId: id, teamId, details: { name: row.name } });
      return c.json(presentDevice(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/api/v1/devices/{id}/tags',
      tags,
      summary: "Replace a device's tags (at most 20; colours #rrggbb)",
      security: S.security,
      ...onDevice(allows('devices:write')),
      request: { params: S.DeviceIdParam, body: { required: true, content: { 'application/json': { schema: S.SetDeviceTags } } } },
      responses: one('The device with its new tags'),
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const teamId = scopedTeam(c);
      const row = await setDeviceTags(c.env.DB, id, c.req.valid('json').tags, Date.now());
      audit(c, { action: 'device.tags', targetType: 'device', targetId: id, teamId, details: { tags: row.tags.map((t) => t.name) } });
      return c.json(presentDevice(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/move',
      tags,
      summary: 'Move a device to another team (needs the admin role in both teams)',
      security: S.security,
      ...onDevice(allows('devices:admin')),
      request: { params: S.DeviceIdParam, body: { required: true, content: { 'application/json': { schema: S.MoveDevice } } } },
      responses: one('The device in its new team'),
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const to = c.req.valid('json').team_id;
      const from = scopedTeam(c);
      // The target team is named in the body, so it is checked here: the admin role there too.
      authorizeTeam(c, to, 'admin');
      if (to === from) return c.json(presentDevice(await getDevice(c.env.DB, id)), 200);
      await assertTeamExists(c.env, to);
      const row = await moveDevice(c.env.DB, id, to, Date.now());
      forgetDeviceTeam(id);
      forgetTunnels(); // the ingress's cached tunnel rows carry the device's team
      // The hub names the device's team in each sample it publishes: it reads the new one now, not
      // within the minute it re-reads it anyway (which is also the fallback if this call fails).
      try {
        await hubFor(c.env, id).deviceMoved();
      } catch (e) {
        console.error(`device.move: the hub of ${id} was not told (it re-reads its team within a minute)`, e);
      }
      // Streams of the old team are filtered by the team each event names, so only those that
      // asked for this one device (agent_id=) must stop.
      await revokeWatchers(c.env, { deviceId: id });
      // Both teams' admins see the move in their audit log.
      audit(c, { action: 'device.move', targetType: 'device', targetId: id, teamId: from, details: { from, to } });
      audit(c, { action: 'device.move', targetType: 'device', targetId: id, teamId: to, details: { from, to } });
      return c.json(presentDevice(row), 200);
    },
  );

  app.openapi(statusChange('approve', 'Approve a pending (or rejected) device so it may connect'), async (c) =>
    c.json(presentDevice(await applyStatus(c, c.req.valid('param').id, APPROVE, 'conflict')), 200),
  );
  app.openapi(statusChange('reject', 'Reject a pending device'), async (c) =>
    c.json(presentDevice(await applyStatus(c, c.req.valid('param').id, REJECT, 'conflict')), 200),
  );
  app.openapi(statusChange('revoke', 'Revoke a device: its socket closes and its key is refused from now on'), async (c) =>
    c.json(presentDevice(await applyStatus(c, c.req.valid('param').id, REVOKE, 'conflict')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/devices/{id}',
      tags,
      summary: 'Remove a device (its socket closes; it must enroll again to come back)',
      security: S.security,
      ...onDevice(allows('devices:admin')),
      request: { params: S.DeviceIdParam },
      responses: { 204: { description: 'Removed' }, ...authErrors, ...notFoundError },
    }),
    async (c) => {
      await removeDevice(c, c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  const live = (what: 'info' | 'processes', summary: string, schema: typeof S.DeviceInfo | typeof S.ProcessList) =>
    createRoute({
      method: 'get',
      path: `/api/v1/devices/{id}/${what}`,
      tags,
      summary,
      security: S.security,
      ...onDevice(allows('devices:read')),
      request: { params: S.DeviceIdParam },
      responses: {
        200: S.json(schema, 'Read from the device just now'),
        ...authErrors,
        ...notFoundError,
        409: errorResponse('The device is not approved (DEVICE_NOT_APPROVED)'),
        502: errorResponse('The device answered with an error'),
        ...deviceErrors,
      },
    });

  app.openapi(live('info', 'Live device info (CPU, memory, disks, temperatures)', S.DeviceInfo), async (c) =>
    c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'device_info', {}), 200),
  );

  app.openapi(live('processes', 'Live process list', S.ProcessList), async (c) =>
    c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'process_list', {}), 200),
  );
}
