import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';

describe('GET /health', () => {
  it('reports status, version and uptime', async () => {
    const res = await SELF.fetch('http://relay.test/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; version: string; uptime: number };
    expect(body.status).toBe('ok');
    expect(body.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Number.isInteger(body.uptime)).toBe(true);
  });

  it('answers unknown API routes with the JSON error shape', async () => {
    const res = await SELF.fetch('http://relay.test/api/v1/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND', error: expect.any(String), details: {} });
  });

  it('documents native routes in openapi.json', async () => {
    const res = await SELF.fetch('http://relay.test/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/health');
  });
});
