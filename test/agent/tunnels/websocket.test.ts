// WebSocket tunnels: the hub side speaks ws-records on the stream, a real Bun.serve WebSocket
// server is the target; messages, subprotocols and closes must cross intact in both directions.
import { afterAll, beforeAll, describe, expect, it } from 'bun:test';
import type { Server } from 'bun';
import type { MuxStream } from '../../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import { encodeWsRecord, wsClosePayload, WsRecordDecoder, WsRecordKind, type WsRecord } from '../../../shared/protocol/ws-records.ts';
import { bytes, headerObject, resetOf, rig, sha256, tunnel, unusedPort, waitFor } from './helpers.ts';

type WsData = { path: string; headers: Record<string, string> };
let server: Server<WsData>;
const seen = { closes: [] as { code: number; reason: string }[], handshakes: [] as WsData[] };

beforeAll(() => {
  server = Bun.serve<WsData>({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname === '/not-ws') return new Response('nope', { status: 404 });
      const protocols = (req.headers.get('sec-websocket-protocol') ?? '').split(',').map((s) => s.trim());
      const chosen = protocols.includes('chat.v2') ? { 'sec-websocket-protocol': 'chat.v2' } : undefined;
      const data = { path: url.pathname + url.search, headers: headerObject(req.headers) };
      seen.handshakes.push(data);
      return srv.upgrade(req, { data, headers: chosen }) ? undefined : new Response('upgrade failed', { status: 400 });
    },
    websocket: {
      message(ws, message) {
        if (message === 'close-me') return ws.close(4001, 'asked to close');
        ws.send(message);
      },
      close(_ws, code, reason) {
        seen.closes.push({ code, reason });
      },
    },
  });
});

afterAll(() => server.stop(true));

const wsOpen = (path = '/chat', headers: [string, string][] = [], protocols: string[] = []): StreamOpen => ({ kind: 'websocket', tunnel: 'ws', path, headers, protocols });

/** The hub's side of a websocket stream: send records, receive decoded records. */
function peer(stream: MuxStream) {
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const decoder = new WsRecordDecoder();
  const inbox: WsRecord[] = [];
  let ended = false;
  void (async () => {
    for (;;) {
      const next = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (next.done) break;
      inbox.push(...decoder.push(next.value));
    }
    ended = true;
  })();
  return {
    sendText: (t: string) => writer.write(encodeWsRecord(WsRecordKind.TEXT, t)),
    sendBinary: (b: Uint8Array) => writer.write(encodeWsRecord(WsRecordKind.BINARY, b)),
    sendRaw: (b: Uint8Array) => writer.write(b),
    sendClose: (code: number, reason: string) => writer.write(encodeWsRecord(WsRecordKind.CLOSE, wsClosePayload(code, reason))),
    end: () => writer.close(),
    next: async () => {
      await waitFor(() => inbox.length > 0, 5_000, 'a record');
      return inbox.shift()!;
    },
    get ended() {
      return ended;
    },
  };
}

describe('websocket tunnel', () => {
  it('relays text and binary messages both ways and picks the subprotocol the target chose', async () => {
    const r = rig([tunnel('ws', 'http', server.port!)]);
    const stream = r.open(wsOpen('/chat?room=1', [['cookie', 'session=abc'], ['origin', 'https://web.example'], ['host', 'web.example'], ['sec-websocket-key', 'dmlzaXRvcidzIGtleQ==']], ['chat.v1', 'chat.v2']));
    const head = await stream.accepted;
    expect(head).toEqual({ status: 101, protocol: 'chat.v2' });
    const hs = seen.handshakes.at(-1)!;
    expect(hs.path).toBe('/chat?room=1');
    expect(hs.headers.cookie).toBe('session=abc');
    expect(hs.headers.origin).toBe('https://web.example');
    expect(hs.headers.host).toBe(`127.0.0.1:${server.port}`);
    expect(hs.headers['x-forwarded-host']).toBe('web.example');
    // The agent made its own handshake; the visitor's key did not leak into it.
    expect(hs.headers['sec-websocket-key']).not.toBe('dmlzaXRvcidzIGtleQ==');

    const ws = peer(stream);
    await ws.sendText('hello ✓');
    expect(await ws.next()).toEqual({ kind: 'text', text: 'hello ✓' });
    const blob = bytes(1024 * 1024 + 3, 4);
    await ws.sendBinary(blob);
    const back = await ws.next();
    expect(back.kind).toBe('binary');
    expect(await sha256((back as { data: Uint8Array }).data)).toBe(await sha256(blob));
    expect(r.service.stats().open.websocket).toBe(1);
    // Two records in one DATA chunk: the second is a view at an offset and must go out as itself.
    const a = encodeWsRecord(WsRecordKind.BINARY, new Uint8Array([1, 2, 3]));
    const b = encodeWsRecord(WsRecordKind.TEXT, 'second');
    const both = new Uint8Array(a.byteLength + b.byteLength);
    both.set(a);
    both.set(b, a.byteLength);
    await ws.sendRaw(both);
    const first = await ws.next();
    expect(first.kind === 'binary' && [...first.data]).toEqual([1, 2, 3]);
    expect(await ws.next()).toEqual({ kind: 'text', text: 'second' });

    // The visitor closes: the target sees its code and reason, then the target's close comes back.
    await ws.sendClose(4002, 'visitor bye');
    await waitFor(() => seen.closes.some((c) => c.code === 4002 && c.reason === 'visitor bye'), 3_000, 'the target to see the close');
    expect(await ws.next()).toMatchObject({ kind: 'close', code: 4002 });
    await ws.end();
    await waitFor(() => ws.ended, 3_000, 'the stream to end');
    await stream.closed;
    await waitFor(() => r.service.stats().open.websocket === 0, 3_000, 'the session to end');
  });

  it('relays a close the target starts, with its code and reason', async () => {
    const r = rig([tunnel('ws', 'http', server.port!)]);
    const stream = r.open(wsOpen());
    await stream.accepted;
    const ws = peer(stream);
    await ws.sendText('close-me');
    expect(await ws.next()).toEqual({ kind: 'close', code: 4001, reason: 'asked to close' });
    // The target's side is over: our readable ends after the close record.
    await waitFor(() => ws.ended, 3_000, 'the agent to half-close');
    await ws.end();
    await stream.closed;
    await waitFor(() => r.service.stats().open.websocket === 0, 3_000, 'the session to end');
  });

  it('closes the target connection when the visitor resets', async () => {
    const r = rig([tunnel('ws', 'http', server.port!)]);
    const stream = r.open(wsOpen());
    await stream.accepted;
    const closes = seen.closes.length;
    stream.reset('CANCELLED', 'visitor vanished');
    await waitFor(() => seen.closes.length > closes, 3_000, 'the target to see a close');
    expect(seen.closes.at(-1)!.code).toBe(1001);
    await waitFor(() => r.service.stats().open.websocket === 0, 3_000, 'the session to end');
  });

  it('resets with TARGET_REFUSED when nothing listens', async () => {
    const port = await unusedPort();
    const r = rig([tunnel('ws', 'http', port)]);
    const reset = await resetOf(r.open(wsOpen()));
    expect(reset).toEqual({ code: 'TARGET_REFUSED', message: `connect ECONNREFUSED 127.0.0.1:${port}` });
    await waitFor(() => r.service.stats().open.websocket === 0, 3_000, 'the session to end');
  });

  it('resets with TARGET_ERROR when the target refuses the upgrade', async () => {
    const r = rig([tunnel('ws', 'http', server.port!)]);
    const reset = await resetOf(r.open(wsOpen('/not-ws')));
    expect(reset.code).toBe('TARGET_ERROR');
    expect(reset.message).toContain('404');
  });

  it('resets with TARGET_TIMEOUT when the handshake never completes', async () => {
    const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    try {
      const r = rig([tunnel('ws', 'http', silent.port)], { connectTimeoutMs: 200 });
      const reset = await resetOf(r.open(wsOpen()));
      expect(reset).toEqual({ code: 'TARGET_TIMEOUT', message: `connect to 127.0.0.1:${silent.port} timed out after 0.2 s` });
    } finally {
      silent.stop(true);
    }
  });
});
