// Helpers for the account tests: users with real passwords, logins from distinct client IPs
// (so the per-IP login throttle of one test never leaks into another), and calls against an
// app built with different env vars than wrangler.toml gives.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { expect } from 'vitest';
import { createApp } from '../../worker/app.ts';
import { randomId } from '../../worker/auth/crypto.ts';
import { hashPassword } from '../../worker/auth/password.ts';
import { BASE, TEST_TEAM, api, joinTeam } from './helpers.ts';

export interface ErrorBody {
  error: string;
  code: string;
  details: Record<string, unknown>;
}

let ipCounter = 0;
/** A fresh documentation-range client IP for each call. */
export const freshIp = () => `198.51.100.${++ipCounter % 250}`;

/** A user with a real password (PBKDF2), inserted straight into D1. */
export async function userWithPassword(roles: string[] = ['viewer'], opts: { username?: string; password?: string; disabled?: boolean; team?: string | null } = {}) {
  const userId = randomId(8);
  const username = opts.username ?? `p_${randomId(4)}`;
  const password = opts.password ?? `pw-${randomId(6)}`;
  await env.DB.prepare('INSERT INTO users (id, username, email, password_hash, roles, disabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)')
    .bind(userId, username, `${username}@example.com`, await hashPassword(password), JSON.stringify(roles), opts.disabled ? 1 : 0, Date.now())
    .run();
  await joinTeam(userId, roles, opts.team === undefined ? TEST_TEAM : opts.team);
  return { userId, username, password };
}

export function login(username: string, password: string, ip = freshIp()) {
  return api('/api/v1/auth/login', { json: { username, password }, headers: { 'cf-connecting-ip': ip } });
}

/** Logs a new user in; returns the user and its session token. */
export async function sessionUser(roles: string[] = ['viewer']) {
  const user = await userWithPassword(roles);
  const res = await login(user.username, user.password);
  expect(res.status).toBe(200);
  const { token } = (await res.json()) as { token: string };
  return { ...user, token };
}

/** The Authorization header PiTunnel documents: the key as Basic user name, empty password. */
export const basicAuth = (key: string) => ({ authorization: `Basic ${btoa(`${key}:`)}` });

/** Asserts status and error code of an error response; returns its body. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  const body = (await res.json()) as ErrorBody;
  expect({ status: res.status, code: body.code }).toEqual({ status, code });
  expect(typeof body.error).toBe('string');
  expect(body.details).toBeTypeOf('object');
  return body;
}

/** Calls a fresh app with some env vars replaced (e.g. BOOTSTRAP_TOKEN unset), same D1. */
export async function withEnv(overrides: Partial<Record<keyof Env, string | undefined>>, path: string, init: RequestInit = {}) {
  const app = createApp({ startedAt: Date.now() });
  const ctx = createExecutionContext();
  const res = await app.request(`${BASE}${path}`, init, { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export const jsonInit = (body: unknown, headers: Record<string, string> = {}, method = 'POST'): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});
