// GET /agent/connect: where agents dial in. The agent proves who it is with a short-lived
// EdDSA JWT signed by the private key it made at enrollment; we verify it against the public
// key in D1 and hand the upgrade to that device's DeviceHub. A device can only act as itself.
import { decodeJwt, importJWK, jwtVerify, type JWK } from 'jose';
import type { App } from '../openapi.ts';
import { ApiError, unauthorized } from '../errors.ts';
import { credentialFrom } from '../auth/principal.ts';
import { hubFor } from '../devices/hub.ts';
import { AGENT_JWT_AUDIENCE, AGENT_JWT_MAX_AGE_S } from '../../shared/constants.ts';

export function registerAgentConnectRoute(app: App) {
  app.get('/agent/connect', async (c) => {
    const token = credentialFrom(c.req.header('authorization')) ?? c.req.query('token');
    if (!token) throw unauthorized('Missing agent token');
    let deviceId: string;
    try {
      const claims = decodeJwt(token);
      if (typeof claims.sub !== 'string' || !claims.sub) throw new Error('no subject');
      deviceId = claims.sub;
    } catch {
      throw unauthorized('Malformed agent token');
    }
    const device = await c.env.DB.prepare('SELECT status, public_key FROM devices WHERE id = ?1')
      .bind(deviceId)
      .first<{ status: string; public_key: string | null }>();
    if (!device || !device.public_key) throw unauthorized('Unknown device');
    try {
      const key = await importJWK(JSON.parse(device.public_key) as JWK, 'EdDSA');
      await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        audience: AGENT_JWT_AUDIENCE,
        subject: deviceId,
        maxTokenAge: `${AGENT_JWT_MAX_AGE_S}s`,
        requiredClaims: ['exp', 'iat'],
      });
    } catch {
      throw unauthorized('Invalid agent token');
    }
    if (device.status === 'pending') throw new ApiError(403, 'DEVICE_PENDING', 'Device is waiting for approval', { device_id: deviceId });
    if (device.status !== 'approved') throw new ApiError(403, 'DEVICE_REVOKED', `Device is ${device.status}`, { device_id: deviceId, status: device.status });

    // Checked after authentication on purpose: an agent whose dial failed sends a plain GET to
    // learn why (pending, revoked, bad key), and 426 tells it that all is well but the upgrade.
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
      throw new ApiError(426, 'UPGRADE_REQUIRED', 'Expected a WebSocket upgrade', { device_id: deviceId });
    }
    const headers = new Headers(c.req.raw.headers);
    // Internal headers come from the relay alone: an agent cannot pose as a tunnel visitor.
    const internal: string[] = [];
    headers.forEach((_, name) => name.startsWith('x-pirelay-') && internal.push(name));
    for (const name of internal) headers.delete(name);
    headers.set('x-pirelay-device-id', deviceId);
    return hubFor(c.env, deviceId).fetch(new Request(c.req.raw.url, { headers }));
  });
}
