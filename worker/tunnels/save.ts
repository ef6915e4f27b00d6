// Creating and changing a tunnel: fills in the defaults (http, public; tcp, pirelay), turns the
// access settings into stored secrets, enforces the rules that span fields (a tcp tunnel is
// reached with a pirelay credential) or need to know where the relay is (a target may not be the
// relay itself: each visit would come back as another visit), writes D1, then tells the device's hub.
import { TCP_ACCESS_RULE, targetLoopReason, targetOf, type CreateTunnel, type TunnelTargetAddress, type UpdateTunnel } from '../../shared/api/tunnels.ts';
import { randomId } from '../auth/crypto.ts';
import type { Tunnel } from '../../shared/db/schema.ts';
import { notFound, unprocessable, validationError } from '../errors.ts';
import { getDevice } from '../devices/queries.ts';
import { accessColumns } from './secrets.ts';
import { deleteTunnel, insertTunnel, updateTunnel } from './queries.ts';
import { tunnelsChangedQuietly } from './notify.ts';
import { tunnelDomain } from './ingress.ts';

export interface Saved {
  row: Tunnel;
  /** Present only when this call made a bearer token: the one time it is shown. */
  bearerToken?: string;
}

const tcpAccessError = () =>
  validationError('Invalid request json', { target: 'json', issues: [{ path: 'access.mode', message: TCP_ACCESS_RULE, code: 'custom' }] });

/** Refuses a target that points back at the relay (`requestUrl`: where the API was called). */
function refuseLoop(env: Env, body: CreateTunnel | UpdateTunnel, target: TunnelTargetAddress | undefined, requestUrl: URL) {
  const reason = target && targetLoopReason(target, { tunnelDomain: tunnelDomain(env), requestUrl });
  if (!reason) return;
  const field = body.target === undefined ? 'target_host' : 'target';
  throw unprocessable('TUNNEL_LOOP', `The target would loop back into the relay: ${reason}`, { field, value: body[field] });
}

export async function createTunnel(env: Env, deviceId: string, body: CreateTunnel, requestUrl: URL, now = Date.now()): Promise<Saved> {
  const target = targetOf(body)!; // the schema refused bodies without one
  refuseLoop(env, body, target, requestUrl);
  await getDevice(env.DB, deviceId);
  const kind = body.kind ?? 'http';
  const { columns, bearerToken } = await accessColumns(body.access ?? { mode: kind === 'tcp' ? 'pirelay' : 'public' }, null);
  const row = await insertTunnel(env.DB, {
    id: randomId(8),
    deviceId,
    name: body.name,
    kind,
    targetHost: target.target_host,
    targetPort: target.target_port,
    ...columns,
    rateLimitPerMinute: body.rate_limit_per_minute ?? null,
    enabled: body.enabled ?? true,
    connected: true,
    allowClientless: body.allow_clientless ?? true,
    createdAt: now,
    updatedAt: now,
  });
  await tunnelsChangedQuietly(env, deviceId);
  return { row, bearerToken };
}

export async function changeTunnel(env: Env, current: Tunnel, body: UpdateTunnel, requestUrl: URL, now = Date.now()): Promise<Saved> {
  const target = targetOf(body);
  refuseLoop(env, body, target, requestUrl);
  const kind = body.kind ?? current.kind;
  const access = body.access ? await accessColumns(body.access, current) : null;
  if (kind === 'tcp' && (access?.columns.access ?? current.access) !== 'pirelay') throw tcpAccessError();
  const row = await updateTunnel(env.DB, current.id, {
    name: body.name,
    kind: body.kind,
    targetHost: target?.target_host,
    targetPort: target?.target_port,
    ...access?.columns,
    rateLimitPerMinute: body.rate_limit_per_minute,
    enabled: body.enabled,
    allowClientless: body.allow_clientless,
    // Also what invalidates remembered basic-auth checks, so a new password takes effect at once.
    updatedAt: Math.max(now, current.updatedAt + 1),
  });
  if (!row) throw notFound('Tunnel', { tunnel: current.id });
  await tunnelsChangedQuietly(env, current.deviceId);
  return { row, bearerToken: access?.bearerToken };
}

export async function removeTunnel(env: Env, tunnel: Tunnel): Promise<void> {
  if (!(await deleteTunnel(env.DB, tunnel.id))) throw notFound('Tunnel', { tunnel: tunnel.id });
  await tunnelsChangedQuietly(env, tunnel.deviceId);
}
