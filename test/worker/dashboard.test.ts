// The dashboard as the Worker serves it (worker/dashboard.ts, wrangler.toml [assets] with the
// Worker first): index.html for the app's own paths, built files by path, JSON 404s for /api/*
// and for files that are not there, a Content-Security-Policy that allows only this origin — and
// a tunnel host never gets any of it.
import { SELF, createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../worker/index.ts';

async function page(path: string, init: RequestInit = {}) {
  const res = await SELF.fetch(`http://relay.test${path}`, init);
  return { res, text: await res.text() };
}

describe('the dashboard', () => {
  it('serves index.html at / and at the app’s own paths, with a CSP that allows only this origin', async () => {
    for (const path of ['/', '/add-device', '/device/abc/tunnels', '/teams/t1', '/account?x=1']) {
      const { res, text } = await page(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(text, path).toContain('<div id="app">');
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/https?:/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('no-cache');
    }
  });

  it('serves the built files it links, cacheable for ever (their names carry a hash)', async () => {
    const { text } = await page('/');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(text)?.[1];
    expect(script).toBeTruthy();
    const res = await SELF.fetch(`http://relay.test${script}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    expect(res.headers.get('cache-control')).toContain('immutable');
    await res.arrayBuffer();
  });

  it('never answers /api/* or a missing file with index.html', async () => {
    for (const path of ['/api', '/api/v1/nope', '/api/v2/x', '/api/v1/devices/x/nope', '/assets/nope.js', '/nope.png']) {
      const { res, text } = await page(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
      // Pipetower's API answers its own 404 under /api/ (not /api/v1/); the rest are ours.
      expect(JSON.parse(text), path).toMatchObject(path.startsWith('/api/v1/') || !path.startsWith('/api') ? { code: 'NOT_FOUND' } : { message: 'Not found.' });
    }
  });

  it('does not serve the app to other methods', async () => {
    const { res } = await page('/account', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(404);
  });

  it('never serves the dashboard on a tunnel host, even for a tunnel that does not exist', async () => {
    for (const path of ['/', '/add-device', '/assets/x.js']) {
      const ctx = createExecutionContext();
      const req = new Request(`https://nosuch.example.net${path}`);
      const res = await worker.fetch(req as Request<unknown, IncomingRequestCfProperties>, { ...env, TUNNEL_DOMAIN: 'example.net' }, ctx);
      await waitOnExecutionContext(ctx);
      const text = await res.text();
      expect(text, path).not.toContain('<div id="app">');
      expect(res.headers.get('content-security-policy'), path).toBeNull();
    }
  });
});
