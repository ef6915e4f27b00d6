// The HTTP rules both ends of a tunnel apply to what they carry, so the Worker, the hub and the
// agent refuse the same requests: how big a stream's head may be, which methods never go through,
// what a Content-Length and an HTTP token are.
import { z } from 'zod';

/** What a stream's head may carry (OPEN and ACCEPT): more is refused before it is sent. */
export const HEAD_LIMITS = { headers: 256, name: 256, value: 16 * 1024, path: 16 * 1024 } as const;
/** Why a header list exceeds HEAD_LIMITS, or null when it fits. */
export function headerProblem(headers: readonly (readonly [string, string])[]): string | null {
  if (headers.length > HEAD_LIMITS.headers) return `${headers.length} headers (at most ${HEAD_LIMITS.headers})`;
  for (const [name, value] of headers) {
    if (name.length > HEAD_LIMITS.name) return `a header name of ${name.length} characters (at most ${HEAD_LIMITS.name})`;
    if (value.length > HEAD_LIMITS.value) return `the ${name.slice(0, 64)} header is ${value.length} bytes long (at most ${HEAD_LIMITS.value})`;
  }
  return null;
}

/** Methods no tunnel carries: CONNECT would ask a proxy on the device for another host; TRACE and TRACK echo credentials back. */
export const REFUSED_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** A Content-Length value as a number (1 to 15 digits, surrounding whitespace allowed); null for anything else. */
export function parseContentLength(value: string | null | undefined): number | null {
  if (value == null) return null;
  const t = value.trim();
  return /^\d{1,15}$/.test(t) ? Number(t) : null;
}

/** A header list as a stream head carries it: [name, value] pairs within HEAD_LIMITS. */
export const HeaderListSchema = z.array(z.tuple([z.string().max(HEAD_LIMITS.name), z.string().max(HEAD_LIMITS.value)])).max(HEAD_LIMITS.headers);

/** An HTTP token (RFC 9110 §5.6.2): what a method or a header name may be. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
