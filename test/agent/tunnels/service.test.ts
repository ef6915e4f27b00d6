// The tunnel service as a gate: only tunnels in the hub's table, only of the right kind, only
// origin-form paths, and the target always from the table, whatever the OPEN carries.
import { afterAll, beforeAll, describe, expect, it } from 'bun:test';
import type { Server } from 'bun';
import { checkPath } from '../../../agent/tunnels/service.ts';
import { httpOpen, readAll, resetOf, rig, text, tunnel, waitFor } from './helpers.ts';

/** Two local servers: the tunnel points at `allowed`; a visitor must never reach `other`. */
let allowed: Server<unknown>;
let other: Server<unknown>;
const hits = { allowed: [] as string[], other: [] as string[] };

beforeAll(() => {
  const serve = (name: 'allowed' | 'other') =>
    Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(req, server) {
        hits[name].push(new URL(req.url).pathname);
        if (req.headers.get('upgrade') === 'websocket') return server.upgrade(req) ? undefined : new Response('no', { status: 400 });
        if (new URL(req.url).pathname === '/forever') {
          let sent = false;
          return new Response(new ReadableStream({ pull: (c) => (sent ? new Promise(() => {}) : ((sent = true), c.enqueue(new TextEncoder().encode('first')))) }));
        }
        return new Response(`${name} ${new URL(req.url).pathname}`);
      },
      websocket: {
        message(ws, m) {
          ws.send(m);
        },
      },
    });
  allowed = serve('allowed');
  other = serve('other');
});

afterAll(() => {
  allowed.stop(true);
  other.stop(true);
});

describe('tunnel service', () => {
  it('resets a stream for a tunnel it does not know with UNKNOWN_TUNNEL', async () => {
    const r = rig([tunnel('t1', 'http', allowed.port!)]);
    const reset = await resetOf(r.open(httpOpen('nope', 'GET', '/')));
    expect(reset.code).toBe('UNKNOWN_TUNNEL');
    // Tunnels are looked up by id, never by name.
    expect((await resetOf(r.open(httpOpen('t1-name', 'GET', '/')))).code).toBe('UNKNOWN_TUNNEL');
    expect(r.service.stats().refused).toBe(2);
    expect(hits.allowed).toEqual([]);
  });

  it('resets a stream of the wrong kind with KIND_MISMATCH', async () => {
    const r = rig([tunnel('web', 'http', allowed.port!), tunnel('ssh', 'tcp', allowed.port!)]);
    expect((await resetOf(r.open({ kind: 'tcp', tunnel: 'web' }))).code).toBe('KIND_MISMATCH');
    expect((await resetOf(r.open(httpOpen('ssh', 'GET', '/')))).code).toBe('KIND_MISMATCH');
    expect((await resetOf(r.open({ kind: 'websocket', tunnel: 'ssh', path: '/', headers: [], protocols: [] }))).code).toBe('KIND_MISMATCH');
    expect(hits.allowed).toEqual([]);
  });

  it('refuses anything but an origin-form path with BAD_REQUEST', async () => {
    const r = rig([tunnel('web', 'http', allowed.port!)]);
    const bad = ['//evil.com/', 'http://x/', `http://127.0.0.1:${other.port}/`, '', '*', 'evil.com/', '@evil.com/', '/\\evil.com/', '/a b', '/a\r\nHost: evil'];
    for (const path of bad) {
      const reset = await resetOf(r.open(httpOpen('web', 'GET', path)));
      expect({ path, code: reset.code }).toEqual({ path, code: 'BAD_REQUEST' });
    }
    const ws = await resetOf(r.open({ kind: 'websocket', tunnel: 'web', path: '//evil.com/', headers: [], protocols: [] }));
    expect(ws.code).toBe('BAD_REQUEST');
    expect(hits.allowed).toEqual([]);
    expect(hits.other).toEqual([]);
  });

  it('checkPath accepts ordinary paths', () => {
    for (const path of ['/', '/a/b?c=d&e=%20f', '/@user', '/a//b', '/%2F%2Fevil.com', '/path#frag']) expect({ path, bad: checkPath(path) }).toEqual({ path, bad: null });
  });

  it('refuses CONNECT and TRACE', async () => {
    const r = rig([tunnel('web', 'http', allowed.port!)]);
    expect((await resetOf(r.open(httpOpen('web', 'CONNECT', '/')))).code).toBe('BAD_REQUEST');
    expect((await resetOf(r.open(httpOpen('web', 'TRACE', '/')))).code).toBe('BAD_REQUEST');
    expect((await resetOf(r.open(httpOpen('web', 'GE T', '/')))).code).toBe('BAD_REQUEST');
  });

  it('takes the target from the table, whatever the OPEN says', async () => {
    const r = rig([tunnel('web', 'http', allowed.port!)]);
    hits.allowed.length = 0;
    const stream = r.open(httpOpen('web', 'GET', `/@127.0.0.1:${other.port}/x`, [['host', `127.0.0.1:${other.port}`], ['x-forwarded-host', `127.0.0.1:${other.port}`]]));
    await stream.writable.close();
    expect((await stream.accepted).status).toBe(200);
    expect(text(await readAll(stream.readable))).toBe(`allowed /@127.0.0.1:${other.port}/x`);
    expect(hits.other).toEqual([]);

    const ws = r.open({ kind: 'websocket', tunnel: 'web', path: '/ws', headers: [['host', `127.0.0.1:${other.port}`]], protocols: [] });
    expect((await ws.accepted).status).toBe(101);
    expect(hits.allowed).toContain('/ws');
    expect(hits.other).toEqual([]);
    ws.reset('CANCELLED', 'done');
  });

  it('resets the streams of a tunnel the hub removes, and counts what is open', async () => {
    const r = rig([tunnel('web', 'http', allowed.port!), tunnel('keep', 'http', allowed.port!)]);
    const gone = r.open(httpOpen('web', 'GET', '/forever'));
    const kept = r.open(httpOpen('keep', 'GET', '/forever'));
    await Promise.all([gone.writable.close(), kept.writable.close()]);
    await Promise.all([gone.accepted, kept.accepted]);
    expect(r.service.stats()).toMatchObject({ tunnels: 2, open: { http: 2, websocket: 0, tcp: 0 }, opened: { http: 2 } });

    r.service.setTunnels([tunnel('keep', 'http', allowed.port!)]);
    const err = await readAll(gone.readable).then(
      () => null,
      (e) => e,
    );
    expect(err?.code).toBe('TUNNEL_REMOVED');
    await waitFor(() => r.service.stats().open.http === 1, 2_000, 'one session to end');
    expect(r.service.stats().tunnels).toBe(1);

    // Pointing the tunnel elsewhere ends its streams too: they were made for the old target.
    r.service.setTunnels([tunnel('keep', 'http', other.port!)]);
    const err2 = await readAll(kept.readable).then(
      () => null,
      (e) => e,
    );
    expect(err2?.code).toBe('TUNNEL_CHANGED');
    await waitFor(() => r.service.stats().open.http === 0, 2_000, 'the other session to end');
  });

  it('closeAll ends every kind of stream with SOCKET_CLOSED', async () => {
    const r = rig([tunnel('web', 'http', allowed.port!)]);
    const http = r.open(httpOpen('web', 'GET', '/forever'));
    await http.writable.close();
    await http.accepted;
    const ws = r.open({ kind: 'websocket', tunnel: 'web', path: '/ws', headers: [], protocols: [] });
    await ws.accepted;
    expect(r.service.stats().open).toEqual({ http: 1, websocket: 1, tcp: 0 });
    r.service.closeAll();
    for (const s of [http, ws]) {
      const err = await readAll(s.readable).then(
        () => null,
        (e) => e,
      );
      expect(err?.code).toBe('SOCKET_CLOSED');
    }
    await waitFor(() => r.service.stats().open.http + r.service.stats().open.websocket === 0, 2_000, 'all sessions to end');
  });
});
