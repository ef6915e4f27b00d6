// The enrollment call an agent makes once: POST /api/v1/enroll with an enrollment token, its
// Ed25519 public key and its hardware facts. The device then waits for approval (or is approved
// at once when the token says so).
import { z } from 'zod';
import { DeviceFactsSchema } from './device-info.ts';

/** An Ed25519 public key as a JWK (RFC 8037): only the public part is ever sent. */
export const Ed25519PublicJwkSchema = z
  .object({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x must be a 32-byte base64url value'),
  })
  .strip();

export const EnrollRequestSchema = z.object({
  token: z.string().min(8).max(256),
  public_key: Ed25519PublicJwkSchema,
  facts: DeviceFactsSchema,
  agent_version: z.string().max(64),
  /** A display name for the device; defaults to its hostname. */
  name: z.string().min(1).max(64).optional(),
});
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

export const EnrollResponseSchema = z.object({
  device_id: z.string(),
  name: z.string(),
  status: z.enum(['pending', 'approved']),
});
export type EnrollResponse = z.infer<typeof EnrollResponseSchema>;
