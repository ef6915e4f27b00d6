// What a tunnel visitor sees when the relay, not the target, answers: a short HTML page for
// browsers, or the API's JSON error shape for clients that ask for JSON.
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function tunnelError(request: Request, status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): Response {
  const wantsJson = /application\/json/.test(request.headers.get('accept') ?? '') && !/text\/html/.test(request.headers.get('accept') ?? '');
  const headers = { 'cache-control': 'no-store', 'x-pirelay-error': code, ...extraHeaders };
  if (wantsJson) return Response.json({ error: message, code, details: {} }, { status, headers });
  const title = `${status} ${code.replace(/_/g, ' ').toLowerCase()}`;
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:16px system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}code{background:#eee;padding:.1em .3em}</style></head>
<body><h1>${esc(title)}</h1><p>${esc(message)}</p><p><small>pirelay · <code>${esc(code)}</code></small></p></body></html>\n`;
  return new Response(html, { status, headers: { ...headers, 'content-type': 'text/html; charset=utf-8' } });
}
