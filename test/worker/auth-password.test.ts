import { describe, expect, it } from 'vitest';
import { PBKDF2_ITERATIONS, hashPassword, verifyPassword } from '../../worker/auth/password.ts';
import { userWithPassword, expectError, jsonInit, withEnv } from './auth-helpers.ts';

describe('password hashing', () => {
  it('stores PBKDF2-SHA256 with the iteration count, a 16-byte salt and a 32-byte hash', async () => {
    const hash = await hashPassword('password123');
    const [scheme, iter, salt, digest] = hash.split('$');
    expect(scheme).toBe('pbkdf2-sha256');
    expect(Number(iter)).toBe(100_000);
    expect(PBKDF2_ITERATIONS).toBe(100_000);
    expect(atob(salt!).length).toBe(16);
    expect(atob(digest!).length).toBe(32);
    expect(hash).not.toContain('password123');
  });

  it('salts every hash, and verifies only the right password', async () => {
    const a = await hashPassword('password123');
    const b = await hashPassword('password123');
    expect(a).not.toBe(b);
    expect(await verifyPassword('password123', a)).toBe(true);
    expect(await verifyPassword('password123', b)).toBe(true);
    expect(await verifyPassword('password124', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });

  it('reads the iteration count from the stored string', async () => {
    const hash = await hashPassword('password123');
    const [scheme, , salt] = hash.split('$');
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('password123'), 'PBKDF2', false, ['deriveBits']);
    const saltBytes = Uint8Array.from(atob(salt!), (ch) => ch.charCodeAt(0));
    const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: saltBytes, iterations: 1000 }, key, 256));
    const cheaper = `${scheme}$1000$${salt}$${btoa(String.fromCharCode(...bits))}`;
    expect(await verifyPassword('password123', cheaper)).toBe(true);
    expect(await verifyPassword('password123', cheaper.replace('$1000$', '$1001$'))).toBe(false);
  });

  it('never matches a missing, malformed or over-cost hash', async () => {
    const good = await hashPassword('password123');
    expect(await verifyPassword('password123', null)).toBe(false);
    expect(await verifyPassword('password123', 'unusable')).toBe(false);
    expect(await verifyPassword('password123', good.replace('pbkdf2-sha256', 'md5'))).toBe(false);
    expect(await verifyPassword('password123', good.replace('$100000$', '$200000$'))).toBe(false);
    expect(await verifyPassword('password123', good.replace(/\$[^$]+$/, '$!!!'))).toBe(false);
  });
});

describe('a relay without SESSION_SECRET', () => {
  it('refuses to log in with a clear 500 SERVER_MISCONFIGURED rather than an anonymous error', async () => {
    const u = await userWithPassword();
    const res = await withEnv({ SESSION_SECRET: undefined }, '/api/v1/auth/login', jsonInit({ username: u.username, password: u.password }));
    await expectError(res, 500, 'SERVER_MISCONFIGURED');
  });
});
