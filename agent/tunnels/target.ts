// What every tunnel proxy shares: the target it may reach (always from the hub's tunnel table,
// never from the stream's OPEN), the handle the service keeps to end it, and the one place that
// turns a failed connect into the reset code and reason the hub shows the visitor (502/504).
import type { Logger } from '../log.ts';
import { ResetCode } from '../../shared/codes.ts';

/** Where a stream goes: taken from the tunnel table, so a visitor can never choose it. */
export interface Target {
  host: string;
  port: number;
}

/** One proxied stream as the service sees it: it can be ended, and it tells when it is over. */
export interface Session {
  /** Ends the stream (reset toward the hub) and frees the target connection at once. */
  abort(code: string, message: string): void;
  /** Settles once the stream and the target connection are both gone; never rejects. */
  done: Promise<void>;
}

export interface ProxyDeps {
  log: Logger;
  /** How long reaching the target may take (for HTTP: until the response head arrives). */
  connectTimeoutMs: number;
}

/**
 * Reset codes a proxy sends; the hub answers TARGET_TIMEOUT with 504 and the rest with 502.
 * BAD_REQUEST is the visitor's fault (a body that does not match its Content-Length).
 */
export type TargetFailureCode = typeof ResetCode.TARGET_REFUSED | typeof ResetCode.TARGET_TIMEOUT | typeof ResetCode.TARGET_ERROR | typeof ResetCode.BAD_REQUEST;

export interface TargetFailure {
  code: TargetFailureCode;
  message: string;
}

/** `host:port`, with IPv6 literals bracketed so the result is a valid URL authority. */
export function authority({ host, port }: Target): string {
  const bare = unbracket(host);
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** Socket APIs want the IPv6 literal without brackets; URLs want it with them. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Names a connect failure the way people know it from curl and Node ("connect ECONNREFUSED
 * 127.0.0.1:8080"), because that line is what the visitor sees on the 502 page.
 */
export function describeFailure(e: unknown, target: Target): TargetFailure {
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const where = authority(target);
  if (code === 'ECONNREFUSED' || code === 'ConnectionRefused' || /refused|failed to connect/i.test(message)) {
    return { code: ResetCode.TARGET_REFUSED, message: `connect ECONNREFUSED ${where}` };
  }
  if (code === 'ETIMEDOUT' || code === 'Timeout') return { code: ResetCode.TARGET_TIMEOUT, message: `connect ETIMEDOUT ${where}` };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { code: ResetCode.TARGET_ERROR, message: `getaddrinfo ${code} ${unbracket(target.host)}` };
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return { code: ResetCode.TARGET_ERROR, message: `connect ${code} ${where}` };
  if (code === 'ECONNRESET') return { code: ResetCode.TARGET_ERROR, message: `connection to ${where} was reset` };
  return { code: ResetCode.TARGET_ERROR, message: `${where}: ${code ? `${code} ` : ''}${message}`.slice(0, 1000) };
}

export function timeoutFailure(target: Target, ms: number, phase: 'connect' | 'response' = 'connect'): TargetFailure {
  const message = phase === 'connect' ? `connect to ${authority(target)} timed out after ${ms / 1000} s` : `${authority(target)} sent no response within ${ms / 1000} s`;
  return { code: ResetCode.TARGET_TIMEOUT, message };
}
