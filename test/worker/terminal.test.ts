// The terminal through a real DeviceHub to a fake agent (terminal-helpers.ts): a link's token opens
// the socket once, for its device only, while it is fresh, for a user who still may; bytes go both
// ways byte for byte; the viewer's acks pace the device's output (a viewer that never acks stops
// the hub reading, so the device's writes stall); bad messages are refused and never forwarded; a
// viewer that floods is closed 1013; a resume token re-attaches to the session once; a handover
// and opening a terminal are audited; PiTunnel's /terminal gives a working link; sessions are
// listed and closed through the API.
import { env, runInDurableObject, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, BASE, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { eventually, insertDevice, waitFor } from './device-helpers.ts';
import { browserSession, makeTeam, ORIGIN, userWithPermissions } from './kvm-helpers.ts';
import { FLOOD_RECORD, openSocket, protocols, terminalDevice, tokenOf, viewer, type FakeTerminalAgent } from './terminal-helpers.ts';
import { hubFor } from '../../worker/devices/hub.ts';
import { TERMINAL_INPUT_LIMIT, TERMINAL_SUBPROTOCOL, TerminalCloseCode, TerminalLinkSchema, TerminalServerMessageSchema } from '../../shared/api/terminal.ts';
import { TERMINAL_WINDOW } from '../../shared/protocol/terminal.ts';
import type { DeviceHub } from '../../durable-objects/device-hub.ts';
import { joinBytes } from '../../shared/bytes.ts';
import { OutputWindow, RecordQueue } from '../../durable-objects/capabilities/terminal-bridge.ts';
import { WsRecordDecoder, WsRecordKind } from '../../shared/protocol/ws-records.ts';

let admin: { userId: string; username: string; key: string };
let deviceId: string;
let agent: FakeTerminalAgent;

beforeAll(async () => {
  admin = await userWithKey(['admin']);
  const d = await terminalDevice(admin.key);
  deviceId = d.deviceId;
  agent = d.agent;
});

async function link(key = admin.key, device = deviceId, session?: string) {
  const res = await api(`/api/v1/devices/${device}/terminal${session ? `?session=${session}` : ''}`, { key });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return TerminalLinkSchema.parse(JSON.parse(text));
}

const hubStub = (id: string) => hubFor(env, id) as unknown as DurableObjectStub<DeviceHub>;

async function auditRows(action: string, target = deviceId) {
  return (await env.DB.prepare('SELECT * FROM audit_log WHERE action = ?1 AND target_id = ?2 ORDER BY id').bind(action, target).all<Record<string, unknown>>()).results;
}

const joined = (chunks: Uint8Array[]) => joinBytes(chunks, chunks.reduce((n, c) => n + c.byteLength, 0));
const decode = (chunks: Uint8Array[]) => new TextDecoder().decode(joined(chunks));
const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

describe('a terminal link and its socket', () => {
  it('gives a URL with a token in its fragment, whose socket carries bytes both ways, byte for byte', async () => {
    const l = await link();
    expect(l.terminal_url).toMatch(new RegExp(`^http://relay\\.test/terminal/${deviceId}#[A-Za-z0-9_-]{43}$`));
    expect(l.session).toBeNull();
    expect(Date.parse(l.expires_at)).toBeGreaterThan(Date.now());
    const v = await viewer(deviceId, tokenOf(l.terminal_url), '?cols=120&rows=40');
    // The relay answers with the terminal's subprotocol only, never the token.
    expect(v.protocol).toBe(TERMINAL_SUBPROTOCOL);
    const { session, viewer: viewerId, resume } = await v.ready();
    expect(agent.opens.at(-1)).toMatchObject({ kind: 'terminal', cols: 120, rows: 40, viewer: { id: viewerId, user_id: admin.userId, may_share: true } });
    expect(agent.opens.at(-1)!.session).toBeUndefined();
    expect(resume).not.toBe(tokenOf(l.terminal_url));
    // Every text message the page gets is one of the documented ones.
    for (const m of v.messages) expect(TerminalServerMessageSchema.safeParse(m).success, JSON.stringify(m)).toBe(true);
    expect(v.messages[0]).toMatchObject({ t: 'attached', session: { id: session }, typing: true });

    // One piece at a time, each echoed before the next goes: the fake agent's writes then cannot
    // overtake each other in this harness (see terminal-helpers.ts).
    const screen = v.outputBytes();
    let seen = screen;
    const echo = async (bytes: Uint8Array) => {
      v.send(bytes);
      await waitFor(() => v.outputBytes() >= seen + bytes.byteLength, 'the echo');
      const back = joined(v.output).subarray(seen);
      seen += bytes.byteLength;
      return back;
    };
    expect(new TextDecoder().decode(await echo(new TextEncoder().encode('echo hello\r')))).toBe('echo hello\r');
    // Every byte value, UTF-8 and not, comes back as it went.
    const binaryish = Uint8Array.from({ length: 4 * 16384 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
    for (let at = 0; at < binaryish.byteLength; at += 16384) {
      const part = binaryish.subarray(at, at + 16384);
      expect(same(await echo(part), part)).toBe(true);
    }
    expect(same(await echo(new TextEncoder().encode('héllo ✓ 日本\r')), new TextEncoder().encode('héllo ✓ 日本\r'))).toBe(true);
    // Nothing larger than a record went to the page.
    expect(Math.max(...v.output.map((b) => b.byteLength))).toBeLessThanOrEqual(64 * 1024);
    expect(agent.input.get(viewerId)!.bytes.length).toBe(seen - screen);
    v.ws.close(1000);

    const [opened] = (await auditRows('terminal.open')).slice(-1);
    expect(opened).toMatchObject({ actor_id: admin.userId, credential: 'api_key', target_type: 'device', team_id: 'test-team' });
    expect(JSON.parse(String(opened!.details))).toEqual({ session: 'new' });
  });

  it('refuses a token used before, one for another device, an expired one, and none at all (401, no stream)', async () => {
    const other = await terminalDevice(admin.key);
    const opens = agent.opens.length;
    const used = tokenOf((await link()).terminal_url);
    // A request that could never have been a terminal (no upgrade, a bad size) does not use the token up.
    await expectError(await SELF.fetch(`${BASE}/api/v1/devices/${deviceId}/terminal/socket`, { headers: { 'sec-websocket-protocol': protocols(used) } }), 426, 'UPGRADE_REQUIRED');
    await expectError(await openSocket(deviceId, used, {}, '?cols=wide'), 400, 'VALIDATION_ERROR');
    const v = await viewer(deviceId, used);
    await v.ready();
    await expectError(await openSocket(deviceId, used), 401, 'TERMINAL_TOKEN_INVALID');

    // Made for the other device: this device's hub has never heard of it (and it stays good there).
    const elsewhere = tokenOf((await link(admin.key, other.deviceId)).terminal_url);
    await expectError(await openSocket(deviceId, elsewhere), 401, 'TERMINAL_TOKEN_INVALID');

    const stale = tokenOf((await link()).terminal_url);
    await runInDurableObject(hubStub(deviceId), async (_hub, state) => {
      state.storage.sql.exec("UPDATE terminal_tokens SET expires_at = 1 WHERE purpose = 'link'");
    });
    await expectError(await openSocket(deviceId, stale), 401, 'TERMINAL_TOKEN_INVALID');

    await expectError(await openSocket(deviceId, null), 401, 'TERMINAL_TOKEN_INVALID');
    await expectError(await openSocket(deviceId, 'x'.repeat(43)), 401, 'TERMINAL_TOKEN_INVALID');
    // A relay credential is not a terminal token, and neither is the browser's cookie (so no CSRF either).
    await expectError(await openSocket(deviceId, null, { authorization: `Bearer ${admin.key}` }), 401, 'TERMINAL_TOKEN_INVALID');
    const { cookie } = await browserSession();
    await expectError(await openSocket(deviceId, null, { cookie, origin: 'https://evil.example' }), 401, 'TERMINAL_TOKEN_INVALID');
    await expectError(await openSocket(deviceId, null, { cookie, origin: ORIGIN }), 401, 'TERMINAL_TOKEN_INVALID');
    expect(agent.opens.length).toBe(opens + 1);

    // The other device's token still opens the other device's terminal.
    const w = await viewer(other.deviceId, elsewhere);
    await w.ready();
    w.ws.close(1000);
    v.ws.close(1000);
  }, 30_000);

  it('re-checks the user when the token is used: lost terminal:open 403, lost the team 404, a revoked key 401', async () => {
    const opener = await userWithPermissions(['devices:read', 'terminal:open']);
    const role = (await env.DB.prepare('SELECT roles FROM users WHERE id = ?1').bind(opener.userId).first<{ roles: string }>())!.roles;
    const roleId = (JSON.parse(role) as string[])[0]!;
    const setPermissions = (p: string[]) => env.DB.prepare('UPDATE roles SET permissions = ?1 WHERE id = ?2').bind(JSON.stringify(p), roleId).run();

    const first = tokenOf((await link(opener.key)).terminal_url);
    await setPermissions(['devices:read']);
    await expectError(await openSocket(deviceId, first), 403, 'FORBIDDEN');
    await setPermissions(['devices:read', 'terminal:open']);

    const second = tokenOf((await link(opener.key)).terminal_url);
    await env.DB.prepare('DELETE FROM team_members WHERE user_id = ?1').bind(opener.userId).run();
    await expectError(await openSocket(deviceId, second), 404, 'NOT_FOUND');
    await env.DB.prepare("INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ('test-team', ?1, 'member', 0)").bind(opener.userId).run();

    const third = tokenOf((await link(opener.key)).terminal_url);
    await env.DB.prepare('UPDATE api_keys SET revoked_at = ?1 WHERE user_id = ?2').bind(Date.now(), opener.userId).run();
    await expectError(await openSocket(deviceId, third), 401, 'TERMINAL_TOKEN_INVALID');

    // Without terminal:share the viewer may not be handed typing, and the agent is told so.
    const watcher = await userWithPermissions(['devices:read', 'terminal:open']);
    const v = await viewer(deviceId, tokenOf((await link(watcher.key)).terminal_url));
    await v.ready();
    expect(agent.opens.at(-1)!.viewer).toMatchObject({ user_id: watcher.userId, may_share: false });
    v.ws.close(1000);
  });

  it('gives no link for another team\'s device (404), without terminal:open (403), for an offline device (503) or a session it does not keep (404)', async () => {
    await makeTeam('team-elsewhere');
    const outsider = await userWithPermissions(['devices:read', 'terminal:open'], 'team-elsewhere', 'owner');
    await expectError(await api(`/api/v1/devices/${deviceId}/terminal`, { key: outsider.key }), 404, 'NOT_FOUND');
    const reader = await userWithPermissions(['devices:read']);
    await expectError(await api(`/api/v1/devices/${deviceId}/terminal`, { key: reader.key }), 403, 'FORBIDDEN');
    const offline = await insertDevice({ status: 'approved' });
    await expectError(await api(`/api/v1/devices/${offline}/terminal`, { key: admin.key }), 503, 'DEVICE_OFFLINE');
    const pending = await insertDevice({ status: 'pending' });
    await expectError(await api(`/api/v1/devices/${pending}/terminal`, { key: admin.key }), 409, 'DEVICE_NOT_APPROVED');
    await expectError(await api(`/api/v1/devices/${deviceId}/terminal?session=nosuchsession1`, { key: admin.key }), 404, 'SESSION_NOT_FOUND');
    await expectError(await api(`/api/v1/devices/${deviceId}/terminal?session=bad!`, { key: admin.key }), 400, 'VALIDATION_ERROR');
  });
});

describe('flow control and checked messages', () => {
  it('stops reading the device while the viewer leaves a window unacknowledged, and goes on after its acks', async () => {
    const v = await viewer(deviceId, tokenOf((await link()).terminal_url));
    const { viewer: id } = await v.ready();
    const screen = v.outputBytes();
    // Far more than the window (1 MiB) plus the stream's credit, which auto-tunes up to 4 MiB.
    const total = 16 * 1024 * 1024;
    const flood = agent.flood(id, total);
    await waitFor(() => v.outputBytes() - screen > TERMINAL_WINDOW - 2 * FLOOD_RECORD, 'a window of output', 10_000);
    // Let whatever is in flight land, until nothing moves.
    let last = -1;
    while (last !== flood.written() + v.outputBytes()) {
      last = flood.written() + v.outputBytes();
      await new Promise((r) => setTimeout(r, 300));
    }
    // The viewer got a window (and what the hub had read when it closed), the device's writes
    // stalled within the stream's credit, far short of what it wanted to write.
    expect(v.outputBytes()).toBeLessThanOrEqual(TERMINAL_WINDOW + 256 * 1024 + screen);
    expect(flood.written()).toBeLessThan(total / 2);
    expect(flood.written() - (v.outputBytes() - screen)).toBeLessThanOrEqual(4 * 1024 * 1024 + FLOOD_RECORD);
    // Acks open the window again; a viewer that keeps acking gets it all.
    v.ws.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') v.send({ t: 'ack', n: (e.data as ArrayBuffer).byteLength });
    });
    v.send({ t: 'ack', n: v.outputBytes() });
    await flood.done;
    expect(flood.written()).toBeGreaterThanOrEqual(total);
    await waitFor(() => v.outputBytes() === screen + flood.written(), 'all of the output', 20_000);
    expect(joined(v.output).subarray(screen).every((b) => b === 0x41)).toBe(true);
    v.ws.close(1000);
  }, 60_000);

  it('answers a bad text message with BAD_MESSAGE and never forwards it; forwards a control re-serialised', async () => {
    const v = await viewer(deviceId, tokenOf((await link()).terminal_url));
    const { viewer: id } = await v.ready();
    const bad = ['not json', '[1]', { t: 'resize', cols: 'wide', rows: 1 }, { t: 'resize', cols: 80, rows: 24, extra: 1 }, { t: 'explode' }, { t: 'ack', n: -1 }, { t: 'handover', to: 'x' }];
    for (const m of bad) v.send(m);
    v.send({ t: 'resize', cols: 100, rows: 30 });
    await waitFor(() => v.messages.some((m) => m.t === 'size'), 'the resize answered');
    const errors = v.messages.filter((m) => m.t === 'error');
    expect(errors.map((m) => m.code)).toEqual(Array(bad.length).fill('BAD_MESSAGE'));
    for (const e of errors) expect(TerminalServerMessageSchema.safeParse(e).success).toBe(true);
    expect(agent.input.get(id)!.controls).toEqual([{ t: 'resize', cols: 100, rows: 30 }]);

    // What the device sends that is not a control message is dropped (and counted), never passed on.
    const before = (await hubStub(deviceId).counters()).terminalDropped;
    await agent.send(id, 'text', '{"t":"attached","evil":true}');
    await agent.send(id, 'text', 'not json');
    await agent.send(id, 'text', JSON.stringify({ t: 'size', cols: 10, rows: 5 }));
    await waitFor(() => v.messages.filter((m) => m.t === 'size').length === 2, 'the good one');
    expect((await hubStub(deviceId).counters()).terminalDropped).toBe(before + 2);
    expect(v.messages.some((m) => 'evil' in m)).toBe(false);
    v.ws.close(1000);
  });

  it('closes a viewer that floods a device not taking input (1013), and ends its stream', async () => {
    const { deviceId: deaf, agent: deafAgent } = await terminalDevice(admin.key);
    deafAgent.deaf = true;
    const v = await viewer(deaf, tokenOf((await link(admin.key, deaf)).terminal_url));
    const { viewer: id } = await v.ready();
    const reset: { code: string | null } = { code: null };
    for (const s of deafAgent.sessions.values()) s.viewers.get(id)?.stream.onReset((e) => (reset.code = e.code));
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    for (let sent = 0; sent < 2 * TERMINAL_INPUT_LIMIT + 4 * 1024 * 1024 && v.ws.readyState === WebSocket.OPEN; sent += chunk.byteLength) v.send(chunk);
    expect((await v.closed).code).toBe(TerminalCloseCode.INPUT_OVERFLOW);
    expect(v.messages.at(-1)).toMatchObject({ t: 'error', code: 'TOO_MUCH_INPUT' });
    await waitFor(() => reset.code !== null, 'the stream to end');
  }, 30_000);
});

describe('sessions that outlive their viewers', () => {
  it('re-attaches with the resume token once, to the same session, and sends a new one', async () => {
    const v = await viewer(deviceId, tokenOf((await link()).terminal_url));
    const first = await v.ready();
    v.ws.close(1000);
    await v.closed;
    const again = await viewer(deviceId, first.resume);
    const second = await again.ready();
    expect(second.session).toBe(first.session);
    expect(agent.opens.at(-1)).toMatchObject({ session: first.session });
    expect(second.resume).not.toBe(first.resume);
    await expectError(await openSocket(deviceId, first.resume), 401, 'TERMINAL_TOKEN_INVALID');
    again.ws.close(1000);
  });

  it('closes the viewer with 1000 after exit (its resume token is then forgotten), 4503 when the device goes', async () => {
    const v = await viewer(deviceId, tokenOf((await link()).terminal_url));
    const { session, resume } = await v.ready();
    const closed = await api(`/api/v1/devices/${deviceId}/terminal/sessions/${session}`, { key: admin.key, method: 'DELETE' });
    expect(closed.status).toBe(200);
    expect(((await closed.json()) as { session: { id: string } }).session.id).toBe(session);
    expect((await v.closed).code).toBe(TerminalCloseCode.ENDED);
    expect(v.messages.at(-1)).toMatchObject({ t: 'exit', reason: 'closed' });
    await expectError(await openSocket(deviceId, resume), 401, 'TERMINAL_TOKEN_INVALID');
    const [row] = (await auditRows('terminal.close')).slice(-1);
    expect(JSON.parse(String(row!.details))).toEqual({ session });

    const gone = await terminalDevice(admin.key);
    const w = await viewer(gone.deviceId, tokenOf((await link(admin.key, gone.deviceId)).terminal_url));
    const attached = await w.ready();
    gone.agent.ws.close(1000, 'agent stopped');
    expect((await w.closed).code).toBe(TerminalCloseCode.DEVICE_OFFLINE);
    expect(w.messages.at(-1)).toMatchObject({ t: 'error', code: 'DEVICE_OFFLINE' });
    // Trying to resume while the device is away keeps the token (503), for when it is back.
    await expectError(await openSocket(gone.deviceId, attached.resume), 503, 'DEVICE_OFFLINE');
    await expectError(await openSocket(gone.deviceId, attached.resume), 503, 'DEVICE_OFFLINE');
  }, 30_000);

  it('lists the sessions and refuses to close one it does not keep', async () => {
    const v = await viewer(deviceId, tokenOf((await link()).terminal_url));
    const { session } = await v.ready();
    const res = await api(`/api/v1/devices/${deviceId}/terminal/sessions`, { key: admin.key });
    expect(res.status).toBe(200);
    const { sessions } = (await res.json()) as { sessions: { id: string; owner: { user_id: string } }[] };
    expect(sessions.find((s) => s.id === session)).toMatchObject({ owner: { user_id: admin.userId } });
    await expectError(await api(`/api/v1/devices/${deviceId}/terminal/sessions/nosuchsession1`, { key: admin.key, method: 'DELETE' }), 404, 'SESSION_NOT_FOUND');
    const reader = await userWithPermissions(['devices:read']);
    await expectError(await api(`/api/v1/devices/${deviceId}/terminal/sessions`, { key: reader.key }), 403, 'FORBIDDEN');
    // A link to a session it keeps attaches to it.
    const l = await link(admin.key, deviceId, session);
    expect(l.session).toBe(session);
    const w = await viewer(deviceId, tokenOf(l.terminal_url));
    expect((await w.ready()).session).toBe(session);
    w.ws.close(1000);
    v.ws.close(1000);
  });

  it('records a handover: who asked, when, the device and team, from whom to whom', async () => {
    const sharer = await userWithPermissions(['devices:read', 'terminal:open', 'terminal:share']);
    const owner = await viewer(deviceId, tokenOf((await link()).terminal_url));
    const o = await owner.ready();
    const other = await viewer(deviceId, tokenOf((await link(sharer.key, deviceId, o.session)).terminal_url));
    const w = await other.ready();
    expect(agent.opens.at(-1)!.viewer).toMatchObject({ user_id: sharer.userId, may_share: true });
    const before = Date.now();
    owner.send({ t: 'handover', to: w.viewer });
    await waitFor(() => owner.messages.some((m) => m.t === 'handed_over'), 'the handover');
    // The hub writes it as the agent's answer goes by, a moment after the viewer has it.
    let rows: Record<string, unknown>[] = [];
    await eventually(async () => (rows = (await auditRows('terminal.handover')).filter((r) => Number(r.at) >= before)).length > 0, 'the audit entry');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_id: admin.userId, actor_name: admin.username, credential: 'api_key', target_type: 'device', team_id: 'test-team' });
    expect(String(rows[0]!.ip)).not.toBe('');
    expect(JSON.parse(String(rows[0]!.details))).toEqual({
      session: o.session,
      from: { user_id: admin.userId, name: admin.username },
      to: { user_id: sharer.userId, name: sharer.username },
    });
    // The new typist's bytes are echoed; the old one is read-only now, and told so.
    other.send(new TextEncoder().encode('ls\r'));
    await waitFor(() => decode(other.output).endsWith('ls\r'), 'the new typist\'s echo');
    owner.send(new TextEncoder().encode('x'));
    await waitFor(() => owner.messages.some((m) => m.code === 'READ_ONLY'), 'the old typist told');
    owner.ws.close(1000);
    other.ws.close(1000);
  });
});

describe("PiTunnel's /terminal", () => {
  it('answers {"terminal_url"} whose token opens the terminal, and audits it', async () => {
    const res = await api('/terminal', { key: admin.key, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, json: undefined });
    await expectError(res, 400, 'VALIDATION_ERROR');
    // As the seed has it: curl -u KEY: -d device_id=…
    const ok = await SELF.fetch(`${BASE}/terminal`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa(`${admin.key}:`)}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: `device_id=${deviceId}`,
    });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['terminal_url']);
    expect(String(body.terminal_url)).toMatch(new RegExp(`^http://relay\\.test/terminal/${deviceId}#`));
    const v = await viewer(deviceId, tokenOf(String(body.terminal_url)));
    await v.ready();
    v.ws.close(1000);
    expect((await api(`/terminal?device_id=${deviceId}`, { key: admin.key })).status).toBe(200);
    const offline = await insertDevice({ status: 'approved' });
    await expectError(await api(`/terminal?device_id=${offline}`, { key: admin.key }), 503, 'DEVICE_OFFLINE');
    const reader = await userWithPermissions(['devices:read']);
    await expectError(await api(`/terminal?device_id=${deviceId}`, { key: reader.key }), 403, 'FORBIDDEN');
    await makeTeam('team-elsewhere');
    const outsider = await userWithPermissions(['devices:read', 'terminal:open'], 'team-elsewhere', 'owner');
    await expectError(await api(`/terminal?device_id=${deviceId}`, { key: outsider.key }), 404, 'NOT_FOUND');
    expect((await auditRows('terminal.open')).length).toBeGreaterThan(0);
  });
});

describe('the bridge\'s queue and window', () => {
  it('merges adjacent keystrokes into one record, keeps controls apart and in order, and refuses past its bound', async () => {
    const written: Uint8Array[] = [];
    let release: (() => void) | null = null;
    const q = new RecordQueue((r) => (written.push(r), new Promise<void>((ok) => (release = ok))), { bytes: 100, entries: 4 });
    const b = (t: string) => new TextEncoder().encode(t);
    expect(q.push(WsRecordKind.BINARY, b('a'))).toBe(true); // in flight
    expect(q.push(WsRecordKind.BINARY, b('b'))).toBe(true);
    expect(q.push(WsRecordKind.BINARY, b('c'))).toBe(true);
    expect(q.push(WsRecordKind.TEXT, b('{"t":"take"}'))).toBe(true);
    expect(q.push(WsRecordKind.BINARY, b('d'))).toBe(true);
    const records = async () => {
      for (let i = 0; i < 5 && release; i++) {
        const r = release as () => void;
        release = null;
        r();
        await new Promise((ok) => setTimeout(ok, 0));
      }
      return written.flatMap((w) => new WsRecordDecoder().push(w)).map((r) => (r.kind === 'binary' ? new TextDecoder().decode(r.data) : r.kind === 'text' ? r.text : ''));
    };
    expect(await records()).toEqual(['a', 'bc', '{"t":"take"}', 'd']);
    expect(q.push(WsRecordKind.BINARY, new Uint8Array(101))).toBe(false);
    expect(q.size).toBe(0);
  });

  it('opens again only once acks bring the unacknowledged output down to the window', async () => {
    const w = new OutputWindow(10);
    w.sent(11);
    expect(w.open).toBe(false);
    let woke = false;
    const waiting = w.wait().then(() => (woke = true));
    await new Promise((ok) => setTimeout(ok, 0));
    expect(woke).toBe(false);
    w.ack(1);
    await waiting;
    expect(w.open).toBe(true);
    // Acking more than was sent is no credit.
    w.ack(1000);
    w.sent(11);
    expect(w.open).toBe(false);
  });
});
