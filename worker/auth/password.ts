// Password hashing with what workerd offers natively: PBKDF2-SHA256 through WebCrypto.
// The hash string carries its own iteration count and salt, so the cost can be raised later
// without invalidating stored hashes: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`.

/** workerd refuses PBKDF2 above 100000 iterations, so this is both the target and the cap. */
export const PBKDF2_ITERATIONS = 100_000;
const SCHEME = 'pbkdf2-sha256';
const HASH_BYTES = 32;

/** A well-formed hash no password matches; verifying against it costs the same as a real one. */
const DECOY_HASH = `${SCHEME}$${PBKDF2_ITERATIONS}$${'A'.repeat(22)}==$${'A'.repeat(43)}=`;

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, HASH_BYTES * 8);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `${SCHEME}$${PBKDF2_ITERATIONS}$${b64(salt)}$${b64(await derive(password, salt, PBKDF2_ITERATIONS))}`;
}

function parse(stored: string) {
  const [scheme, iter, salt, hash] = stored.split('$');
  const iterations = Number(iter);
  if (scheme !== SCHEME || !Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_ITERATIONS || !salt || !hash) return null;
  try {
    return { iterations, salt: unb64(salt), hash: unb64(hash) };
  } catch {
    return null;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * True when `password` matches `stored`. Pass null for an unknown user: the same PBKDF2 work is
 * done against a decoy, so response time does not reveal whether a username exists.
 */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parsed = parse(stored ?? '');
  const target = parsed ?? parse(DECOY_HASH)!;
  const actual = await derive(password, target.salt, target.iterations);
  return parsed !== null && bytesEqual(actual, target.hash);
}
