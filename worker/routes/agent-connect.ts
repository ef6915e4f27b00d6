// GET /agent/connect: where agents dial in. The agent proves who it is with a short-lived
// EdDSA JWT signed by the private key it made at enrollment; we verify it against the public
// key in D1 and hand the upgrade to that device's DeviceHub. A device can only act as itself.
//
// The token rides only in the Authorization header (a URL ends up in access logs), is good for
// one request (its jti is remembered by the device's hub until the token expires), and an unknown
// device gets the very answer a bad signature gets, so device ids cannot be probed.
import { eq } from 'drizzle-orm';
import { decodeJwt, generateKeyPair, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { App } from '../openapi.ts';
import { ApiError, unauthorized } from '../errors.ts';
import { credentialFrom } from '../auth/principal.ts';
import { getDb } from '../../shared/db/index.ts';
import { devices } from '../../shared/db/schema.ts';
import { hubFor } from '../devices/hub.ts';
import { clientIpOf } from '../client-ip.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { AGENT_JWT_AUDIENCE, AGENT_JWT_MAX_AGE_S } from '../../shared/constants.ts';
import { ErrorCode } from '../../shared/codes.ts';

const INVALID_TOKEN = 'Invalid agent token';
/** Longer jtis than this are no token of ours (the agent sends a UUID). */
const MAX_JTI_LENGTH = 128;

/**
 * A key no token verifies against: an unknown device's token is still checked (and fails) like a
 * real one, so neither the answer nor its timing tells an unknown device from a bad signature.
 */
let decoyKey: Promise<CryptoKey> | null = null;
const decoy = () => (decoyKey ??= generateKeyPair('EdDSA', { crv: 'Ed25519' }).then((k) => k.publicKey as CryptoKey));

export function registerAgentConnectRoute(app: App) {
  app.get('/agent/connect', async (c) => {
    if (new URL(c.req.url).searchParams.has('token')) throw unauthorized('Send the agent token in the Authorization header, not in the URL');
    const token = credentialFrom(c.req.header('authorization'));
    if (!token) throw unauthorized('Missing agent token');
    let deviceId: string;
    try {
      const claims = decodeJwt(token);
      if (typeof claims.sub !== 'string' || !claims.sub) throw new Error('no subject');
      deviceId = claims.sub;
    } catch {
      throw unauthorized('Malformed agent token');
    }
    const device = await getDb(c.env.DB).select({ status: devices.status, publicKey: devices.publicKey }).from(devices).where(eq(devices.id, deviceId)).get();
    let claims: JWTPayload;
    try {
      const key = device?.publicKey ? await importJWK(JSON.parse(device.publicKey) as JWK, 'EdDSA') : await decoy();
      ({ payload: claims } = await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        audience: AGENT_JWT_AUDIENCE,
        subject: deviceId,
        maxTokenAge: `${AGENT_JWT_MAX_AGE_S}s`,
        requiredClaims: ['exp', 'iat', 'jti'],
      }));
    } catch {
      throw unauthorized(INVALID_TOKEN);
    }
    if (!device || typeof claims.jti !== 'string' || !claims.jti || claims.jti.length > MAX_JTI_LENGTH) throw unauthorized(INVALID_TOKEN);
    // Remembered until the token could no longer pass the checks above anyway.
    const usableUntil = Math.min(claims.exp! * 1000, (claims.iat! + AGENT_JWT_MAX_AGE_S) * 1000);
    const hub = hubFor(c.env, deviceId);
    if (!(await hub.claimConnectToken(claims.jti, usableUntil))) throw unauthorized('Agent token was already used');
    if (device.status === 'pending') throw new ApiError(403, ErrorCode.DEVICE_PENDING, 'Device is waiting for approval', { device_id: deviceId });
    if (device.status !== 'approved') throw new ApiError(403, ErrorCode.DEVICE_REVOKED, `Device is ${device.status}`, { device_id: deviceId, status: device.status });

    // Checked after authentication on purpose: an agent whose dial failed sends a plain GET to
    // learn why (pending, revoked, bad key), and 426 tells it that all is well but the upgrade.
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
      throw new ApiError(426, ErrorCode.UPGRADE_REQUIRED, 'Expected a WebSocket upgrade', { device_id: deviceId });
    }
    const headers = new Headers(c.req.raw.headers);
    // Internal headers come from the relay alone: an agent cannot pose as a tunnel visitor.
    const internal: string[] = [];
    headers.forEach((_, name) => name.startsWith('x-pirelay-') && internal.push(name));
    for (const name of internal) headers.delete(name);
    headers.set(INTERNAL.kind, 'agent');
    headers.set(INTERNAL.agentAddress, clientIpOf(c.req.raw, c.env));
    return hub.fetch(new Request(c.req.raw.url, { headers }));
  });
}
