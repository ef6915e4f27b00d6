// Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) with the parameters every
// authenticator app assumes when an otpauth:// URI says nothing else: HMAC-SHA-1, 6 digits,
// 30-second steps. WebCrypto does the HMAC, so nothing here needs a dependency. Which steps a
// code may match and that each step is used once is the caller's business (worker/routes/two-factor.ts);
// this module only knows the arithmetic and the encodings.
import { randomBytes, timingSafeEqual } from './crypto.ts';

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** A code of the step before or after the current one is accepted too (clock drift, slow typing). */
export const TOTP_WINDOW_STEPS = 1;
/** RFC 4226 asks for at least 128 bits and recommends 160: the size of an SHA-1 block's key. */
export const TOTP_SECRET_BYTES = 20;
export const TOTP_ISSUER = 'pirelay';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, without padding (authenticator apps take it so). */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes base32 (case, spaces and padding ignored); null when a character is not base32. */
export function base32Decode(text: string): Uint8Array | null {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const v = BASE32.indexOf(ch);
    if (v < 0) return null;
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

/** A new secret, base32: what the user types or scans into their app. */
export function newTotpSecret(): string {
  return base32Encode(randomBytes(TOTP_SECRET_BYTES));
}

/** The time step a moment (ms) falls in. */
export function timeStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS);
}

/** RFC 4226 HOTP of `counter` under the raw key `key`, as `digits` decimal digits. */
export async function hotp(key: Uint8Array, counter: number, digits = TOTP_DIGITS): Promise<string> {
  const hmacKey = await crypto.subtle.importKey('raw', Uint8Array.from(key), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  const msg = new DataView(new ArrayBuffer(8));
  // The counter is a 64-bit big-endian integer; steps of our era fit in 53 bits.
  msg.setUint32(0, Math.floor(counter / 2 ** 32));
  msg.setUint32(4, counter >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', hmacKey, msg.buffer));
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** The code of a base32 secret at a time step. */
export async function totpCode(secret: string, step: number): Promise<string> {
  const key = base32Decode(secret);
  if (!key) throw new Error('TOTP secret is not base32');
  return hotp(key, step);
}

/**
 * The step within ±TOTP_WINDOW_STEPS of `nowMs` whose code `code` is, considering only steps
 * after `after` (the last one used), or null. Every candidate is computed and compared in
 * constant time, so the answer's timing does not say which step matched.
 */
export async function matchTotp(secret: string, code: string, nowMs: number, after: number | null): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const now = timeStep(nowMs);
  let matched: number | null = null;
  for (let step = now - TOTP_WINDOW_STEPS; step <= now + TOTP_WINDOW_STEPS; step++) {
    const ok = timingSafeEqual(await totpCode(secret, step), code);
    if (ok && (after === null || step > after) && matched === null) matched = step;
  }
  return matched;
}

/**
 * The Key URI Format authenticator apps read from a QR code: the label is "issuer:account",
 * each part percent-encoded (a user name may hold characters a URI may not), the issuer repeated
 * as a parameter, and the parameters spelled out although they are the defaults.
 */
export function otpauthUri(account: string, secret: string, issuer = TOTP_ISSUER): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = new URLSearchParams({ secret, issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_PERIOD_SECONDS) });
  return `otpauth://totp/${label}?${params.toString().replace(/\+/g, '%20')}`;
}
