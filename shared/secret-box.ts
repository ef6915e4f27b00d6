// The AES-256-GCM core of the relay's secret box (worker/auth/secret-box.ts is the Worker's layer
// over it, with its places and its API errors). It lives in shared/ because the device hubs must
// open sealed values too (an alert rule's channels, to send its notifications) and Durable Objects
// may not import worker/. Web crypto only: it runs in workerd and in Node alike.
//
// A sealed value names the key that sealed it (the first 8 hex of the key's SHA-256), so a
// rotation can run while both keys are set: VARIABLES_KEY is the new one, VARIABLES_KEY_PREVIOUS
// the old one still opened, and `reseal` moves a value to the new key. Each value is bound to its
// place (the additional data, e.g. "variable:<id>"), so a sealed value copied onto another row
// does not open there. Failures are plain `SecretBoxError`s, which say nothing of the plaintext.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Key {
  id: string;
  key: CryptoKey;
}

export interface SecretKeys {
  VARIABLES_KEY?: string;
  VARIABLES_KEY_PREVIOUS?: string;
}

/** A key is missing or malformed, or a value does not open: the caller decides what the user is told. */
export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

/** Imported keys by their text, per isolate (importKey and the digest cost a little each). */
const imported = new Map<string, Promise<Key>>();

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function unb64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '='));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

function hex(bytes: ArrayBuffer): string {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += b.toString(16).padStart(2, '0');
  return s;
}

/** A key is 32 bytes, given as 64 hex characters or as base64/base64url. */
export function keyBytes(text: string): Uint8Array<ArrayBuffer> | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Uint8Array.from(t.match(/../g)!.map((b) => parseInt(b, 16)));
  try {
    const bin = unb64(t);
    return bin.length === 32 ? bin : null;
  } catch {
    return null;
  }
}

function importKey(text: string): Promise<Key> {
  let key = imported.get(text);
  if (!key) {
    const raw = keyBytes(text);
    if (!raw) return Promise.reject(new SecretBoxError('VARIABLES_KEY must be 32 bytes, as 64 hex characters or base64'));
    key = (async () => ({
      id: hex(await crypto.subtle.digest('SHA-256', raw)).slice(0, 8),
      key: await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']),
    }))();
    imported.set(text, key);
  }
  return key;
}

async function currentKey(env: SecretKeys): Promise<Key> {
  if (!env.VARIABLES_KEY) throw new SecretBoxError('VARIABLES_KEY is not set on this relay, so it cannot keep secrets');
  return importKey(env.VARIABLES_KEY);
}

async function keyById(env: SecretKeys, id: string): Promise<Key | null> {
  for (const text of [env.VARIABLES_KEY, env.VARIABLES_KEY_PREVIOUS]) {
    if (!text) continue;
    const k = await importKey(text);
    if (k.id === id) return k;
  }
  return null;
}

/** Seals `plaintext` for the place named by `aad`: "<key id>.<iv>.<ciphertext and tag>". */
export async function seal(env: SecretKeys, plaintext: string, aad: string): Promise<string> {
  const k = await currentKey(env);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(aad) }, k.key, encoder.encode(plaintext));
  return `${k.id}.${base64url(iv)}.${base64url(new Uint8Array(ct))}`;
}

/** Opens a sealed value; throws SecretBoxError when its key is not configured or it does not open. */
export async function open(env: SecretKeys, sealed: string, aad: string): Promise<string> {
  const [id, iv, ct] = sealed.split('.');
  if (!id || !iv || !ct) throw new SecretBoxError('a sealed value is malformed');
  const k = await keyById(env, id);
  if (!k) throw new SecretBoxError(`the key that sealed this value (${id}) is neither VARIABLES_KEY nor VARIABLES_KEY_PREVIOUS`);
  try {
    const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(iv), additionalData: encoder.encode(aad) }, k.key, unb64(ct));
    return decoder.decode(pt);
  } catch {
    throw new SecretBoxError('a sealed value did not open (wrong key or place)');
  }
}

/** The id of the key a sealed value names. */
export function sealedKeyId(sealed: string): string {
  return sealed.split('.', 1)[0]!;
}

/** The id of VARIABLES_KEY, to find values still sealed under another key. */
export async function currentKeyId(env: SecretKeys): Promise<string> {
  return (await currentKey(env)).id;
}

/** The value sealed again under VARIABLES_KEY, or null when it already is. */
export async function reseal(env: SecretKeys, sealed: string, aad: string): Promise<string | null> {
  if (sealedKeyId(sealed) === (await currentKeyId(env))) return null;
  return seal(env, await open(env, sealed, aad), aad);
}

/** The place of an alert rule's channels (sealed as one JSON array). */
export const alertRulePlace = (ruleId: string) => `alert-rule:${ruleId}`;
