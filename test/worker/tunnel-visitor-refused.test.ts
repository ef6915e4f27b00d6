// The agent refuses a visitor's request it will not forward (a path starting with "//", which
// could name another host once appended to the target's authority; CONNECT or TRACE) with a
// BAD_REQUEST reset. That is the visitor's fault, so the visitor hears 400, not a 502 that
// blames the target. The fake agent here resets the way agent/tunnels/service.ts does.
import { beforeAll, describe, expect, it } from 'vitest';
import { userWithKey } from './helpers.ts';
import { enrollDevice } from './device-helpers.ts';
import { fakeTunnelAgent, makeTunnel, tunnelName, visit } from './tunnels-helpers.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

describe('a visit the agent refuses as malformed', () => {
  it('answers 400 BAD_REQUEST (not 502) when the agent resets it with BAD_REQUEST, and the next visit is served', async () => {
    const { deviceId: id, privateKey } = await enrollDevice(admin, { autoApprove: true });
    const t = await makeTunnel(admin, id, { name: tunnelName('refused') });
    const agent = await fakeTunnelAgent(id, privateKey, {
      onOpen: (stream) => {
        if (stream.open?.kind === 'http' && stream.open.path.startsWith('//')) return stream.reset('BAD_REQUEST', 'the path must not start with "//"');
        stream.accept({ status: 200, headers: [] }, { body: new TextEncoder().encode('fine'), fin: true });
      },
    });

    const refused = await visit(t.name, '//evil.example/x', { headers: { accept: 'application/json' } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ code: 'BAD_REQUEST', error: expect.stringContaining('//') });

    const ok = await visit(t.name, '/x');
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('fine');
    agent.ws.close();
  });
});
