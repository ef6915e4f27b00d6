// The device's Ed25519 identity: made at enrollment, then used to sign the short-lived JWT that
// authenticates each connection (the relay checks it against the public key it registered).
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { AGENT_JWT_AUDIENCE } from '../shared/constants.ts';

export async function newKeyPair(): Promise<{ privateJwk: JWK & { d: string }; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateJwk = (await exportJWK(privateKey)) as JWK & { d: string };
  const { kty, crv, x } = await exportJWK(publicKey);
  return { privateJwk, publicJwk: { kty, crv, x } };
}

/** A connect token valid for one minute. */
export async function signConnectToken(deviceId: string, privateJwk: JWK): Promise<string> {
  const key = await importJWK(privateJwk, 'EdDSA');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setSubject(deviceId)
    .setAudience(AGENT_JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('60s')
    .setJti(crypto.randomUUID())
    .sign(key);
}
