// How every page talks to the relay: same-origin fetch with the session cookie (never a token in
// script-readable storage), JSON both ways, and the API's own error ({error, code, details}) kept
// whole so a page can show the message next to the field it names. A 401 while signed in means
// the session ended: the app shows its "session expired" page instead of a page of errors.
import { onUnauthorized } from './session-events.ts';

export interface ApiErrorBody {
  error: string;
  code: string;
  details?: Record<string, unknown>;
}

/** An error the relay answered with (or NETWORK_ERROR when it could not be reached). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** The validation issue for one field (zod's issue paths as the relay reports them), if any. */
  forField(field: string): string | undefined {
    const issues = this.details.issues;
    if (!Array.isArray(issues)) return undefined;
    const hit = issues.find((i: { path?: unknown }) => (Array.isArray(i.path) ? i.path.join('.') : String(i.path ?? '')) === field);
    return hit ? String((hit as { message?: unknown }).message ?? this.message) : undefined;
  }
}

export interface CallOptions {
  /** A 401 is this call's own answer (a wrong password), not a sign that the session ended. */
  expectUnauthorized?: boolean;
  signal?: AbortSignal;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK_ERROR', 'The relay could not be reached; check your connection and try again');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const b = (parsed ?? {}) as Partial<ApiErrorBody>;
    const err = new ApiError(res.status, b.code ?? `HTTP_${res.status}`, b.error ?? (text.slice(0, 200) || res.statusText), b.details ?? {});
    if (res.status === 401 && !opts.expectUnauthorized) onUnauthorized(err);
    throw err;
  }
  return parsed as T;
}

export const get = <T>(path: string, opts?: CallOptions) => api<T>('GET', path, undefined, opts);
export const post = <T>(path: string, body?: unknown, opts?: CallOptions) => api<T>('POST', path, body ?? {}, opts);
export const put = <T>(path: string, body: unknown, opts?: CallOptions) => api<T>('PUT', path, body, opts);
export const patch = <T>(path: string, body: unknown, opts?: CallOptions) => api<T>('PATCH', path, body, opts);
export const del = <T = void>(path: string, opts?: CallOptions) => api<T>('DELETE', path, undefined, opts);

/** A query string from the set values of `q` (undefined and '' are left out). */
export function query(q: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** The WebSocket URL of an API path on this relay (same origin, so the session cookie goes along). */
export function socketUrl(path: string): URL {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u;
}

/**
 * How long a socket waits before dialling again after its `attempt`-th drop in a row: doubling
 * from `baseMs` up to `capMs`, with ±25 % jitter so the tabs of one relay do not redial in step.
 */
export function redialDelay(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** attempt) * (0.75 + Math.random() / 2);
}
