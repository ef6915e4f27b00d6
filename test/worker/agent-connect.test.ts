// /agent/connect against a hostile caller, inside workerd: the connect token only in the header,
// used once, signed with a jti; an unknown device answered exactly like a bad signature; and a
// live connection replaced by a second one of the same device recorded on the device.
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { api, BASE, userWithKey } from './helpers.ts';
import { agentJwt, connectAgent, connectRequest, enrollDevice, keyPair } from './device-helpers.ts';
import { randomId } from '../../worker/auth/crypto.ts';
import { AGENT_JWT_AUDIENCE } from '../../shared/constants.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

const probe = (jwt: string) => SELF.fetch(`${BASE}/agent/connect`, { headers: { Authorization: `Bearer ${jwt}` } });
const answer = async (res: Response) => ({ status: res.status, body: await res.json() });

describe('agent connect tokens', () => {
  it('are good for one request: the same token is refused the second time, a fresh one is not', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const jwt = await agentJwt(dev.deviceId, dev.privateKey);
    expect((await probe(jwt)).status).toBe(426);
    const again = await answer(await probe(jwt));
    expect(again).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
    expect((await connectRequest(jwt)).status).toBe(401);
    expect((await probe(await agentJwt(dev.deviceId, dev.privateKey))).status).toBe(426);
  });

  it('without a jti are refused', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setSubject(dev.deviceId).setAudience(AGENT_JWT_AUDIENCE).setIssuedAt().setExpirationTime('60s').sign(dev.privateKey);
    expect(await answer(await connectRequest(jwt))).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
  });

  it('are refused in the query string, even when valid', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const jwt = await agentJwt(dev.deviceId, dev.privateKey);
    const res = await SELF.fetch(`${BASE}/agent/connect?token=${encodeURIComponent(jwt)}`, { headers: { Upgrade: 'websocket' } });
    expect(res.status).toBe(401);
    expect(res.webSocket).toBeFalsy();
    expect(((await res.json()) as { error: string }).error).toMatch(/Authorization header/);
    // ...and the refused token was not spent: it still works where it belongs.
    expect((await probe(jwt)).status).toBe(426);
  });

  it('give an unknown device the same answer as a bad signature', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const other = await keyPair();
    const badSignature = await answer(await connectRequest(await agentJwt(dev.deviceId, other.privateKey)));
    const unknownDevice = await answer(await connectRequest(await agentJwt(randomId(), dev.privateKey)));
    const neverEnrolled = await answer(await connectRequest(await agentJwt(randomId(), other.privateKey)));
    expect(badSignature.status).toBe(401);
    // Everything but the device id itself (which the caller chose) is identical.
    expect(unknownDevice).toEqual(badSignature);
    expect(neverEnrolled).toEqual(badSignature);
    expect(JSON.stringify(badSignature)).not.toContain(dev.deviceId);
  });
});

describe('identity conflicts', () => {
  it('a second live connection replaces the first (4000) and the device shows the replacement', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const first = await connectAgent(dev.deviceId, dev.privateKey);
    const before = await api(`/api/v1/devices/${dev.deviceId}`, { key: admin });
    expect(((await before.json()) as { identity_conflict: unknown }).identity_conflict).toBeNull();

    const second = await connectAgent(dev.deviceId, dev.privateKey);
    expect((await first.closed).code).toBe(4000);
    const third = await connectAgent(dev.deviceId, dev.privateKey);
    expect((await second.closed).code).toBe(4000);

    const res = await api(`/api/v1/devices/${dev.deviceId}`, { key: admin });
    const body = (await res.json()) as { online: boolean; identity_conflict: { replacements: number; first_at: string; last_at: string; addresses: string[] } };
    expect(body.online).toBe(true);
    expect(body.identity_conflict).toMatchObject({ replacements: 2 });
    expect(Date.parse(body.identity_conflict.last_at)).toBeGreaterThanOrEqual(Date.parse(body.identity_conflict.first_at));
    expect(body.identity_conflict.addresses.length).toBeGreaterThan(0);
    third.ws.close(1000, 'done');
  });
});
