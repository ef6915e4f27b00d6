// The Worker's secret box: the places of the values it seals (variable secrets, TOTP secrets,
// alert rules' channels) over the AES-256-GCM core in shared/secret-box.ts (shared so the device
// hubs can open a rule's channels), with the core's failures as the API's 503 SECRETS_UNAVAILABLE.
import { ApiError } from '../errors.ts';
import * as box from '../../shared/secret-box.ts';

export type { SecretKeys } from '../../shared/secret-box.ts';
export { alertRulePlace, keyBytes, sealedKeyId } from '../../shared/secret-box.ts';

/** The place of a variable's secret value. */
export const variablePlace = (variableId: string) => `variable:${variableId}`;
/** The place of a user's TOTP secret. */
export const totpPlace = (userId: string) => `totp:${userId}`;

async function mapped<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof box.SecretBoxError) throw new ApiError(503, 'SECRETS_UNAVAILABLE', e.message);
    throw e;
  }
}

/** Seals `plaintext` for the place named by `aad`: "<key id>.<iv>.<ciphertext and tag>". */
export const seal = (env: box.SecretKeys, plaintext: string, aad: string) => mapped(box.seal(env, plaintext, aad));
/** Opens a sealed value; throws SECRETS_UNAVAILABLE when its key is not configured or it does not open. */
export const open = (env: box.SecretKeys, sealed: string, aad: string) => mapped(box.open(env, sealed, aad));
/** The id of VARIABLES_KEY, to find values still sealed under another key. */
export const currentKeyId = (env: box.SecretKeys) => mapped(box.currentKeyId(env));
/** The value sealed again under VARIABLES_KEY, or null when it already is. */
export const reseal = (env: box.SecretKeys, sealed: string, aad: string) => mapped(box.reseal(env, sealed, aad));
