// Creating and changing a tunnel: fills in the defaults (http, public; tcp, pirelay), turns the
// access settings into stored secrets, enforces the one rule that spans fields (a tcp tunnel is
// reached with a pirelay credential), writes D1, then tells the device's hub.
import { TCP_ACCESS_RULE, targetOf, type CreateTunnel, type UpdateTunnel } from '../../shared/api/tunnels.ts';
import { randomId } from '../auth/crypto.ts';
import type { Tunnel } from '../db/schema.ts';
import { notFound, validationError } from '../errors.ts';
import { getDevice } from '../devices/queries.ts';
import { accessColumns } from './secrets.ts';
import { deleteTunnel, insertTunnel, updateTunnel } from './queries.ts';
import { tunnelsChangedQuietly } from './notify.ts';

export interface Saved {
  row: Tunnel;
  /** Present only when this call made a bearer token: the one time it is shown. */
  bearerToken?: string;
}

const tcpAccessError = () =>
  validationError('Invalid request json', { target: 'json', issues: [{ path: 'access.mode', message: TCP_ACCESS_RULE, code: 'custom' }] });

export async function createTunnel(env: Env, deviceId: string, body: CreateTunnel, now = Date.now()): Promise<Saved> {
  await getDevice(env.DB, deviceId);
  const kind = body.kind ?? 'http';
  const { columns, bearerToken } = await accessColumns(body.access ?? { mode: kind === 'tcp' ? 'pirelay' : 'public' }, null);
  const target = targetOf(body)!; // the schema refused bodies without one
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

export async function changeTunnel(env: Env, current: Tunnel, body: UpdateTunnel, now = Date.now()): Promise<Saved> {
  const kind = body.kind ?? current.kind;
  const access = body.access ? await accessColumns(body.access, current) : null;
  if (kind === 'tcp' && (access?.columns.access ?? current.access) !== 'pirelay') throw tcpAccessError();
  const target = targetOf(body);
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
