// The secret box on its own: what it seals opens only with the key that sealed it, at the place it
// was sealed for, and not at all once a byte of it changed; a rotation opens the previous key's
// values and moves them to the new one.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../worker/errors.ts';
import { currentKeyId, keyBytes, open, reseal, seal, sealedKeyId } from '../../worker/auth/secret-box.ts';

const A = env.VARIABLES_KEY!;
const B = 'ff'.repeat(32);
const PLAINTEXT = 'hunter2-päss-🔑';

async function refusal(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApiError);
  expect({ status: (e as ApiError).status, code: (e as ApiError).code }).toEqual({ status: 503, code: 'SECRETS_UNAVAILABLE' });
  return e as ApiError;
}

/** The same text with one character of its ciphertext part changed. */
function tampered(sealed: string): string {
  const [id, iv, ct] = sealed.split('.') as [string, string, string];
  const i = Math.floor(ct.length / 2);
  return `${id}.${iv}.${ct.slice(0, i)}${ct[i] === 'A' ? 'B' : 'A'}${ct.slice(i + 1)}`;
}

describe('secret box', () => {
  it('seals to "<key id>.<iv>.<ciphertext>" without the plaintext, and opens it again', async () => {
    const sealed = await seal({ VARIABLES_KEY: A }, PLAINTEXT, 'variable:1');
    expect(sealed.split('.')).toHaveLength(3);
    expect(sealedKeyId(sealed)).toBe(await currentKeyId({ VARIABLES_KEY: A }));
    expect(sealed).not.toContain('hunter2');
    expect(await open({ VARIABLES_KEY: A }, sealed, 'variable:1')).toBe(PLAINTEXT);
    // A fresh IV each time: the same value sealed twice looks different.
    expect(await seal({ VARIABLES_KEY: A }, PLAINTEXT, 'variable:1')).not.toBe(sealed);
  });

  it('refuses a tampered value', async () => {
    const sealed = await seal({ VARIABLES_KEY: A }, PLAINTEXT, 'variable:1');
    await refusal(open({ VARIABLES_KEY: A }, tampered(sealed), 'variable:1'));
    const [id, , ct] = sealed.split('.');
    const otherIv = (await seal({ VARIABLES_KEY: A }, 'x', 'variable:1')).split('.')[1];
    await refusal(open({ VARIABLES_KEY: A }, `${id}.${otherIv}.${ct}`, 'variable:1'));
    await refusal(open({ VARIABLES_KEY: A }, 'not a sealed value', 'variable:1'));
  });

  it('refuses a value moved to another place (wrong additional data)', async () => {
    const sealed = await seal({ VARIABLES_KEY: A }, PLAINTEXT, 'variable:1');
    await refusal(open({ VARIABLES_KEY: A }, sealed, 'variable:2'));
    await refusal(open({ VARIABLES_KEY: A }, sealed, 'totp:1'));
  });

  it('refuses a value under a key the relay does not have, and sealing without a key', async () => {
    const sealed = await seal({ VARIABLES_KEY: A }, PLAINTEXT, 'variable:1');
    const e = await refusal(open({ VARIABLES_KEY: B }, sealed, 'variable:1'));
    expect(e.message).toContain(sealedKeyId(sealed));
    expect(e.message).not.toContain(PLAINTEXT);
    await refusal(seal({}, PLAINTEXT, 'variable:1'));
    await refusal(seal({ VARIABLES_KEY: 'too short' }, PLAINTEXT, 'variable:1'));
  });

  it('opens the previous key during a rotation, and reseal moves a value to the current key', async () => {
    const underA = await seal({ VARIABLES_KEY: A }, PLAINTEXT, 'totp:u1');
    const rotating = { VARIABLES_KEY: B, VARIABLES_KEY_PREVIOUS: A };
    expect(await open(rotating, underA, 'totp:u1')).toBe(PLAINTEXT);
    const underB = (await reseal(rotating, underA, 'totp:u1'))!;
    expect(sealedKeyId(underB)).toBe(await currentKeyId({ VARIABLES_KEY: B }));
    expect(await open({ VARIABLES_KEY: B }, underB, 'totp:u1')).toBe(PLAINTEXT);
    // Already under the current key: nothing to do.
    expect(await reseal(rotating, underB, 'totp:u1')).toBeNull();
    // The place still binds through a reseal.
    await refusal(reseal(rotating, underA, 'totp:u2'));
  });

  it('takes a key as 64 hex characters or as base64 of 32 bytes', () => {
    const bytes = keyBytes(A)!;
    expect(bytes).toHaveLength(32);
    const b64 = btoa(String.fromCharCode(...bytes));
    expect(keyBytes(b64)).toEqual(bytes);
    expect(keyBytes(b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''))).toEqual(bytes);
    expect(keyBytes('00'.repeat(31))).toBeNull();
  });
});
