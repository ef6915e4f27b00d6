// Who is signed in, as signals every page reads. The session itself is the HttpOnly
// `__Host-pirelay_session` cookie the relay sets at login (`session_cookie: true`): script never
// sees it, so a page can only ask the relay who it is (GET /api/v1/auth/me). States: `loading` at
// start, `signed-out` (the sign-in page), `signed-in`, and `expired` when a call answered 401
// while signed in (the "session expired" page, which returns to where the user was).
import { computed, signal } from '@preact/signals';
import type { LoginChallenge, LoginResult, Me } from '../../shared/api/auth.ts';
import { atLeast, type TeamRole } from '../../shared/api/team-roles.ts';
import { ApiError, get, post } from './api.ts';
import { listenUnauthorized } from './session-events.ts';

export type SessionState = 'loading' | 'signed-out' | 'signed-in' | 'expired';

export const sessionState = signal<SessionState>('loading');
export const me = signal<Me | null>(null);
/** Why the session ended, when it did (shown on the expired page). */
export const endedBecause = signal<string>('');

listenUnauthorized((e) => {
  if (sessionState.value !== 'signed-in') return;
  endedBecause.value = e.message;
  sessionState.value = 'expired';
});

/** Whether the signed-in user's permissions allow `needed` ("*", "resource:*" and exact matches). */
export function can(needed: string): boolean {
  const held = me.value?.permissions ?? [];
  const [resource] = needed.split(':');
  return held.some((p) => p === '*' || p === needed || p === `${resource}:*`);
}

export const isAdmin = computed(() => can('*'));

/** Whether the signed-in user administers a team they hold `role` in: an instance admin always, else its admins and owners. */
export function administers(role: TeamRole | null | undefined): boolean {
  return isAdmin.value || (!!role && atLeast(role, 'admin'));
}

export async function loadSession(): Promise<void> {
  try {
    me.value = await get<Me>('/api/v1/auth/me', { expectUnauthorized: true });
    sessionState.value = 'signed-in';
  } catch (e) {
    // Only a 401 means nobody is signed in; a network blip leaves a signed-in app as it is.
    if (!(e instanceof ApiError) || e.status !== 401) {
      if (sessionState.value === 'loading') sessionState.value = 'signed-out';
      throw e;
    }
    me.value = null;
    sessionState.value = 'signed-out';
  }
}

/** Step one: the password. Resolves with the challenge when the account has two-factor login. */
export async function signIn(username: string, password: string): Promise<LoginChallenge | null> {
  const r = await post<LoginResult>('/api/v1/auth/login', { username, password, session_cookie: true }, { expectUnauthorized: true });
  if ('two_factor_required' in r) return r;
  await loadSession();
  return null;
}

/** Step two: a code from the authenticator app, or a recovery code. */
export async function signInSecondStep(challenge: string, code: string): Promise<void> {
  const trimmed = code.trim();
  const body = /^\d{6}$/.test(trimmed) ? { challenge, code: trimmed } : { challenge, recovery_code: trimmed };
  await post('/api/v1/auth/login/2fa', { ...body, session_cookie: true }, { expectUnauthorized: true });
  await loadSession();
}

export async function signOut(): Promise<void> {
  try {
    await post('/api/v1/auth/logout', {}, { expectUnauthorized: true });
  } finally {
    me.value = null;
    endedBecause.value = '';
    sessionState.value = 'signed-out';
  }
}
