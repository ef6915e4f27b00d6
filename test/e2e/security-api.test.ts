// Attacks on the relay's API and its compat layers, end to end against the local relay (workerd,
// a real agent, real targets): spoofed client addresses, Hosts no URL parses (sent on raw sockets,
// as clients would clean them up), tunnel targets that point back into the relay, and the
// tunnel-control seed's own sample script.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch as ufetch, type Dispatcher } from 'undici';
import { join } from 'node:path';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { startWranglerDev } from '../../scripts/wrangler-dev.ts';
import { freePort, http, loopbackLookup, startTargets, tcpExchange, tempDir, type Targets } from './harness.ts';

let env: DevEnv;
let url: string;
let port: number;
let key: string;
let deviceId: string;
let targets: Targets;
const dispatcher: Dispatcher = new Agent({ connect: { lookup: loopbackLookup } as never });
const visit = (name: string, path: string, init: Parameters<typeof ufetch>[1] = {}) => ufetch(`http://${name}.localhost:${port}${path}`, { dispatcher, ...init });
const tunnelsUrl = () => `${url}/api/v1/devices/${deviceId}/tunnels`;

/** A request with this Host header, as sent, on a raw socket; the whole answer. */
const withHost = (host: string) => tcpExchange(port, `GET /api/v1/devices HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

beforeAll(async () => {
  targets = await startTargets();
  port = await freePort();
  env = await startDevEnv({ dir: await tempDir('security-api'), port, demoDevices: ['security-pi'], agentArgs: ['--max-backoff-ms', '500'] });
  await waitOnline(env);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
  const made = await http(tunnelsUrl(), { key, json: { name: 'echo', target: `127.0.0.1:${targets.http}`, access: { mode: 'public' } } });
  expect(made.status, JSON.stringify(made.body)).toBe(201);
  await waitFor('tunnel reachable', async () => (await visit('echo', '/tiny')).status === 200, 10_000);
});

afterAll(async () => {
  await env?.stop();
  targets?.stop();
});

/** 30 wrong passwords, each from another spoofed CF-Connecting-IP: five failures per user and address, then 429. */
async function spoofedGuesses(relayUrl: string, username: string) {
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof http>> | undefined;
  for (let i = 1; i <= 30; i++) {
    const r = await http(`${relayUrl}/api/v1/auth/login`, { json: { username, password: `wrong-password-${i}` }, headers: { 'cf-connecting-ip': `198.51.100.${i}` } });
    statuses.push(r.status);
    if (r.status === 429) limited ??= r;
  }
  expect(statuses).toEqual([...Array(5).fill(401), ...Array(25).fill(429)]);
  expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(limited!.body).toMatchObject({ code: 'RATE_LIMITED', details: { retry_after: expect.any(Number) } });
}

describe('client addresses: a client-sent CF-Connecting-IP is not trusted off the edge', () => {
  it('30 wrong passwords from 30 spoofed addresses are rate limited as from one address', async () => {
    await spoofedGuesses(url, env.state.adminUser);
  });

  it('likewise under wrangler dev, whose entry worker keeps a client\'s CF-Connecting-IP', async () => {
    const relay = await startWranglerDev({ port: await freePort(), stateDir: join(await tempDir('security-wd'), 'state'), vars: { SESSION_SECRET: 'security-api-session-secret-0123456789abcdef' } });
    try {
      await spoofedGuesses(relay.url, 'nobody');
    } finally {
      await relay.stop();
    }
  }, 120_000);

  it('a tunnel visit with a spoofed CF-Connecting-IP reaches the target as from 127.0.0.1', async () => {
    const res = await visit('echo', '/echo', { headers: { 'cf-connecting-ip': '203.0.113.66' } });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    // The visitor's own copy of the edge's header never reaches the target either.
    expect(seen.headers['cf-connecting-ip']).toBeUndefined();
  });
});

describe('a Host no URL can be made of is a 400 with the error body, never a 500', () => {
  const broken: [string, () => string][] = [
    ['two ports on a tunnel host', () => `name.localhost:${port}:80`],
    ['two ports on the API host', () => `127.0.0.1:${port}:80`],
    ['an unclosed IPv6 bracket', () => '[::1'],
    ['a port that is not a number', () => 'localhost:http'],
    ['a port out of range', () => 'localhost:99999'],
  ];
  for (const [what, host] of broken) {
    it(what, async () => {
      const answer = await withHost(host());
      expect(answer.split('\r\n')[0], answer).toBe('HTTP/1.1 400 Bad Request');
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
      expect(body).toEqual({ error: expect.any(String), code: 'BAD_REQUEST', details: { header: 'host' } });
    });
  }

  it('an empty Host is refused (by workerd itself, before the Worker runs)', async () => {
    expect((await withHost('')).split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  });

  it('a very long Host is a host like another: the API answers (401 without a key), not a 500', async () => {
    expect((await withHost(`${'a'.repeat(8000)}.localhost:${port}`)).split('\r\n')[0]).toBe('HTTP/1.1 401 Unauthorized');
  });
});

describe('tunnel targets that would loop back into the relay are refused', () => {
  const refusedAs = (r: Awaited<ReturnType<typeof http>>, field: string) => {
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body).toMatchObject({ code: 'TUNNEL_LOOP', error: expect.stringContaining('loop'), details: { field } });
  };

  it('a name under the tunnel domain, the relay host with its port, in either target form, any case; at create', async () => {
    refusedAs(await http(tunnelsUrl(), { key, json: { name: 'loopy', target: `loopy.localhost:${port}` } }), 'target');
    refusedAs(await http(tunnelsUrl(), { key, json: { name: 'loopy', target: `ECHO.LocalHost:80` } }), 'target');
    refusedAs(await http(tunnelsUrl(), { key, json: { name: 'loopy', target_host: 'a.b.localhost', target_port: 443 } }), 'target_host');
    refusedAs(await http(tunnelsUrl(), { key, json: { name: 'loopy', target: { target_host: 'echo.localhost', target_port: port } } }), 'target');
    refusedAs(await http(tunnelsUrl(), { key, json: { name: 'loopy', target: `127.0.0.1:${port}` } }), 'target');
    refusedAs(await http(tunnelsUrl(), { key, json: { name: 'loopy', target: `[::1]:${port}` } }), 'target');
    refusedAs(await http(`http://localhost:${port}/api/v1/devices/${deviceId}/tunnels`, { key, json: { name: 'loopy', target: `localhost:${port}` } }), 'target');
    expect((await http(`${tunnelsUrl()}/loopy`, { key })).status).toBe(404);
  });

  it('the device\'s own services stay allowed (127.0.0.1 and localhost on other ports)', async () => {
    const ok = await http(tunnelsUrl(), { key, json: { name: 'device-web', target: '127.0.0.1:8080' } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const local = await http(tunnelsUrl(), { key, json: { name: 'device-dev', target: 'localhost:3000' } });
    expect(local.status, JSON.stringify(local.body)).toBe(201);
  });

  it('at update: the target is left as it was', async () => {
    refusedAs(await http(`${tunnelsUrl()}/device-web`, { key, method: 'PATCH', json: { target: `web.localhost:${port}` } }), 'target');
    refusedAs(await http(`${tunnelsUrl()}/device-web`, { key, method: 'PATCH', json: { target_host: 'LOCALHOST', target_port: port } }), 'target_host');
    expect((await http(`${tunnelsUrl()}/device-web`, { key })).body).toMatchObject({ target: '127.0.0.1:8080' });
  });
});

describe("the tunnel-control seed's sample script, with only its host changed", () => {
  interface Answer {
    message: string;
    error_code: number;
    success: boolean;
  }
  let endpoint: string;
  let tunnelId: string;
  beforeAll(async () => {
    const me = await http(`${url}/api/v1/auth/me`, { key });
    tunnelId = (await http(`${tunnelsUrl()}/echo`, { key })).body.id;
    // The seed's scaffold: '{0}?dbid=…&host_uuid=…&ports_id=…&user_id=…' with {0} the call's URL.
    endpoint = `${url}/tunnel-api/{0}?dbid=${key}&host_uuid=${deviceId}&ports_id=${tunnelId}&user_id=${me.body.id}`;
  });
  const callScript = async (call: string, endpointTemplate = endpoint) => {
    const res = await fetch(endpointTemplate.replace('{0}', call));
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) as Answer };
  };

  it('connect, use the tunnel, disconnect', async () => {
    const open = await callScript('connect');
    expect(open.text).toBe('{"message":"OK","error_code":0,"success":true}');
    expect((await visit('echo', '/tiny')).status).toBe(200);
    const close = await callScript('disconnect');
    expect(close.text).toBe('{"message":"OK","error_code":0,"success":true}');
    expect((await visit('echo', '/tiny')).status).toBe(503);
    expect((await callScript('connect')).body.success).toBe(true);
    await waitFor('tunnel open again', async () => (await visit('echo', '/tiny')).status === 200, 10_000);
    expect((await callScript('client_status')).text).toBe('{"message":"online","error_code":0,"success":true}');
  });

  it("a user_id that is not the key owner's is refused in the seed's shape", async () => {
    const theirs = await callScript('disconnect', endpoint.replace(/user_id=[^&]*/, 'user_id=12345'));
    expect(theirs.status).toBe(403);
    expect(Object.keys(theirs.body)).toEqual(['message', 'error_code', 'success']);
    expect(theirs.body).toMatchObject({ error_code: 31, success: false, message: expect.stringContaining('user_id') });
    expect((await visit('echo', '/tiny')).status).toBe(200);
  });

  it('an alias and our own name for one parameter must agree', async () => {
    const both = await callScript('client_status', `${endpoint}&device_id=someone-else`);
    expect(both.body).toMatchObject({ error_code: 31, success: false });
  });
});
