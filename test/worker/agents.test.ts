// Tyto's agents API over pirelay's devices: the documented shapes, the pending queue, and
// "Add agent manually" whose token lets `agent enroll` claim the chosen id.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { agentJwt, connectAgent, connectRequest, facts, insertDevice, keyPair } from './device-helpers.ts';

let admin: string;
let operator: string;
let viewer: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  operator = (await userWithKey(['operator'])).key;
  viewer = (await userWithKey(['viewer'])).key;
});

interface AgentView {
  id: string;
  name: string;
  hostname: string;
  status: string;
  architecture: string;
  os: string;
  last_seen: string | null;
  registered_at: string;
}

async function agents(path = '/api/v1/agents'): Promise<AgentView[]> {
  const res = await api(path, { key: viewer });
  expect(res.status).toBe(200);
  return ((await res.json()) as { agents: AgentView[] }).agents;
}

async function addAgent(id: string, name?: string) {
  return api('/api/v1/agents', { key: admin, json: name === undefined ? { id } : { id, name } });
}

async function enrollWith(token: string, hostname = 'web-server') {
  const keys = await keyPair();
  const res = await api('/api/v1/enroll', {
    json: { token, public_key: keys.publicJwk, facts: facts({ hostname, architecture: 'x86_64', os: 'Linux' }), agent_version: '0.2.0' },
  });
  return { res, ...keys };
}

describe('GET /api/v1/agents', () => {
  it("lists devices in Tyto's shape with Go architecture names and lower-case os", async () => {
    const online = await insertDevice({ status: 'approved', online: true, hostname: 'web-server' });
    await env.DB.prepare("UPDATE devices SET architecture = 'x86_64', last_seen = ?1 WHERE id = ?2").bind(Date.parse('2024-01-15T10:30:00Z'), online).run();
    const offline = await insertDevice({ status: 'approved' });
    await env.DB.prepare("UPDATE devices SET architecture = 'aarch64' WHERE id = ?1").bind(offline).run();
    const arm = await insertDevice({ status: 'pending' });
    await env.DB.prepare("UPDATE devices SET architecture = 'armv7l' WHERE id = ?1").bind(arm).run();
    const rejected = await insertDevice({ status: 'rejected' });
    const revoked = await insertDevice({ status: 'revoked' });

    const all = await agents();
    const byId = new Map(all.map((a) => [a.id, a]));
    const a = byId.get(online)!;
    expect(Object.keys(a).sort()).toEqual(['architecture', 'hostname', 'id', 'last_seen', 'name', 'os', 'registered_at', 'status']);
    expect(a).toMatchObject({ hostname: 'web-server', status: 'online', architecture: 'amd64', os: 'linux', last_seen: '2024-01-15T10:30:00.000Z' });
    expect(byId.get(offline)).toMatchObject({ status: 'offline', architecture: 'arm64' });
    expect(byId.get(arm)).toMatchObject({ status: 'pending', architecture: 'arm' });
    expect(byId.get(rejected)!.status).toBe('rejected');
    expect(byId.get(revoked)!.status).toBe('revoked');
  });

  it('GET /agents/pending lists only pending agents and is not taken for an id', async () => {
    const pending = await insertDevice({ status: 'pending' });
    const approved = await insertDevice({ status: 'approved' });
    const list = await agents('/api/v1/agents/pending');
    expect(list.map((a) => a.id)).toContain(pending);
    expect(list.map((a) => a.id)).not.toContain(approved);
    expect(list.every((a) => a.status === 'pending')).toBe(true);
  });

  it('GET /agents/:id gives one agent, 404 for an unknown one, 401 without a key', async () => {
    const id = await insertDevice({ status: 'approved', name: 'Web Server' });
    const res = await api(`/api/v1/agents/${id}`, { key: viewer });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, name: 'Web Server', status: 'offline' });
    expect((await api('/api/v1/agents/no-such-agent', { key: viewer })).status).toBe(404);
    expect((await api('/api/v1/agents')).status).toBe(401);
  });
});

describe('POST /api/v1/agents (add agent manually)', () => {
  it('creates an approved agent with a token that lets enroll claim its id', async () => {
    const res = await addAgent('new-agent', 'New Agent');
    expect(res.status).toBe(201);
    const created = (await res.json()) as { agent: AgentView; enrollment_token: string; enrollment_token_expires_at: string };
    expect(created.agent).toMatchObject({ id: 'new-agent', name: 'New Agent', status: 'offline', hostname: '', last_seen: null });
    expect(created.enrollment_token).toMatch(/^pre_/);
    expect(Date.parse(created.enrollment_token_expires_at)).toBeGreaterThan(Date.now() + 6 * 86_400_000);

    const { res: enrolled, privateKey } = await enrollWith(created.enrollment_token);
    expect(enrolled.status).toBe(201);
    expect(await enrolled.json()).toEqual({ device_id: 'new-agent', name: 'New Agent', status: 'approved' });
    const agent = (await (await api('/api/v1/agents/new-agent', { key: viewer })).json()) as AgentView;
    expect(agent).toMatchObject({ hostname: 'web-server', architecture: 'amd64', os: 'linux', status: 'offline' });

    // The claimed id now connects with the enrolled key.
    const conn = await connectAgent('new-agent', privateKey);
    expect((await agents()).find((a) => a.id === 'new-agent')!.status).toBe('online');
    conn.ws.close(1000, 'done');

    // The token was single-use.
    const { res: again } = await enrollWith(created.enrollment_token);
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ code: 'ENROLLMENT_TOKEN_EXHAUSTED' });
  });

  it('refuses a duplicate id (409), bad ids (400) and non-admins (403)', async () => {
    expect((await addAgent('dup-agent')).status).toBe(201);
    const dup = await addAgent('dup-agent', 'Other');
    expect(dup.status).toBe(409);
    expect(await dup.json()).toMatchObject({ code: 'AGENT_EXISTS' });
    expect(((await (await api('/api/v1/agents/dup-agent', { key: viewer })).json()) as AgentView).name).toBe('dup-agent');

    for (const id of ['', 'has space', 'slash/id', 'x'.repeat(65), 'pending', 42]) {
      const res = await api('/api/v1/agents', { key: admin, json: { id, name: 'X' } });
      expect(res.status, String(id)).toBe(400);
    }
    expect((await api('/api/v1/agents', { key: admin, json: { name: 'no id' } })).status).toBe(400);
    expect((await api('/api/v1/agents', { key: operator, json: { id: 'op-agent' } })).status).toBe(403);
    expect((await api('/api/v1/agents/op-agent', { key: viewer })).status).toBe(404);
  });
});

describe('removing and revoking agents', () => {
  it('DELETE removes the agent and kills its unused token', async () => {
    const created = (await (await addAgent('to-delete')).json()) as { enrollment_token: string };
    expect((await api('/api/v1/agents/to-delete', { key: operator, method: 'DELETE' })).status).toBe(403);
    const res = await api('/api/v1/agents/to-delete', { key: admin, method: 'DELETE' });
    expect(res.status).toBe(204);
    expect((await api('/api/v1/agents/to-delete', { key: viewer })).status).toBe(404);
    expect((await api('/api/v1/agents/to-delete', { key: admin, method: 'DELETE' })).status).toBe(404);
    const { res: enroll } = await enrollWith(created.enrollment_token);
    expect(enroll.status).toBe(401);
    expect(await enroll.json()).toMatchObject({ code: 'INVALID_ENROLLMENT_TOKEN' });
  });

  it('revoke marks it revoked, closes its socket and refuses its key', async () => {
    const created = (await (await addAgent('to-revoke')).json()) as { enrollment_token: string };
    const { privateKey } = await enrollWith(created.enrollment_token);
    const conn = await connectAgent('to-revoke', privateKey);
    expect((await api('/api/v1/agents/to-revoke/revoke', { key: viewer, method: 'POST' })).status).toBe(403);
    const res = await api('/api/v1/agents/to-revoke/revoke', { key: admin, method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 'to-revoke', status: 'revoked' });
    expect((await conn.closed).code).toBe(4003);
    expect((await connectRequest(await agentJwt('to-revoke', privateKey))).status).toBe(403);
    expect((await api('/api/v1/agents/nobody/revoke', { key: admin, method: 'POST' })).status).toBe(404);
  });

  it('revoking an agent before it enrolled kills its token', async () => {
    const created = (await (await addAgent('revoked-early')).json()) as { enrollment_token: string };
    expect((await api('/api/v1/agents/revoked-early/revoke', { key: admin, method: 'POST' })).status).toBe(200);
    const { res } = await enrollWith(created.enrollment_token);
    expect(res.status).toBe(401);
  });
});

describe('the pending queue', () => {
  it('approves a pending agent; approving anything not pending is 404', async () => {
    const id = await insertDevice({ status: 'pending' });
    expect((await api(`/api/v1/agents/pending/${id}/approve`, { key: operator, method: 'POST' })).status).toBe(403);
    const res = await api(`/api/v1/agents/pending/${id}/approve`, { key: admin, method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: 'offline' });
    expect((await agents('/api/v1/agents/pending')).map((a) => a.id)).not.toContain(id);

    const again = await api(`/api/v1/agents/pending/${id}/approve`, { key: admin, method: 'POST' });
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ code: 'NOT_FOUND', details: { status: 'approved' } });
    expect((await api('/api/v1/agents/pending/nobody/approve', { key: admin, method: 'POST' })).status).toBe(404);
  });

  it('rejects a pending agent; rejecting anything not pending is 404', async () => {
    const id = await insertDevice({ status: 'pending' });
    const res = await api(`/api/v1/agents/pending/${id}/reject`, { key: admin, method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: 'rejected' });
    expect((await api(`/api/v1/agents/pending/${id}/reject`, { key: admin, method: 'POST' })).status).toBe(404);
    const approved = await insertDevice({ status: 'approved' });
    expect((await api(`/api/v1/agents/pending/${approved}/reject`, { key: admin, method: 'POST' })).status).toBe(404);
    expect(((await (await api(`/api/v1/agents/${approved}`, { key: viewer })).json()) as AgentView).status).toBe('offline');
  });

  it('documents the agents routes in openapi.json', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/agents']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/agents/{id}']!).sort()).toEqual(['delete', 'get']);
    expect(doc.paths['/api/v1/agents/pending']).toHaveProperty('get');
    expect(doc.paths['/api/v1/agents/{id}/revoke']).toHaveProperty('post');
    expect(doc.paths['/api/v1/agents/pending/{id}/approve']).toHaveProperty('post');
    expect(doc.paths['/api/v1/agents/pending/{id}/reject']).toHaveProperty('post');
  });
});
