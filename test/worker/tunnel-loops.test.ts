// Tunnel targets that would bring each visit back into the relay, under a deployed relay's names
// (the e2e test covers localhost): TUNNEL_DOMAIN example.net, the API at https://api.example.net
// or https://pirelay.you.workers.dev.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import worker from '../../worker/index.ts';
import { userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';

let key: string;
let device: string;
beforeAll(async () => {
  key = (await userWithKey(['operator'])).key;
  device = await insertDevice({ status: 'approved' });
});

/** The Worker as deployed under example.net, called on `origin`. */
async function call(origin: string, method: string, path: string, json: unknown) {
  const ctx = createExecutionContext();
  const req = new Request(`${origin}${path}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(json) });
  const res = await worker.fetch(req as Request<unknown, IncomingRequestCfProperties>, { ...env, TUNNEL_DOMAIN: 'example.net' }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: (await res.json()) as { code?: string; details?: Record<string, unknown>; target?: string } };
}
const create = (origin: string, name: string, target: unknown) => call(origin, 'POST', `/api/v1/devices/${device}/tunnels`, { name, target });

describe('tunnel loops under a deployed relay', () => {
  it('refuses the tunnel domain, its subdomains (any case, trailing dot ignored) and the API host on any port', async () => {
    for (const target of ['example.net:443', 'web.example.net:80', 'A.B.Example.NET:8443', 'api.example.net:22']) {
      const r = await create('https://api.example.net', 'loopy', target);
      expect(r, target).toMatchObject({ status: 422, body: { code: 'TUNNEL_LOOP', details: { field: 'target', value: target } } });
    }
    const own = await create('https://pirelay.you.workers.dev', 'loopy', { target_host: 'PIRELAY.you.workers.dev', target_port: 8080 });
    expect(own).toMatchObject({ status: 422, body: { code: 'TUNNEL_LOOP', details: { field: 'target' } } });
    const dotted = await create('https://pirelay.you.workers.dev.', 'loopy', 'pirelay.you.workers.dev:443');
    expect(dotted).toMatchObject({ status: 422, body: { code: 'TUNNEL_LOOP' } });
  });

  it('allows names that only look alike, and localhost on the device', async () => {
    for (const [name, target] of [['lookalike', 'notexample.net:443'], ['deeper', 'example.net.evil.org:80'], ['local', 'localhost:443']]) {
      const r = await create('https://api.example.net', name!, target);
      expect(r.status, `${target}: ${JSON.stringify(r.body)}`).toBe(201);
    }
  });

  it('refuses a loop at update and keeps the old target', async () => {
    const path = `/api/v1/devices/${device}/tunnels/lookalike`;
    const r = await call('https://api.example.net', 'PATCH', path, { target_host: 'x.example.net', target_port: 443 });
    expect(r).toMatchObject({ status: 422, body: { code: 'TUNNEL_LOOP', details: { field: 'target_host', value: 'x.example.net' } } });
    const ctx = createExecutionContext();
    const now = await worker.fetch(new Request(`https://api.example.net${path}`, { headers: { authorization: `Bearer ${key}` } }) as Request<unknown, IncomingRequestCfProperties>, env, ctx);
    expect(((await now.json()) as { target: string }).target).toBe('notexample.net:443');
  });
});
