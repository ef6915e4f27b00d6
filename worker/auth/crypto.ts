// Small WebCrypto helpers for secrets: random tokens, SHA-256 digests and constant-time compare.
const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = '';
  for (const b of view) s += b.toString(16).padStart(2, '0');
  return s;
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A secret with a readable prefix, e.g. "prk_…" for API keys, "pre_…" for enrollment tokens. */
export function randomToken(prefix: string, bytes = 32): string {
  return `${prefix}${base64url(randomBytes(bytes))}`;
}

/** Opaque ids: 40 hex chars, the shape PiTunnel's device ids have. */
export function randomId(bytes = 20): string {
  return hex(randomBytes(bytes));
}

export async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}
