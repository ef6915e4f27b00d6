// The tunnel-control API (tunnel-control-api.txt) at /tunnel-api/<call>, so scripts that open a
// tunnel, use it and close it again work against the relay:
//
//   /tunnel-api/connect?device_id=…&tunnel=<name>&api_key=…          open the tunnel
//   /tunnel-api/disconnect?device_id=…&tunnel=<name>&api_key=…       close it (open streams are cut)
//   /tunnel-api/client_status?device_id=…&api_key=…                  is the device online?
//   /tunnel-api/set_allow_clientless?device_id=…[&tunnel=…]&allow=true|false
//
// The seed's own sample script calls `<call>?dbid=…&host_uuid=…&ports_id=…&user_id=…`: dbid is
// the API key, host_uuid the device, ports_id the tunnel (its name or id), and user_id, if given,
// must be the id of the key's owner (403, code 31, otherwise), so that script works with only its
// host changed.
//
// GET or POST; parameters may come in the query string, a form body or a JSON body. The API key
// may also be sent as the Authorization header (Bearer, or `curl -u KEY:`). Every answer is
// {message, error_code, success} (set_allow_clientless adds allow_clientless first):
//
//   0  OK                  HTTP 200
//   11 not connected       200  connect failed: the tunnel is disabled, or the device's hub could not be told
//   12 not disconnected    200  the tunnel is closed in D1 but the hub could not be told to cut its streams; retry
//   21 invalid api call    200  unknown <call>
//   22 too many API calls  200  more than 60 calls a minute with one credential (counted per isolate, in memory;
//                               Retry-After says when to try again)
//   23 client blocked      200  the device is pending, rejected or revoked
//   24 client inactive     200  the device is offline: client_status answers success:true with "offline",
//                               connect answers success:false unless the tunnel allows clientless connections
//   31 wrong data          200  missing or malformed parameters, unknown device or tunnel, allow not true|false
//
// The seed has no code for the caller's own credentials (its URLs carry account ids instead),
// so those keep HTTP's statuses: 401 for a missing or invalid API key and 403 for one without
// the permission (tunnels:read for client_status, tunnels:write otherwise), both with code 31.
//
// A device of a team the caller is not in is answered exactly like an unknown one (31, "no
// device"); a member of a team that requires two-factor login who has none gets 403 with code 31.
// Calls that change a tunnel are recorded in the audit log as tunnel.update with the call's name.
import { z } from 'zod';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authenticate, principalFor } from '../auth/middleware.ts';
import { assertInTeam, teamRoleFor } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { ApiError, notFound } from '../errors.ts';
import { permits } from '../auth/permissions.ts';
import { credentialFrom, credentialIdOf, type Principal } from '../auth/principal.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { TunnelRefSchema } from '../../shared/api/tunnels.ts';
import { hubFor } from '../devices/hub.ts';
import type { Tunnel } from '../../shared/db/schema.ts';
import { findDeviceRef, findDeviceTunnel, setAllowClientless, updateTunnel, type DeviceRef } from '../tunnels/queries.ts';
import { tunnelsChanged, tunnelsChangedQuietly } from '../tunnels/notify.ts';
import { RateWindow } from '../tunnels/rate-window.ts';
import { TUNNEL_CONTROL_CALLS } from '../auth/raw-routes.ts';

export const ErrorCode = {
  OK: 0,
  NOT_CONNECTED: 11,
  NOT_DISCONNECTED: 12,
  INVALID_CALL: 21,
  TOO_MANY_CALLS: 22,
  CLIENT_BLOCKED: 23,
  CLIENT_INACTIVE: 24,
  WRONG_DATA: 31,
} as const;

export const CALLS_PER_MINUTE = 60;
const budget = new RateWindow(CALLS_PER_MINUTE);

const CALLS = TUNNEL_CONTROL_CALLS;
type Call = keyof typeof CALLS;
const isCall = (name: string): name is Call => Object.hasOwn(CALLS, name);

/** What one call answers: the seed's three fields, sometimes one more, and the HTTP status. */
class Outcome {
  constructor(
    readonly code: number,
    readonly message: string,
    readonly success = code === ErrorCode.OK,
    readonly status: ContentfulStatusCode = 200,
    readonly headers: Record<string, string> = {},
  ) {}
}

const wrongData = (why: string) => new Outcome(ErrorCode.WRONG_DATA, `Wrong data: ${why}`);

/** The sample script's names for our parameters. */
const ALIASES = { api_key: 'dbid', device_id: 'host_uuid', tunnel: 'ports_id' } as const;

/** The call's parameters once the key is taken out (api_key and the Authorization header). */
const CallParams = z.object({
  device_id: DeviceIdSchema,
  tunnel: TunnelRefSchema.optional(),
  user_id: z.string().min(1).max(64).optional(),
  allow: z.string().toLowerCase().pipe(z.enum(['true', 'false'], 'must be true or false')).optional(),
});
type CallParams = z.infer<typeof CallParams>;

/** Our names for the sample script's parameters; one parameter given twice, differently, is refused. */
function unalias(params: Record<string, string>): Record<string, string> | Outcome {
  const out = { ...params };
  for (const [ours, theirs] of Object.entries(ALIASES)) {
    const alias = params[theirs];
    if (alias === undefined) continue;
    if (params[ours] !== undefined && params[ours] !== alias) return wrongData(`give ${ours} or ${theirs}, not both`);
    out[ours] = alias;
  }
  return out;
}

function parseParams(params: Record<string, string>): CallParams | Outcome {
  const parsed = CallParams.safeParse(params);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return wrongData(`${issue.path.join('.')}: ${issue.message}`);
}

const MAX_BODY_BYTES = 16 * 1024;
const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => c.json({ message: `Wrong data: request body is larger than ${MAX_BODY_BYTES} bytes`, error_code: ErrorCode.WRONG_DATA, success: false }, 413),
});

/** Query parameters, overlaid with the fields of a form or JSON body; values stay strings. */
async function paramsOf(c: Context<AppEnv>): Promise<Record<string, string> | Outcome> {
  const params: Record<string, string> = { ...c.req.query() };
  if (c.req.method !== 'POST') return params;
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  try {
    if (type.startsWith('multipart/form-data')) {
      (await c.req.formData()).forEach((v, k) => {
        if (typeof v === 'string') params[k] = v;
      });
      return params;
    }
    const text = new TextDecoder().decode(await c.req.arrayBuffer());
    if (!text.trim()) return params;
    if (type.includes('json')) {
      const json = JSON.parse(text) as unknown;
      if (!json || typeof json !== 'object' || Array.isArray(json)) return wrongData('the JSON body must be an object');
      for (const [k, v] of Object.entries(json)) if (['string', 'boolean', 'number'].includes(typeof v)) params[k] = String(v);
      return params;
    }
    new URLSearchParams(text).forEach((v, k) => {
      params[k] = v;
    });
    return params;
  } catch {
    return wrongData('the request body could not be read');
  }
}

async function callerOf(c: Context<AppEnv>, params: { api_key?: string }): Promise<Principal | null> {
  if (credentialFrom(c.req.header('authorization'))) return authenticate(c);
  const caller = params.api_key ? await principalFor(c.env, c.executionCtx, params.api_key) : null;
  // The request's principal, as for any route: the audit log names it as the actor.
  c.set('principal', caller);
  return caller;
}

/** The team check in this layer's shape: null when the caller may act on the device. */
function teamRefusal(caller: Principal, device: DeviceRef, call: Call): Outcome | null {
  const hidden = notFound('Device');
  try {
    assertInTeam(caller, device.teamId, teamRoleFor(CALLS[call]), () => hidden);
    return null;
  } catch (e) {
    if (e === hidden) return wrongData(`no device ${device.id}`);
    if (e instanceof ApiError) return new Outcome(ErrorCode.WRONG_DATA, `Forbidden: ${e.message}`, false, e.status);
    throw e;
  }
}

async function run(c: Context<AppEnv>, call: Call, params: CallParams, device: DeviceRef, tunnel: Tunnel | undefined): Promise<Outcome> {
  switch (call) {
    case 'client_status': {
      const { online } = await hubFor(c.env, device.id).status();
      return online ? new Outcome(ErrorCode.OK, 'online') : new Outcome(ErrorCode.CLIENT_INACTIVE, 'offline', true);
    }

    case 'connect': {
      if (!tunnel) return wrongData('tunnel is required');
      if (!tunnel.enabled) return new Outcome(ErrorCode.NOT_CONNECTED, `Not connected: tunnel "${tunnel.name}" is disabled`);
      if (!tunnel.allowClientless && !(await hubFor(c.env, device.id).status()).online) {
        return new Outcome(ErrorCode.CLIENT_INACTIVE, 'Client inactive: the device is offline and the tunnel does not allow clientless connections');
      }
      if (tunnel.connected) return new Outcome(ErrorCode.OK, 'OK');
      await updateTunnel(c.env.DB, tunnel.id, { connected: true, updatedAt: Date.now() });
      try {
        await tunnelsChanged(c.env, device.id);
      } catch (e) {
        console.error('tunnel-control connect: hub not told', tunnel.id, e);
        await updateTunnel(c.env.DB, tunnel.id, { connected: false, updatedAt: Date.now() });
        await tunnelsChangedQuietly(c.env, device.id);
        return new Outcome(ErrorCode.NOT_CONNECTED, 'Not connected: the device could not be reached; try again');
      }
      return new Outcome(ErrorCode.OK, 'OK');
    }

    case 'disconnect': {
      if (!tunnel) return wrongData('tunnel is required');
      // Closed in D1 first, so a visitor is refused even if the hub cannot be told right now.
      if (tunnel.connected) await updateTunnel(c.env.DB, tunnel.id, { connected: false, updatedAt: Date.now() });
      try {
        await tunnelsChanged(c.env, device.id);
      } catch (e) {
        console.error('tunnel-control disconnect: hub not told', tunnel.id, e);
        return new Outcome(ErrorCode.NOT_DISCONNECTED, 'Not disconnected: open connections could not be closed; try again');
      }
      return new Outcome(ErrorCode.OK, 'OK');
    }

    case 'set_allow_clientless': {
      const allow = params.allow;
      if (allow === undefined) return wrongData('allow must be true or false');
      // Without a tunnel, the setting applies to all of the device's tunnels: the seed sets it
      // per client (device), for the time its client script is being replaced.
      await setAllowClientless(c.env.DB, device.id, tunnel?.id ?? null, allow === 'true', Date.now());
      await tunnelsChangedQuietly(c.env, device.id);
      return new Outcome(ErrorCode.OK, 'success');
    }
  }
}

async function handle(c: Context<AppEnv>, name: string): Promise<Response> {
  const reply = (o: Outcome, extra: Record<string, unknown> = {}) => {
    for (const [k, v] of Object.entries(o.headers)) c.header(k, v);
    return c.json({ ...extra, message: o.message, error_code: o.code, success: o.success }, o.status);
  };
  if (!isCall(name)) return reply(new Outcome(ErrorCode.INVALID_CALL, `Invalid API call "${name}"; use one of ${Object.keys(CALLS).join(', ')}`));

  const raw = await paramsOf(c);
  if (raw instanceof Outcome) return reply(raw);
  const named = unalias(raw);
  if (named instanceof Outcome) return reply(named);

  const caller = await callerOf(c, named);
  if (!caller) {
    const msg = credentialFrom(c.req.header('authorization')) || named.api_key ? 'Invalid or expired API key' : 'An API key is required (api_key parameter or Authorization header)';
    return reply(new Outcome(ErrorCode.WRONG_DATA, msg, false, 401, { 'www-authenticate': 'Bearer realm="pirelay"' }));
  }
  const wait = budget.hit(credentialIdOf(caller));
  if (wait) return reply(new Outcome(ErrorCode.TOO_MANY_CALLS, `Too many API calls; try again in ${wait} s`, false, 200, { 'retry-after': String(wait) }));
  if (!permits(caller.permissions, CALLS[name])) {
    return reply(new Outcome(ErrorCode.WRONG_DATA, `Forbidden: ${name} needs the ${CALLS[name]} permission`, false, 403));
  }

  if (named.device_id === undefined || named.device_id === '') return reply(wrongData('device_id is required'));
  const params = parseParams(named);
  if (params instanceof Outcome) return reply(params);
  // The sample script names the account; another account's id is someone else's script, refused.
  if (params.user_id !== undefined && params.user_id !== caller.userId) {
    return reply(new Outcome(ErrorCode.WRONG_DATA, `Wrong data: user_id ${params.user_id} is not the owner of this API key`, false, 403));
  }
  const device = await findDeviceRef(c.env.DB, params.device_id);
  if (!device) return reply(wrongData(`no device ${params.device_id}`));
  const refused = teamRefusal(caller, device, name);
  if (refused) return reply(refused);
  if (device.status !== 'approved') return reply(new Outcome(ErrorCode.CLIENT_BLOCKED, `Client blocked: the device is ${device.status}`));

  let tunnel: Tunnel | undefined;
  if (params.tunnel !== undefined) {
    tunnel = await findDeviceTunnel(c.env.DB, device.id, params.tunnel);
    if (!tunnel) return reply(wrongData(`device ${device.id} has no tunnel "${params.tunnel}"`));
  }

  const outcome = await run(c, name, params, device, tunnel);
  if (outcome.success && name !== 'client_status') {
    // Without a tunnel, set_allow_clientless changed all of the device's tunnels.
    const target = tunnel ? { targetType: 'tunnel', targetId: tunnel.id } : { targetType: 'device', targetId: device.id };
    const allow = params.allow === undefined ? {} : { allow: params.allow === 'true' };
    audit(c, { action: 'tunnel.update', ...target, teamId: device.teamId, details: { call: name, device_id: device.id, ...(tunnel ? { name: tunnel.name } : {}), ...allow } });
  }
  if (name === 'set_allow_clientless' && outcome.success) return reply(outcome, { allow_clientless: params.allow === 'true' });
  return reply(outcome);
}

export function registerTunnelControlRoutes(app: App) {
  app.on(['GET', 'POST'], '/tunnel-api/:call', limitBody, (c) => handle(c, c.req.param('call')));
  app.on(['GET', 'POST'], '/tunnel-api', (c) => handle(c, ''));
  app.on(['GET', 'POST'], '/tunnel-api/', (c) => handle(c, ''));
}
