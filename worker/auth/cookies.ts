// Reading the Cookie header, once for the API (a browser's session cookie) and the tunnel ingress
// (a visitor's cookie, which must never reach the target), so both split it the same way.

/** Cookie pairs split on ";" and on the ", " workerd joins two Cookie headers with. */
export const COOKIE_SEPARATOR = /[;,]/;

/** The value of one cookie in a Cookie header, or null. */
export function cookieValue(header: string | null | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(COOKIE_SEPARATOR)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}
