// The runtime's own ceiling for a tunnel request, measured in the same run: a Worker that hands
// each request to a Durable Object (stub.fetch) which answers at once, in the same workerd and the
// same way the relay is served (straight from the Worker, through Miniflare's API). Every tunnel
// request makes this hop, so the tunnel rows can be read against it.
import { Miniflare } from 'miniflare';
import { freePort } from '../test/e2e/harness.ts';

const SCRIPT = `
import { DurableObject } from 'cloudflare:workers';
export class Hop extends DurableObject {
  fetch() { return new Response('ok'); }
}
export default {
  fetch(request, env) { return env.HOP.get(env.HOP.idFromName('one')).fetch(request); },
};
`;

export async function startHopBaseline(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const mf = new Miniflare({
    name: 'hop',
    modules: true,
    script: SCRIPT,
    compatibilityDate: '2026-04-01',
    durableObjects: { HOP: 'Hop' },
    port: 0,
    unsafeDirectSockets: [{ host: '127.0.0.1', port }],
  } as ConstructorParameters<typeof Miniflare>[0]);
  await mf.ready;
  const url = (await mf.unsafeGetDirectURL()).toString().replace(/\/$/, '');
  return { url, stop: () => mf.dispose() };
}
