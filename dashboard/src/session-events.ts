// The one wire between api.ts and session.ts (so neither imports the other): a 401 on a call made
// while signed in tells the session it has ended.
import type { ApiError } from './api.ts';

let listener: ((e: ApiError) => void) | undefined;

export function onUnauthorized(e: ApiError) {
  listener?.(e);
}

export function listenUnauthorized(fn: (e: ApiError) => void) {
  listener = fn;
}
