// The native devices API (/api/v1/devices): list, read, rename, approve, reject, revoke and
// remove devices, and ask a device for its live info and process list through its DeviceHub.
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, conflictError, deviceErrors, errorResponse, notFoundError } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import * as S from '../devices/api-schemas.ts';
import { getDevice, listDevices, renameDevice } from '../devices/queries.ts';
import { APPROVE, REJECT, REVOKE, applyStatus, removeDevice } from '../devices/lifecycle.ts';
import { presentDevice } from '../devices/present.ts';
import { callApprovedDevice } from '../devices/hub.ts';

const tags = ['devices'];
const one = (summary: string) => ({ 200: S.json(S.Device, summary), ...authErrors, ...notFoundError });
const statusChange = (action: 'approve' | 'reject' | 'revoke', summary: string) =>
  createRoute({
    method: 'post',
    path: `/api/v1/devices/{id}/${action}`,
    tags,
    summary,
    security: S.security,
    ...allows('devices:admin'),
    request: { params: S.DeviceIdParam },
    responses: { ...one('The device after the change'), ...conflictError, 502: errorResponse('The socket could not be closed (DISCONNECT_FAILED)') },
  });

export function registerDeviceRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices',
      tags,
      summary: 'List devices',
      security: S.security,
      ...allows('devices:read'),
      request: { query: S.DeviceListQuery },
      responses: { 200: S.json(S.DeviceList, 'Devices, by name'), ...authErrors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const rows = await listDevices(c.env.DB, { status: q.status, online: q.online === undefined ? undefined : q.online === 'true' });
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
      ...allows('devices:read'),
      request: { params: S.DeviceIdParam },
      responses: one('The device'),
    }),
    async (c) => c.json(presentDevice(await getDevice(c.env.DB, c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/v1/devices/{id}',
      tags,
      summary: 'Rename a device',
      security: S.security,
      ...allows('devices:write'),
      request: { params: S.DeviceIdParam, body: { required: true, content: { 'application/json': { schema: S.RenameDevice } } } },
      responses: one('The renamed device'),
    }),
    async (c) => c.json(presentDevice(await renameDevice(c.env.DB, c.req.valid('param').id, c.req.valid('json').name)), 200),
  );

  app.openapi(statusChange('approve', 'Approve a pending (or rejected) device so it may connect'), async (c) =>
    c.json(presentDevice(await applyStatus(c.env, c.req.valid('param').id, APPROVE, 'conflict')), 200),
  );
  app.openapi(statusChange('reject', 'Reject a pending device'), async (c) =>
    c.json(presentDevice(await applyStatus(c.env, c.req.valid('param').id, REJECT, 'conflict')), 200),
  );
  app.openapi(statusChange('revoke', 'Revoke a device: its socket closes and its key is refused from now on'), async (c) =>
    c.json(presentDevice(await applyStatus(c.env, c.req.valid('param').id, REVOKE, 'conflict')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/devices/{id}',
      tags,
      summary: 'Remove a device (its socket closes; it must enroll again to come back)',
      security: S.security,
      ...allows('devices:admin'),
      request: { params: S.DeviceIdParam },
      responses: { 204: { description: 'Removed' }, ...authErrors, ...notFoundError },
    }),
    async (c) => {
      await removeDevice(c.env, c.req.valid('param').id);
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
      ...allows('devices:read'),
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

  app.openapi(live('info', 'Live device info (CPU, memory, disks, temperatures)', S.DeviceInfo), async (c) => {
    const { id } = c.req.valid('param');
    return c.json(await callApprovedDevice(c.env, id, 'device_info', {}), 200);
  });

  app.openapi(live('processes', 'Live process list', S.ProcessList), async (c) => {
    const { id } = c.req.valid('param');
    return c.json(await callApprovedDevice(c.env, id, 'process_list', {}), 200);
  });
}
