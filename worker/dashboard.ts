// Serves the dashboard (dist/dashboard, wrangler.toml [assets]) for what no API route answered: a
// built file by its path, and index.html for the app's own paths so that a reload or a shared link
// opens the page. /api/* and anything that is not a GET or HEAD stay JSON 404s, and tunnel hosts
// never get here (worker/index.ts sends them to the tunnel first). Every page goes out with a
// Content-Security-Policy that allows nothing from another host.
import type { Context } from 'hono';
import type { AppEnv } from './app-env.ts';
import { errorBody } from '../shared/codes.ts';

/** What a dashboard page may load: only this origin (its WebSocket included), images also as data: URLs. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** A path with a file extension names a built file; anything else is one of the app's own pages. */
const isFile = (path: string) => /\.[A-Za-z0-9]+$/.test(path.slice(path.lastIndexOf('/') + 1));

export async function serveDashboard(c: Context<AppEnv>): Promise<Response> {
  const notFound = () => c.json(errorBody('NOT_FOUND', `No route for ${c.req.method} ${c.req.path}`), 404);
  const method = c.req.method;
  const path = c.req.path;
  if ((method !== 'GET' && method !== 'HEAD') || path === '/api' || path.startsWith('/api/') || !c.env.ASSETS) return notFound();
  const file = isFile(path);
  const target = new URL(c.req.url);
  if (!file) {
    target.pathname = '/';
    target.search = '';
  }
  const res = await c.env.ASSETS.fetch(new Request(target, { method, headers: { 'accept-encoding': c.req.header('accept-encoding') ?? '' } }));
  if (res.status === 404 || (file && res.headers.get('content-type')?.startsWith('text/html'))) return notFound();
  const headers = new Headers(res.headers);
  headers.set('content-security-policy', DASHBOARD_CSP);
  headers.set('x-content-type-options', 'nosniff');
  headers.set('referrer-policy', 'same-origin');
  headers.set('x-frame-options', 'DENY');
  // Built files carry a content hash in their names; index.html must be asked for afresh.
  headers.set('cache-control', path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
  return new Response(res.body, { status: res.status, headers });
}
