// What a tunnel visitor sees when the relay itself answers (no such tunnel, wrong credentials, a
// closed tunnel): a small HTML page for browsers, or the API's JSON error shape when the client
// prefers JSON. Never cached, since the next request may well succeed. Here rather than in worker/
// because the DeviceHub answers visitors with the same pages.
import { errorBody } from './codes.ts';

/** True when Accept ranks application/json above text/html (a bare "*\/*" means HTML). */
export function prefersJson(accept: string | null): boolean {
  if (!accept) return false;
  let json = 0;
  let html = 0;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === 'application/json' || (type?.startsWith('application/') && type.endsWith('+json'))) json = Math.max(json, q);
    if (type === 'text/html') html = Math.max(html, q);
  }
  return json > html;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const TITLES: Record<number, string> = {
  429: 'Too many requests',
  504: 'Gateway timeout',
  400: 'Bad request',
  401: 'Authentication required',
  403: 'Forbidden',
  404: 'Tunnel not found',
  405: 'Method not allowed',
  414: 'URI too long',
  426: 'Upgrade required',
  431: 'Request headers too large',
  502: 'Bad gateway',
  503: 'Tunnel unavailable',
  508: 'Loop detected',
};

export function visitorError(req: Request, status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): Response {
  const headers: Record<string, string> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-pirelay-error': code, ...extraHeaders };
  if (prefersJson(req.headers.get('accept'))) {
    return Response.json(errorBody(code, message), { status, headers });
  }
  const title = TITLES[status] ?? 'Error';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${status} ${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}code{color:#666}</style>
</head><body><h1>${status} ${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p><code>${escapeHtml(code)}</code> · pirelay</p></body></html>
`;
  return new Response(req.method === 'HEAD' ? null : html, { status, headers: { ...headers, 'content-type': 'text/html; charset=utf-8' } });
}
