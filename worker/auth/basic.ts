// The one parser of HTTP Basic credentials. Two callers read them differently — a tunnel in
// basic mode checks a user name and password; the API takes an API key as the Basic user name
// (PiTunnel's `curl -u KEY:`) — and both must agree on what a Basic header is, because whatever
// the relay would accept as its credential is also what it strips before a tunnel's target.
// Base64 is read forgivingly (atob: whitespace and missing padding allowed) and the pair as
// strict UTF-8 (the challenge says charset="UTF-8"); anything else is not a Basic credential.

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const SCHEME = /^basic\s+/i;

/** "Basic dXNlcjpwYXNz" → {user, password}, split at the first colon; password null without one. */
export function basicCredentials(header: string | null | undefined): { user: string; password: string | null } | null {
  const scheme = header ? SCHEME.exec(header) : null;
  if (!scheme) return null;
  let text: string;
  try {
    text = UTF8.decode(Uint8Array.from(atob(header!.slice(scheme[0].length)), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = text.indexOf(':');
  return colon < 0 ? { user: text, password: null } : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** A user name and password (a header without the colon has no password, so is not one). */
export function parseBasic(header: string | null | undefined): { user: string; password: string } | null {
  const creds = basicCredentials(header);
  return creds && creds.password !== null ? { user: creds.user, password: creds.password } : null;
}
