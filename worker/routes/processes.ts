// One process, and signalling it: the native /api/v1/devices/{id}/processes/{pid}[/signal] and
// Tyto's GET /api/v1/processes/{pid} and POST …/signal, which name the device by agent_id (Tyto's
// agent ids are our device ids, as in its agents API). Reading one process is devices:read, like
// the list; signalling is processes:signal. The pid and the signal (shared/api/signals.ts's
// allow-list) are checked here, before any device work; the agent checks them again and refuses
// pid 1, itself, its parent chain and kernel threads (PROCESS_PROTECTED, 403).
//
// Audit: process.signal for each signal sent, and process.signal_refused when the agent refused
// one it was asked for (protected, or the kernel said EPERM): an attempt on the agent's own
// processes is worth knowing about. Refusals made here (a bad pid or signal, a missing right) are
// the caller's mistakes and are not recorded, as no refused request is elsewhere.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { App } from '../openapi.ts';
import { authErrors, deviceErrors, errorResponse } from '../openapi.ts';
import { allows, onDevice } from '../auth/access.ts';
import { authorizeDevice, scopedTeam } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { ApiError, validationError } from '../errors.ts';
import * as S from '../devices/api-schemas.ts';
import { callApprovedDevice } from '../devices/hub.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { ALLOWED_SIGNALS_TEXT, PID_MAX, ProcessDetailSchema, SIGNALS, SignalResultSchema, SignalSchema, type SignalNumber } from '../../shared/api/processes.ts';

const ProcessDetail = ProcessDetailSchema.openapi('ProcessDetail');
const SignalResult = SignalResultSchema.openapi('SignalResult');
const SignalField = SignalSchema.openapi({ description: `A number or a name: ${ALLOWED_SIGNALS_TEXT}`, example: 15 });
const SignalBody = z.object({ signal: SignalField }).strict().openapi('SignalBody');
const TytoSignalBody = z
  .object({ signal: SignalField, agent_id: DeviceIdSchema.optional().openapi({ description: 'The device, if not given in the query' }) })
  .strict()
  .openapi('TytoSignalBody');

const PID_RANGE = `pid must be a whole number from 1 to ${PID_MAX}`;
/** `{pid}`: digits only (no "0x10", "1e3" or spaces that a bare number coercion would take), in PidSchema's range. */
const pid = z
  .string()
  .regex(/^[0-9]{1,7}$/, PID_RANGE)
  .transform(Number)
  .pipe(z.number().int().min(1, PID_RANGE).max(PID_MAX, PID_RANGE))
  .openapi({ param: { name: 'pid', in: 'path' }, example: '1234' });
const DevicePidParam = S.DeviceIdParam.extend({ pid });
const PidParam = z.object({ pid });
const agentId = DeviceIdSchema.openapi({ description: "The device (Tyto's agent id: our device id)" });

const readResponses = {
  200: S.json(ProcessDetail, 'The process, read from the device just now'),
  ...authErrors,
  404: errorResponse('No such device (NOT_FOUND), or no such process on it (PROCESS_NOT_FOUND)'),
  409: errorResponse('The device is not approved (DEVICE_NOT_APPROVED)'),
  502: errorResponse('The device answered with an error'),
  ...deviceErrors,
};
const signalResponses = {
  200: S.json(SignalResult, 'The signal was sent'),
  ...authErrors,
  403: errorResponse(
    'Insufficient permissions; or the agent will not signal it: pid 1, the agent, its parent chain or a kernel thread (PROCESS_PROTECTED, details.reason), or the kernel refused (SIGNAL_DENIED)',
  ),
  404: errorResponse('No such device (NOT_FOUND), or no such process on it (PROCESS_NOT_FOUND)'),
  409: errorResponse('The device is not approved (DEVICE_NOT_APPROVED)'),
  502: errorResponse('The device answered with an error'),
  ...deviceErrors,
};

/** Codes of the agent's refusals that say something about the caller's intent, and are audited. */
const AUDITED_REFUSALS = new Set(['PROCESS_PROTECTED', 'SIGNAL_DENIED']);

async function sendSignal(c: Context<AppEnv>, deviceId: string, teamId: string, pid: number, signal: SignalNumber) {
  const name = SIGNALS[signal];
  try {
    const result = await callApprovedDevice(c.env, deviceId, 'process_signal', { pid, signal });
    audit(c, { action: 'process.signal', targetType: 'device', targetId: deviceId, teamId, details: { pid, signal, name, ...(result.process ? { process: result.process } : {}) } });
    return result;
  } catch (e) {
    if (e instanceof ApiError && AUDITED_REFUSALS.has(e.code)) {
      const reason = typeof e.details.reason === 'string' ? { reason: e.details.reason } : {};
      audit(c, { action: 'process.signal_refused', targetType: 'device', targetId: deviceId, teamId, details: { pid, signal, name, code: e.code, ...reason } });
    }
    throw e;
  }
}

/** Tyto's agent_id, from the query or the body (both given must agree): a 400 naming agent_id when there is none. */
function tytoAgent(query: string | undefined, body: string | undefined): string {
  if (query !== undefined && body !== undefined && query !== body) {
    throw validationError('agent_id is given twice, with two values', { target: 'json', issues: [{ path: 'agent_id', message: 'differs from the query', code: 'custom' }] });
  }
  const id = query ?? body;
  if (id === undefined) {
    throw validationError('agent_id is required: the device to act on', { target: 'query', issues: [{ path: 'agent_id', message: 'Required', code: 'invalid_type' }] });
  }
  return id;
}

export function registerProcessRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/processes/{pid}',
      tags: ['devices'],
      summary: 'One process on the device, read live',
      security: S.security,
      ...onDevice(allows('devices:read')),
      request: { params: DevicePidParam },
      responses: readResponses,
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await callApprovedDevice(c.env, p.id, 'process_get', { pid: p.pid }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/processes/{pid}/signal',
      tags: ['devices'],
      summary: 'Send a process a signal from the allow-list',
      description: `Signals: ${ALLOWED_SIGNALS_TEXT}, by number or name. The agent refuses pid 1, itself, its parent chain and kernel threads.`,
      security: S.security,
      ...onDevice(allows('processes:signal')),
      request: { params: DevicePidParam, body: { required: true, content: { 'application/json': { schema: SignalBody } } } },
      responses: signalResponses,
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await sendSignal(c, p.id, scopedTeam(c), p.pid, c.req.valid('json').signal), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/processes/{pid}',
      tags: ['processes'],
      summary: 'Get process details (Tyto)',
      security: S.security,
      ...allows('devices:read'),
      request: { params: PidParam, query: z.object({ agent_id: agentId }) },
      responses: readResponses,
    }),
    async (c) => {
      const deviceId = c.req.valid('query').agent_id;
      // Another team's device is as unknown as one that does not exist (404).
      await authorizeDevice(c, deviceId);
      return c.json(await callApprovedDevice(c.env, deviceId, 'process_get', { pid: c.req.valid('param').pid }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/processes/{pid}/signal',
      tags: ['processes'],
      summary: 'Send signal to process (Tyto)',
      description: `Signals: ${ALLOWED_SIGNALS_TEXT}, by number or name. The device is agent_id, in the query or the body. The agent refuses pid 1, itself, its parent chain and kernel threads.`,
      security: S.security,
      ...allows('processes:signal'),
      request: {
        params: PidParam,
        query: z.object({ agent_id: agentId.optional() }),
        body: { required: true, content: { 'application/json': { schema: TytoSignalBody } } },
      },
      responses: signalResponses,
    }),
    async (c) => {
      const body = c.req.valid('json');
      const deviceId = tytoAgent(c.req.valid('query').agent_id, body.agent_id);
      const teamId = await authorizeDevice(c, deviceId);
      return c.json(await sendSignal(c, deviceId, teamId, c.req.valid('param').pid, body.signal), 200);
    },
  );
}
