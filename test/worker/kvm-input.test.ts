// The live input WebSocket (GET …/hid) through a real DeviceHub to a fake agent: good messages
// reach the device as NDJSON lines (with their defaults), bad ones are answered with an error and
// never reach it; mouse moves queued behind a busy stream are coalesced to the latest while keys
// keep their order; a viewer that floods is closed 1013 and the hub's queue stays bounded; the
// agent's lines reach the viewer (only HidOutput ones); closing either side ends the other (the
// device sees the stream end, so it releases what the viewer held); offline is 503; only callers
// with hid:write in the device's team get in, and a browser only from the relay's own page.
import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, BASE, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { insertDevice, waitFor } from './device-helpers.ts';
import { browserSession, bytes, kvmDevice, makeTeam, ORIGIN, userWithPermissions, type FakeKvmAgent } from './kvm-helpers.ts';
import { INPUT_QUEUE_LIMITS, InputQueue } from '../../durable-objects/capabilities/kvm-input.ts';
import type { MuxStream, StreamResetError } from '../../shared/protocol/mux.ts';
import type { HidInput } from '../../shared/api/kvm.ts';

let admin: string;
let deviceId: string;
let agent: FakeKvmAgent;
/** The hid streams the agent accepted, newest last. */
const hidStreams: MuxStream[] = [];

beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  const d = await kvmDevice(admin, {
    onOpen: (s, open) => {
      if (open.kind !== 'hid') return s.reset('REFUSED', 'only hid here');
      hidStreams.push(s);
      s.accept({});
    },
  });
  deviceId = d.deviceId;
  agent = d.agent;
});

interface Viewer {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  /** The agent's end of this viewer's stream. */
  device: MuxStream;
  send(msg: unknown): void;
}

async function connect(headers: Record<string, string> = { authorization: `Bearer ${admin}` }, device = deviceId) {
  return SELF.fetch(`${BASE}/api/v1/devices/${device}/hid`, { headers: { upgrade: 'websocket', ...headers } });
}

async function viewer(headers?: Record<string, string>): Promise<Viewer> {
  const before = hidStreams.length;
  const res = await connect(headers);
  if (res.status !== 101) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  const ws = res.webSocket!;
  ws.accept();
  const messages: Record<string, unknown>[] = [];
  ws.addEventListener('message', (e) => {
    messages.push(JSON.parse(String(e.data)) as Record<string, unknown>);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
  expect(hidStreams.length).toBe(before + 1);
  return { ws, messages, closed, device: hidStreams.at(-1)!, send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)) };
}

/** Reads the device's end of a stream until `done` holds for the lines read so far. */
async function deviceLines(stream: MuxStream, done: (lines: HidInput[]) => boolean): Promise<HidInput[]> {
  const reader = stream.readable.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const lines = () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as HidInput);
  try {
    while (!text.endsWith('\n') || !done(lines())) {
      const next = await reader.read();
      if (next.done) break;
      text += decoder.decode(next.value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return lines();
}

/** Sends a message the hub refuses and waits for its answer: everything sent before it has been handled. */
async function handled(v: Viewer) {
  const n = v.messages.filter((m) => m.t === 'error').length;
  v.send('{"t":"sync"}');
  await waitFor(() => v.messages.filter((m) => m.t === 'error').length > n, 'the hub to answer');
}

function resetOf(stream: MuxStream) {
  const seen: { error: StreamResetError | null } = { error: null };
  stream.onReset((e) => (seen.error = e));
  return seen;
}

const typeLine = (n: number): HidInput => ({ t: 'type', text: 'a'.repeat(100_000), layout: 'en-US', interval_ms: n });

describe('live input', () => {
  it('forwards good messages to the device as NDJSON lines, with their defaults', async () => {
    const v = await viewer();
    v.send({ t: 'down', code: 'ShiftLeft' });
    v.send({ t: 'keystroke', code: 'KeyA', modifiers: ['ControlLeft'] });
    v.send({ t: 'up', code: 'ShiftLeft' });
    v.send({ t: 'mouse', x: 0.5, y: 0.75, buttons: 1 });
    v.send({ t: 'release' });
    v.send({ t: 'type', text: 'hello', layout: 'en-US' });
    v.send({ t: 'cancel' });
    const lines = await deviceLines(v.device, (l) => l.length >= 7);
    expect(lines).toEqual([
      { t: 'down', code: 'ShiftLeft' },
      { t: 'keystroke', code: 'KeyA', modifiers: ['ControlLeft'] },
      { t: 'up', code: 'ShiftLeft' },
      { t: 'mouse', x: 0.5, y: 0.75, buttons: 1, wheel: 0, hwheel: 0 },
      { t: 'release' },
      { t: 'type', text: 'hello', layout: 'en-US' },
      { t: 'cancel' },
    ]);
    v.ws.close(1000);
  });

  it('answers bad messages with BAD_MESSAGE and never forwards them', async () => {
    const v = await viewer();
    const bad = [
      'not json',
      '[1,2]',
      { t: 'down' },
      { t: 'down', code: 'NotAKey' },
      { t: 'down', code: 'KeyA', extra: true },
      { t: 'mouse', x: 1.5, y: 0, buttons: 0 },
      { t: 'mouse', x: 0, y: 0, buttons: 64 },
      { t: 'keystroke', code: 'KeyA', modifiers: ['KeyB'] },
      { t: 'explode' },
    ];
    for (const m of bad) v.send(m);
    v.ws.send(bytes('binary input').buffer as ArrayBuffer);
    v.send({ t: 'type', text: 'café', layout: 'en-US' });
    v.send({ t: 'type', text: 'x', layout: 'xx-XX' });
    await waitFor(() => v.messages.length >= bad.length + 3, 'an answer to each');
    expect(v.messages.slice(0, bad.length + 1).map((m) => [m.t, m.code])).toEqual(Array(bad.length + 1).fill(['error', 'BAD_MESSAGE']));
    expect(v.messages.at(-2)).toMatchObject({ t: 'error', code: 'UNTYPEABLE_CHARACTER', details: { index: 3, char: 'é', layout: 'en-US' } });
    expect(v.messages.at(-1)).toMatchObject({ t: 'error', code: 'UNKNOWN_LAYOUT' });
    // The socket is still open, and the first line the device sees is the next good message.
    v.send({ t: 'down', code: 'KeyZ' });
    expect(await deviceLines(v.device, (l) => l.length >= 1)).toEqual([{ t: 'down', code: 'KeyZ' }]);
    v.ws.close(1000);
  });

  it('coalesces mouse moves queued behind a busy stream to the latest, keeping keys and clicks in order', async () => {
    const v = await viewer();
    // Three texts of 100 KB fill the stream's 256 KiB window while the device does not read: the writer waits.
    for (let i = 0; i < 3; i++) v.send(typeLine(i));
    for (let i = 1; i <= 50; i++) v.send({ t: 'mouse', x: i / 100, y: 0.5, buttons: 0 });
    v.send({ t: 'down', code: 'KeyA' });
    for (let i = 51; i <= 60; i++) v.send({ t: 'mouse', x: i / 100, y: 0.5, buttons: 0 });
    // A click is not a move: it is kept, and so is the move before it.
    v.send({ t: 'mouse', x: 0.6, y: 0.5, buttons: 1 });
    v.send({ t: 'mouse', x: 0.6, y: 0.5, buttons: 0 });
    v.send({ t: 'mouse', x: 0.7, y: 0.5, buttons: 0, wheel: 2 });
    v.send({ t: 'up', code: 'KeyA' });
    await handled(v);
    const lines = await deviceLines(v.device, (l) => l.at(-1)?.t === 'up');
    expect(lines.slice(0, 3).map((l) => l.t)).toEqual(['type', 'type', 'type']);
    expect(lines.slice(3)).toEqual([
      { t: 'mouse', x: 0.5, y: 0.5, buttons: 0, wheel: 0, hwheel: 0 },
      { t: 'down', code: 'KeyA' },
      { t: 'mouse', x: 0.6, y: 0.5, buttons: 0, wheel: 0, hwheel: 0 },
      { t: 'mouse', x: 0.6, y: 0.5, buttons: 1, wheel: 0, hwheel: 0 },
      { t: 'mouse', x: 0.6, y: 0.5, buttons: 0, wheel: 0, hwheel: 0 },
      { t: 'mouse', x: 0.7, y: 0.5, buttons: 0, wheel: 2, hwheel: 0 },
      { t: 'up', code: 'KeyA' },
    ]);
    v.ws.close(1000);
  });

  it('closes a viewer that floods a device that does not keep up (1013), and ends its stream', async () => {
    const v = await viewer();
    const seen = resetOf(v.device);
    for (let i = 0; i < 3; i++) v.send(typeLine(i));
    for (let i = 0; i < INPUT_QUEUE_LIMITS.lines + 50; i++) v.send({ t: i % 2 ? 'up' : 'down', code: 'KeyA' });
    const closed = await v.closed;
    expect(closed.code).toBe(1013);
    expect(v.messages.some((m) => m.code === 'TOO_MUCH_INPUT')).toBe(true);
    await waitFor(() => seen.error !== null, 'the stream to end');
  });

  it("sends the agent's HidOutput lines to the viewer, and nothing else it sends", async () => {
    const v = await viewer();
    const w = v.device.writable.getWriter();
    const state = { t: 'state', held: ['KeyA'], leds: { num_lock: true, caps_lock: false, scroll_lock: false } };
    await w.write(bytes(`${JSON.stringify(state)}\nnot json\n{"t":"other"}\n[1]\n{"t":"err`));
    await w.write(bytes('or","code":"HID_MISSING","message":"no gadget"}\n'));
    await waitFor(() => v.messages.length >= 2, 'two messages');
    expect(v.messages).toEqual([state, { t: 'error', code: 'HID_MISSING', message: 'no gadget' }]);
    w.releaseLock();
    v.ws.close(1000);
  });

  it('ends the stream when the viewer closes (the device then releases what it held)', async () => {
    const v = await viewer();
    const seen = resetOf(v.device);
    v.send({ t: 'down', code: 'KeyA' });
    expect(await deviceLines(v.device, (l) => l.length >= 1)).toEqual([{ t: 'down', code: 'KeyA' }]);
    v.ws.close(1000, 'bye');
    await waitFor(() => seen.error !== null, 'the stream to end');
    expect(seen.error!.code).toBe('CANCELLED');
  });

  it('closes the viewer when the device ends the stream, saying why when it failed', async () => {
    const clean = await viewer();
    await clean.device.writable.close();
    // The device's clean end: its CLOSE; the viewer's socket closes normally.
    await clean.device.readable.cancel();
    expect((await clean.closed).code).toBe(1000);

    const failed = await viewer();
    failed.device.reset('HID_MISSING', 'the keyboard gadget /dev/hidg0 is missing');
    expect((await failed.closed).code).toBe(1011);
    expect(failed.messages.at(-1)).toMatchObject({ t: 'error', code: 'HID_MISSING' });
  });

  it('refuses the upgrade with 503 JSON when the device is offline, 426 without an upgrade', async () => {
    const offline = await insertDevice({ status: 'approved' });
    const res = await connect(undefined, offline);
    expect(res.webSocket).toBeNull();
    await expectError(res, 503, 'DEVICE_OFFLINE');
    await expectError(await api(`/api/v1/devices/${deviceId}/hid`, { key: admin }), 426, 'UPGRADE_REQUIRED');
  });

  it('records opening live input in the audit log', async () => {
    const v = await viewer();
    v.ws.close(1000);
    const row = await env.DB.prepare("SELECT * FROM audit_log WHERE action = 'kvm.input' AND target_id = ?1 ORDER BY id DESC").bind(deviceId).first<Record<string, unknown>>();
    expect(row).toMatchObject({ target_type: 'device', team_id: 'test-team', credential: 'api_key' });
  });
});

describe('who may open live input', () => {
  it('401 without a credential, 403 without hid:write, 404 for another team; no stream reaches the device', async () => {
    await makeTeam('team-elsewhere');
    const outsider = (await userWithPermissions(['devices:read', 'hid:write', 'screen:read'], 'team-elsewhere', 'owner')).key;
    const screenOnly = (await userWithPermissions(['devices:read', 'screen:read'])).key;
    const before = agent.streams.length;
    await expectError(await connect({}), 401, 'UNAUTHORIZED');
    await expectError(await connect({ authorization: `Bearer ${screenOnly}` }), 403, 'FORBIDDEN');
    await expectError(await connect({ authorization: `Bearer ${outsider}` }), 404, 'NOT_FOUND');
    const made = await api('/api/v1/api-keys', { key: admin, json: { name: 'no input', permissions: ['devices:read', 'screen:read'] } });
    const narrowed = ((await made.json()) as { key: string }).key;
    await expectError(await connect({ authorization: `Bearer ${narrowed}` }), 403, 'FORBIDDEN');
    expect(agent.streams.length).toBe(before);
    // ?api_key= stands in for a client that cannot set headers.
    const res = await SELF.fetch(`${BASE}/api/v1/devices/${deviceId}/hid?api_key=${admin}`, { headers: { upgrade: 'websocket' } });
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    res.webSocket!.close(1000);
  });

  // A long timeout: two PBKDF2 hashes (the user's password, then the login) are slow on a loaded machine.
  it('a browser session opens it only from a page of the relay (Origin)', async () => {
    const { cookie } = await browserSession();
    const before = agent.streams.length;
    await expectError(await connect({ cookie }), 403, 'CSRF_REJECTED');
    await expectError(await connect({ cookie, origin: 'https://evil.example' }), 403, 'CSRF_REJECTED');
    expect(agent.streams.length).toBe(before);
    const v = await viewer({ cookie, origin: ORIGIN });
    v.ws.close(1000);
  }, 30_000);
});

describe('the input queue', () => {
  /** A writer that holds every write until released. */
  function heldWriter() {
    const written: string[] = [];
    let release: (() => void) | null = null;
    const write = (line: Uint8Array) => {
      written.push(new TextDecoder().decode(line).trim());
      return new Promise<void>((r) => (release = r));
    };
    return { written, write, next: () => (release?.(), new Promise((r) => setTimeout(r, 0))) };
  }

  it('replaces a queued move with the latest, never a key, a click or a wheel turn', async () => {
    const w = heldWriter();
    const q = new InputQueue(w.write);
    q.push({ t: 'down', code: 'KeyA' });
    for (let i = 0; i < 5; i++) q.push({ t: 'mouse', x: i / 10, y: 0, buttons: 0, wheel: 0, hwheel: 0 });
    q.push({ t: 'mouse', x: 0.9, y: 0, buttons: 0, wheel: 1, hwheel: 0 });
    q.push({ t: 'mouse', x: 0.9, y: 0, buttons: 0, wheel: 0, hwheel: 0 });
    q.push({ t: 'mouse', x: 0.9, y: 0, buttons: 2, wheel: 0, hwheel: 0 });
    q.push({ t: 'up', code: 'KeyA' });
    expect(q.size).toBe(5);
    for (let i = 0; i < 6; i++) await w.next();
    expect(w.written.map((l) => JSON.parse(l) as HidInput)).toEqual([
      { t: 'down', code: 'KeyA' },
      { t: 'mouse', x: 0.4, y: 0, buttons: 0, wheel: 0, hwheel: 0 },
      { t: 'mouse', x: 0.9, y: 0, buttons: 0, wheel: 1, hwheel: 0 },
      { t: 'mouse', x: 0.9, y: 0, buttons: 0, wheel: 0, hwheel: 0 },
      { t: 'mouse', x: 0.9, y: 0, buttons: 2, wheel: 0, hwheel: 0 },
      { t: 'up', code: 'KeyA' },
    ]);
  });

  it('refuses a push past its limits and writes nothing more', async () => {
    const w = heldWriter();
    const q = new InputQueue(w.write, { lines: 3, bytes: 1 << 20 });
    expect(q.push({ t: 'down', code: 'KeyA' })).toBe(true); // in flight: not queued
    for (let i = 0; i < 2; i++) expect(q.push({ t: 'release' })).toBe(true);
    // Moves coalesce, so a stream of them takes one place.
    for (let i = 0; i < 100; i++) expect(q.push({ t: 'mouse', x: 0, y: i / 100, buttons: 0, wheel: 0, hwheel: 0 })).toBe(true);
    expect(q.size).toBe(3);
    expect(q.push({ t: 'up', code: 'KeyA' })).toBe(false);
    expect(q.size).toBe(0);
    await w.next();
    expect(w.written).toHaveLength(1);
  });
});

describe('when the device goes away', () => {
  it('tells the viewer the device went offline and closes its socket', async () => {
    const own: MuxStream[] = [];
    const d = await kvmDevice(admin, { onOpen: (s) => (own.push(s), s.accept({})) });
    const res = await connect(undefined, d.deviceId);
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const messages: Record<string, unknown>[] = [];
    ws.addEventListener('message', (e) => {
      messages.push(JSON.parse(String(e.data)) as Record<string, unknown>);
    });
    const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
    expect(own).toHaveLength(1);
    d.agent.ws.close(1000, 'agent stopped');
    expect(await closed).toBe(1011);
    expect(messages.at(-1)).toMatchObject({ t: 'error', code: 'DEVICE_OFFLINE' });
  });
});
