// worker/auth/totp.ts against RFC 6238 Appendix B (SHA-1) and RFC 4648's base32 test vectors,
// and the otpauth:// URI authenticator apps read.
import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, hotp, matchTotp, newTotpSecret, otpauthUri, timeStep, totpCode } from '../../worker/auth/totp.ts';

const RFC_SECRET = new TextEncoder().encode('12345678901234567890');
/** RFC 6238 Appendix B, SHA-1 rows: time (s) → the 8-digit TOTP. */
const VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('TOTP (RFC 6238, SHA-1)', () => {
  it('gives the RFC 6238 Appendix B codes, 8 digits and our 6 (their last six)', async () => {
    for (const [seconds, expected] of VECTORS) {
      const step = timeStep(seconds * 1000);
      expect(await hotp(RFC_SECRET, step, 8), `t=${seconds}`).toBe(expected);
      expect(await hotp(RFC_SECRET, step), `t=${seconds}`).toBe(expected.slice(2));
      // The same through the base32 secret, the form users hold.
      expect(await totpCode(base32Encode(RFC_SECRET), step)).toBe(expected.slice(2));
    }
  });

  it('accepts the step before and after, not two away, and only steps after the last used one', async () => {
    const secret = base32Encode(RFC_SECRET);
    const now = 1111111111_000;
    const step = timeStep(now);
    for (const d of [-1, 0, 1]) expect(await matchTotp(secret, await totpCode(secret, step + d), now, null)).toBe(step + d);
    for (const d of [-2, 2]) expect(await matchTotp(secret, await totpCode(secret, step + d), now, null)).toBeNull();
    const current = await totpCode(secret, step);
    expect(await matchTotp(secret, current, now, step - 1)).toBe(step);
    expect(await matchTotp(secret, current, now, step)).toBeNull();
    expect(await matchTotp(secret, await totpCode(secret, step - 1), now, step - 1)).toBeNull();
    for (const bad of ['', '12345', '1234567', 'abcdef', ` ${current}`]) expect(await matchTotp(secret, bad, now, null)).toBeNull();
  });
});

describe('base32 (RFC 4648)', () => {
  it('encodes and decodes the RFC 4648 vectors (without padding)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'MY'],
      ['fo', 'MZXQ'],
      ['foo', 'MZXW6'],
      ['foob', 'MZXW6YQ'],
      ['fooba', 'MZXW6YTB'],
      ['foobar', 'MZXW6YTBOI'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(base32Encode(new TextEncoder().encode(plain))).toBe(encoded);
      expect(new TextDecoder().decode(base32Decode(encoded)!)).toBe(plain);
    }
    expect(base32Encode(RFC_SECRET)).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    // What people paste: lower case, spaces, padding.
    expect(new TextDecoder().decode(base32Decode('mzxw 6ytb oi======')!)).toBe('foobar');
    expect(base32Decode('MZXW1')).toBeNull();
  });

  it('makes 20-byte secrets, different each time', () => {
    const a = newTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(a)).toHaveLength(20);
    expect(newTotpSecret()).not.toBe(a);
  });
});

describe('otpauth URI', () => {
  it('names issuer and account and spells out the parameters', () => {
    expect(otpauthUri('alice', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')).toBe(
      'otpauth://totp/pirelay:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=pirelay&algorithm=SHA1&digits=6&period=30',
    );
  });

  it('percent-encodes the label and the parameters', () => {
    const uri = otpauthUri('a b:c/d?e&f', 'ABC', 'my relay');
    expect(uri).toBe('otpauth://totp/my%20relay:a%20b%3Ac%2Fd%3Fe%26f?secret=ABC&issuer=my%20relay&algorithm=SHA1&digits=6&period=30');
    const url = new URL(uri);
    expect([url.protocol, url.host]).toEqual(['otpauth:', 'totp']);
    expect(url.searchParams.get('issuer')).toBe('my relay');
    expect(url.pathname.slice(1).split(':').map(decodeURIComponent)).toEqual(['my relay', 'a b:c/d?e&f']);
  });
});
