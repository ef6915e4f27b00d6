// The native KVM API, under /api/v1/devices/{id}/: the device as the USB keyboard and mouse of
// another computer (permission hid:write: keystrokes, held keys with a lease, the mouse, typing a
// text, the live input WebSocket) and that computer's screen (screen:read: the KVM status, a
// screenshot, the live MJPEG view); and the keyboard layouts a text can be typed in.
//
// Each input route is one RPC to the agent (worker/devices/hub.ts, whose one mapping turns the
// agent's codes into statuses: a missing gadget 503, one that did not take a report in time 504,
// a seventh key 409…); the screen and live input are streams through the device's hub
// (worker/devices/kvm.ts). A text is checked against its layout here, before any device work, so
// a text that cannot be typed is refused naming its first untypeable character, having typed none.
//
// Audit: a type job (its layout and length, never the text: it may be a password) and opening
// live input are recorded. Single keystrokes, holds and mouse events are not: a session makes
// thousands of them, and the live input they would belong to is recorded when it opens.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { after, allows, onDevice } from '../auth/access.ts';
import { scopedTeam } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { ApiError } from '../errors.ts';
import { DeviceIdParam, json, security } from '../devices/api-schemas.ts';
import { callApprovedDevice } from '../devices/hub.ts';
import { requireApprovedDevice } from '../devices/queries.ts';
import { hidSocket, screenRequest } from '../devices/kvm.ts';
import { apiKeyFromQuery } from '../tunnels/credential.ts';
import { isWebSocketUpgrade } from '../tunnels/forward.ts';
import * as K from '../../shared/api/kvm.ts';
import { HOLD_LEASE } from '../../shared/protocol/kvm.ts';
import { modifierBits } from '../../shared/hid/keycodes.ts';
import { LAYOUTS, planText } from '../../shared/hid/typing.ts';
import type { ScreenRequest } from '../../durable-objects/hub/contract.ts';

const tags = ['kvm'];
const input = onDevice(allows('hid:write'));
const screen = onDevice(allows('screen:read'));

const HidState = K.HidStateSchema.openapi('HidState');
const HeldKey = K.HidStateSchema.extend({ lease_ms: z.number().int() }).openapi('HeldKey');
const KvmStatus = K.KvmStatusSchema.openapi('KvmStatus');
const TypeJob = K.TypeJobSchema.openapi('TypeJob');
const LayoutList = K.LayoutListSchema.openapi('LayoutList');
const body = <T>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });

const JobParams = DeviceIdParam.extend({
  job: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a type job id')
    .openapi({ param: { name: 'job', in: 'path' }, description: 'The id POST …/type answered with' }),
});

/** The answers every input route can give besides its own. */
const inputErrors = {
  ...authErrors,
  ...notFoundError,
  409: errorResponse('The device is not approved (DEVICE_NOT_APPROVED), or its keyboard is in a state that refuses this (TOO_MANY_KEYS: six keys are held already; TYPE_BUSY)'),
  502: errorResponse('The device failed (HID_ERROR, BAD_DEVICE_RESPONSE)'),
  503: errorResponse('The device is offline (DEVICE_OFFLINE), or its USB gadget is missing or not connected to a host (HID_MISSING, HID_UNPLUGGED)'),
  504: errorResponse('The device did not answer in time (DEVICE_TIMEOUT), or the host did not take the report in time (HID_TIMEOUT)'),
} as const;

const screenErrors = {
  ...authErrors,
  ...notFoundError,
  409: errorResponse('The device is not approved (DEVICE_NOT_APPROVED)'),
  502: errorResponse('The device failed, or answered with something that is not an image (BAD_DEVICE_RESPONSE)'),
  503: errorResponse('The device is offline (DEVICE_OFFLINE), has no screen (NO_SCREEN), or does not offer KVM (KVM_UNAVAILABLE)'),
  504: errorResponse('The device did not answer in time (DEVICE_TIMEOUT)'),
} as const;

const binary = z.string().openapi({ format: 'binary' });

/** The maximum size a screen query asked for, as the screen request carries it. */
const maxSize = (q: { max_width?: number; max_height?: number }) => ({ ...(q.max_width ? { max_width: q.max_width } : {}), ...(q.max_height ? { max_height: q.max_height } : {}) });

/**
 * A hub answer for a screen or live input: passed on as it is, except that an offline device is
 * told apart from an unapproved one (409) as the RPC routes do, asking D1 only then.
 */
async function fromHub(c: Context<AppEnv>, deviceId: string, res: Response): Promise<Response> {
  if (res.status === 503) {
    const said = (await res
      .clone()
      .json()
      .catch(() => null)) as { code?: unknown } | null;
    if (said?.code === 'DEVICE_OFFLINE') await requireApprovedDevice(c.env.DB, deviceId);
  }
  return res;
}

export function registerKvmRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/keystroke',
      tags,
      summary: 'Press a key and release it (with modifiers held while it is down)',
      description:
        '`code` is a KeyboardEvent.code with a HID usage (KeyA, Enter, F13, Numpad1, IntlBackslash…), `modifiers` the modifier keys held while it is pressed ' +
        '(ControlLeft, ShiftLeft, AltLeft, MetaLeft, ControlRight, ShiftRight, AltRight, MetaRight). The device writes the key-down report, then the release.',
      security,
      ...input,
      request: { params: DeviceIdParam, body: body(K.KeystrokeBodySchema) },
      responses: { 200: json(HidState, 'What the keyboard holds after the keystroke, and its LEDs'), ...inputErrors },
    }),
    async (c) => {
      const { code, modifiers } = c.req.valid('json');
      return c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'hid_keystroke', { code, modifiers: modifierBits(modifiers) }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/keys/down',
      tags,
      summary: 'Hold a key down for a lease (renewed by holding it again)',
      description:
        `The key stays down until POST …/keys/up, or until its lease (\`lease_ms\`, default ${HOLD_LEASE.defaultMs} ms, ${HOLD_LEASE.minMs}–${HOLD_LEASE.maxMs}) runs out: ` +
        'a caller that goes away can never leave a key stuck. Up to six keys (and the eight modifiers) at once; a seventh is refused with 409 TOO_MANY_KEYS.',
      security,
      ...input,
      request: { params: DeviceIdParam, body: body(K.KeyDownBodySchema) },
      responses: { 200: json(HeldKey, 'What the keyboard holds now, and the lease of this key'), ...inputErrors },
    }),
    async (c) => {
      const { code, lease_ms } = c.req.valid('json');
      const state = await callApprovedDevice(c.env, c.req.valid('param').id, 'hid_key', { action: 'down', code, lease_ms });
      return c.json({ ...state, lease_ms }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/keys/up',
      tags,
      summary: 'Release a held key',
      security,
      ...input,
      request: { params: DeviceIdParam, body: body(K.KeyUpBodySchema) },
      responses: { 200: json(HidState, 'What the keyboard holds now'), ...inputErrors },
    }),
    async (c) => c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'hid_key', { action: 'up', code: c.req.valid('json').code }), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/keys/release',
      tags,
      summary: 'Release every key and mouse button, whoever holds them',
      security,
      ...input,
      request: { params: DeviceIdParam },
      responses: { 200: json(HidState, 'The keyboard, holding nothing'), ...inputErrors },
    }),
    async (c) => c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'hid_release', {}), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/mouse',
      tags,
      summary: 'Move the mouse, press its buttons or turn its wheels (absolute position)',
      description: '`x` and `y` from 0 (left, top) to 1 (right, bottom); `buttons` bit 0 left, 1 right, 2 middle, 3 back, 4 forward; `wheel` and `hwheel` −127…127 steps.',
      security,
      ...input,
      request: { params: DeviceIdParam, body: body(K.MouseBodySchema) },
      responses: { 200: json(z.object({}), 'The report was written'), ...inputErrors },
    }),
    async (c) => c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'hid_mouse', c.req.valid('json')), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/devices/{id}/type',
      tags,
      summary: 'Type a text in a keyboard layout (checked first, then typed paced, with progress)',
      description:
        'Every character is checked against `layout` (GET /api/v1/kvm/layouts) before any key goes out: a text with a character the layout cannot type is refused ' +
        'with 400 UNTYPEABLE_CHARACTER naming it and its index (`details: {index, char, layout}`), an unknown layout with 400 UNKNOWN_LAYOUT. ' +
        'Otherwise the device types it as a type job: follow it with GET …/type/{job}, stop it with DELETE …/type/{job}. It delivers every character in order, ' +
        'or fails and says where it stopped (`error.at`). One type job at a time per device (409 TYPE_BUSY).',
      security,
      ...input,
      request: { params: DeviceIdParam, body: body(K.TypeBodySchema) },
      responses: { 202: json(TypeJob, 'The type job, started'), ...inputErrors },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const text = c.req.valid('json');
      const plan = planText(text.text, text.layout);
      if (!plan.ok) {
        const details = plan.code === 'UNTYPEABLE_CHARACTER' ? { index: plan.index, char: plan.char, layout: text.layout } : { layout: text.layout, layouts: LAYOUTS.map((l) => l.id) };
        throw new ApiError(400, plan.code, plan.message, details);
      }
      const job = await callApprovedDevice(c.env, id, 'hid_type_start', text);
      audit(c, {
        action: 'kvm.type',
        targetType: 'device',
        targetId: id,
        teamId: scopedTeam(c),
        details: { job: job.id, layout: text.layout, length: plan.chars.length, ...(text.interval_ms !== undefined ? { interval_ms: text.interval_ms } : {}) },
      });
      return c.json(job, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/type/{job}',
      tags,
      summary: "A type job's progress",
      security,
      ...input,
      request: { params: JobParams },
      responses: { 200: json(TypeJob, 'The type job: typing, done, failed (with where it stopped) or cancelled'), ...inputErrors },
    }),
    async (c) => {
      const { id, job } = c.req.valid('param');
      return c.json(await callApprovedDevice(c.env, id, 'hid_type_status', { job }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/devices/{id}/type/{job}',
      tags,
      summary: 'Cancel a type job (what was typed stays typed)',
      security,
      ...input,
      request: { params: JobParams },
      responses: { 200: json(TypeJob, 'The type job, cancelled (or as it ended, if it had)'), ...inputErrors },
    }),
    async (c) => {
      const { id, job } = c.req.valid('param');
      return c.json(await callApprovedDevice(c.env, id, 'hid_type_cancel', { job }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/hid',
      tags,
      summary: 'Live input (a WebSocket): keys and the mouse of one viewer, released when it closes',
      description:
        'Send JSON text messages: `{"t":"down","code"}`, `{"t":"up","code"}`, `{"t":"keystroke","code","modifiers"}`, ' +
        '`{"t":"mouse","x","y","buttons","wheel","hwheel"}` (moves the device has not written yet are replaced by the latest), `{"t":"release"}`, ' +
        '`{"t":"type","text","layout","interval_ms"}`, `{"t":"cancel"}`. The relay answers `{"t":"state","held","leds"}`, `{"t":"type","job"}` and ' +
        '`{"t":"error","code","message","details"}` (a message it refuses, BAD_MESSAGE, is not sent on). Every key and button this viewer holds is ' +
        'released when the socket closes. A viewer that sends faster than the device takes is closed with 1013. Credentials: Authorization, ' +
        '`?api_key=`, or the session cookie from a page of this relay (Origin).',
      security,
      ...onDevice(after(apiKeyFromQuery, allows('hid:write'))),
      request: { params: DeviceIdParam, query: z.object({ api_key: z.string().optional().openapi({ description: 'An API key, for clients that cannot set the Authorization header (it will show in logs)' }) }) },
      responses: {
        101: { description: 'Switching Protocols: the WebSocket carries this viewer\'s input' },
        ...screenErrors,
        426: errorResponse('Not a WebSocket upgrade (UPGRADE_REQUIRED)'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      if (!isWebSocketUpgrade(c.req.raw.headers)) throw new ApiError(426, 'UPGRADE_REQUIRED', 'Live input is a WebSocket: send Upgrade: websocket');
      const res = await fromHub(c, id, await hidSocket(c.env, id, c.req.raw));
      if (res.status === 101) audit(c, { action: 'kvm.input', targetType: 'device', targetId: id, teamId: scopedTeam(c) });
      return res;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/kvm',
      tags,
      summary: "The KVM's state: its USB gadgets, the keys held, the keyboard's LEDs and the screen",
      security,
      ...screen,
      request: { params: DeviceIdParam },
      responses: { 200: json(KvmStatus, 'Read from the device just now'), ...screenErrors },
    }),
    async (c) => c.json(await callApprovedDevice(c.env, c.req.valid('param').id, 'kvm_status', {}), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/screenshot',
      tags,
      summary: "A screenshot of the target computer's screen (JPEG, or PNG on request)",
      description: 'With `max_width` / `max_height` the image is scaled down to fit (never up). 204 with an empty body when there is no video signal.',
      security,
      ...screen,
      request: { params: DeviceIdParam, query: K.ScreenshotQuerySchema },
      responses: {
        200: { description: 'The image', content: { 'image/jpeg': { schema: binary }, 'image/png': { schema: binary } } },
        204: { description: 'No video signal' },
        ...screenErrors,
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const q = c.req.valid('query');
      const ask: ScreenRequest = { mode: 'snapshot', format: q.format, quality: q.quality, ...maxSize(q) };
      return fromHub(c, id, await screenRequest(c.env, id, ask, c.req.raw.signal));
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/screen/live',
      tags,
      summary: 'Watch the screen live (MJPEG: multipart/x-mixed-replace, one JPEG per part)',
      description:
        'At most `fps` frames a second; a frame the viewer is not ready for is dropped, never queued, so the view stays current on a slow link. ' +
        'Works as the `src` of an <img>. The device stops capturing when the viewer goes away. Without a video signal it sends one "no signal" picture ' +
        'and goes on once the signal is back.',
      security,
      ...screen,
      request: { params: DeviceIdParam, query: K.LiveQuerySchema },
      responses: {
        200: { description: 'The live view, until the viewer closes it', content: { 'multipart/x-mixed-replace': { schema: binary } } },
        ...screenErrors,
        429: errorResponse('The screen has as many live views as it serves at once (SCREEN_BUSY)'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const q = c.req.valid('query');
      const ask: ScreenRequest = { mode: 'live', format: 'jpeg', quality: q.quality, fps: q.fps, ...maxSize(q) };
      return fromHub(c, id, await screenRequest(c.env, id, ask, c.req.raw.signal));
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/kvm/layouts',
      tags,
      summary: 'The keyboard layouts a text can be typed in',
      security,
      ...allows(),
      responses: { 200: json(LayoutList, 'The layouts, by id'), 401: authErrors[401] },
    }),
    (c) => c.json({ layouts: LAYOUTS.map((l) => ({ id: l.id, name: l.name })) }, 200),
  );
}
