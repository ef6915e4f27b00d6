// A tunnel's access settings as stored: which mode, and for basic the user with a PBKDF2 hash of
// the password, for bearer the SHA-256 of a token the relay makes. The token itself leaves the
// relay once, in the answer to the call that made it; no secret is ever read back out.
import type { z } from 'zod';
import type { CreateTunnelAccessSchema, UpdateTunnelAccess } from '../../shared/api/tunnels.ts';
import { randomToken, sha256Hex } from '../auth/crypto.ts';
import { hashPassword } from '../auth/password.ts';
import type { Tunnel } from '../../shared/db/schema.ts';
import { validationError } from '../errors.ts';

export const BEARER_TOKEN_PREFIX = 'ptt_';
/** Enough of the token to tell two apart in a list, far too little to guess the rest. */
const SHOWN_PREFIX_LENGTH = BEARER_TOKEN_PREFIX.length + 6;

export type AccessInput = z.infer<typeof CreateTunnelAccessSchema> | UpdateTunnelAccess;
export type AccessColumns = Pick<Tunnel, 'access' | 'basicUser' | 'basicPasswordHash' | 'bearerTokenHash' | 'bearerPrefix'>;

const NONE = { basicUser: null, basicPasswordHash: null, bearerTokenHash: null, bearerPrefix: null } as const;

/**
 * The columns for `input`, given the tunnel's current ones (null when creating). A basic tunnel
 * may keep its password and a bearer tunnel its token; anything else is made anew.
 */
export async function accessColumns(input: AccessInput, current: AccessColumns | null): Promise<{ columns: AccessColumns; bearerToken?: string }> {
  switch (input.mode) {
    case 'public':
    case 'pirelay':
      return { columns: { access: input.mode, ...NONE } };
    case 'basic': {
      let hash: string | null = null;
      if (input.password !== undefined) hash = await hashPassword(input.password);
      else if (current?.access === 'basic') hash = current.basicPasswordHash;
      if (!hash) {
        throw validationError('Invalid request json', {
          target: 'json',
          issues: [{ path: 'access.password', message: 'a password is required when a tunnel starts using basic access', code: 'custom' }],
        });
      }
      return { columns: { access: 'basic', ...NONE, basicUser: input.username, basicPasswordHash: hash } };
    }
    case 'bearer': {
      const rotate = 'rotate' in input && input.rotate === true;
      if (current?.access === 'bearer' && current.bearerTokenHash && !rotate) {
        return { columns: { access: 'bearer', ...NONE, bearerTokenHash: current.bearerTokenHash, bearerPrefix: current.bearerPrefix } };
      }
      const token = randomToken(BEARER_TOKEN_PREFIX);
      return {
        columns: { access: 'bearer', ...NONE, bearerTokenHash: await sha256Hex(token), bearerPrefix: token.slice(0, SHOWN_PREFIX_LENGTH) },
        bearerToken: token,
      };
    }
  }
}
