// TinyPilot's REST API and PiTunnel's /screenshot end to end: the relay in workerd and a real agent
// under Bun with --simulate --hid-dir DIR. The requests are the seed's own examples
// (shared/seeds/tinypilot-rest-api.txt), sent with curl as a client written against a real
// TinyPilot would, with only the base URL changed; what they did is read back from the bytes in
// DIR/hidg0 and DIR/hidg1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';
import { decodeUs, HidFiles, jpegSize, keyPresses, pngSize, ZEROS } from './kvm-helpers.ts';

let env: DevEnv;
let dir: string;
let url: string;
let key: string;
let deviceId: string;
let hid: HidFiles;
let base: string;
let keyId: string;
let token: string;

interface Curled {
  status: number;
  type: string;
  body: Buffer;
  text: string;
}

/** One curl run: `curl -sS <args>`, with the status, Content-Type and body it got. */
async function curl(args: string[]): Promise<Curled> {
  const out = join(dir, `curl-${Math.random().toString(36).slice(2)}`);
  const { stdout } = await promisify(execFile)('curl', ['-sS', '-o', out, '-w', '%{http_code} %{content_type}', ...args], { encoding: 'utf8' });
  const [status, ...type] = stdout.trim().split(' ');
  const body = await readFile(out).catch(() => Buffer.alloc(0));
  await rm(out, { force: true });
  return { status: Number(status), type: type.join(' '), body, text: body.toString('utf8') };
}

/** A seed example: POST <base><path> with the token and a JSON body, as its HTTP request shows it. */
const seedPost = (path: string, body: unknown, t = token) =>
  curl(['-X', 'POST', `${base}${path}`, '-H', `Authorization: Bearer ${t}`, '-H', 'Content-Type: application/json', '-d', typeof body === 'string' ? body : JSON.stringify(body)]);

beforeAll(async () => {
  dir = await tempDir('kvm-tinypilot');
  hid = new HidFiles(join(dir, 'hid'));
  env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['tinypilot-pi'], agentArgs: ['--hid-dir', hid.dir] });
  await waitOnline(env, 30_000);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
});

afterAll(async () => {
  await env?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("TinyPilot's API with only the base URL changed", () => {
  it('makes a per-device key whose base URL is <relay>/tinypilot/<key>/api/v1, listed without its secret', async () => {
    const r = await http(`${url}/api/v1/devices/${deviceId}/tinypilot-keys`, { key, json: { name: 'e2e client' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ key: expect.any(String), base_url: expect.any(String), device_id: deviceId, name: 'e2e client' });
    expect(r.body.base_url).toBe(`${url}/tinypilot/${r.body.key}/api/v1`);
    base = r.body.base_url;
    keyId = r.body.id;
    const list = await http(`${url}/api/v1/devices/${deviceId}/tinypilot-keys`, { key });
    expect(list.status).toBe(200);
    expect(list.body.keys.map((k: { id: string }) => k.id)).toContain(keyId);
    expect(JSON.stringify(list.body)).not.toContain(r.body.key);
  });

  it('POST /auth hands out a token, and refuses a request that carries an Origin header', async () => {
    const auth = await curl(['-X', 'POST', `${base}/auth`]);
    expect(auth.status).toBe(200);
    expect(auth.type).toMatch(/^application\/json/);
    const body = JSON.parse(auth.text);
    expect(Object.keys(body)).toEqual(['token']);
    expect(body.token).toEqual(expect.any(String));
    token = body.token;
    // A page in a browser always sends Origin on a POST: that is the CSRF the rule stops.
    for (const origin of ['https://evil.example', url, 'null']) {
      const refused = await curl(['-X', 'POST', `${base}/auth`, '-H', `Origin: ${origin}`]);
      expect(refused.status, origin).toBeGreaterThanOrEqual(400);
      expect(refused.status, origin).toBeLessThan(500);
      expect(refused.text).not.toMatch(/"token"/);
    }
    // A wrong key in the base URL gets no token either.
    const wrong = await curl(['-X', 'POST', `${url}/tinypilot/ptp_${'A'.repeat(43)}/api/v1/auth`]);
    expect([401, 403, 404]).toContain(wrong.status);
    expect(wrong.text).not.toMatch(/"token"/);
  });

  it("types the seed's Hi!<Enter>, then Ctrl+Alt+Del, byte for byte", async () => {
    const from = hid.size('keyboard');
    for (const body of [{ code: 'KeyH', shiftLeft: true }, { code: 'KeyI' }, { code: 'Digit1', shiftRight: true }, { code: 'Enter' }]) {
      const r = await seedPost('/keystroke', body);
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(r.body.length).toBe(0);
    }
    const hi = hid.hexSince('keyboard', from);
    expect(hi).toEqual(['02 00 0b 00 00 00 00 00', ZEROS, '00 00 0c 00 00 00 00 00', ZEROS, '20 00 1e 00 00 00 00 00', ZEROS, '00 00 28 00 00 00 00 00', ZEROS]);
    expect(decodeUs(hid.reports('keyboard', from))).toBe('Hi!\n');

    const cad = hid.size('keyboard');
    expect((await seedPost('/keystroke', { code: 'Delete', ctrlLeft: true, altRight: true })).status).toBe(200);
    expect(hid.hexSince('keyboard', cad)).toEqual(['41 00 4c 00 00 00 00 00', ZEROS]);

    const all = hid.size('keyboard');
    const every = { code: 'KeyA', shiftLeft: true, shiftRight: true, altLeft: true, altRight: true, ctrlLeft: true, ctrlRight: true, metaLeft: true, metaRight: true };
    expect((await seedPost('/keystroke', every)).status).toBe(200);
    expect(hid.hexSince('keyboard', all)).toEqual(['ff 00 04 00 00 00 00 00', ZEROS]);
  });

  it("moves the mouse to the four corners and clicks, as the seed's examples do", async () => {
    const from = hid.size('mouse');
    const ev = (buttons: number, relativeX: number, relativeY: number, verticalWheelDelta = 0, horizontalWheelDelta = 0) => ({ buttons, relativeX, relativeY, verticalWheelDelta, horizontalWheelDelta });
    for (const body of [ev(0, 0.0, 0.0), ev(0, 1.0, 0.0), ev(0, 1.0, 1.0), ev(0, 0.0, 1.0), ev(1, 0.5, 0.5), ev(2, 0.5, 0.5), ev(0, 0.5, 0.75, -1, 1), ev(0, 0.5, 0.75, 1, -1)]) {
      const r = await seedPost('/mouseEvent', body);
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(r.body.length).toBe(0);
    }
    expect(hid.hexSince('mouse', from)).toEqual([
      '00 00 00 00 00 00 00',
      '00 ff 7f 00 00 00 00',
      '00 ff 7f ff 7f 00 00',
      '00 00 00 ff 7f 00 00',
      '01 ff 3f ff 3f 00 00',
      '02 ff 3f ff 3f 00 00',
      // A real TinyPilot negates the vertical wheel (JavaScript's negative deltaY scrolls up, HID's
      // positive wheel does), so a client's -1 is the report's +1; the horizontal one passes as is.
      '00 ff 3f ff 5f 01 01',
      '00 ff 3f ff 5f ff ff',
    ]);
  });

  it('answers 400 to malformed requests and writes nothing', async () => {
    const before = hid.mark();
    for (const body of ['{}', '{"code":"NotAKey"}', '{"code":"KeyA","shiftLeft":"yes"}', '{"code":', '[]', '{"code":"KeyA","ctrlLeft":1}']) {
      const r = await seedPost('/keystroke', body);
      expect(r.status, body).toBe(400);
    }
    for (const body of [
      '{}',
      '{"buttons":0,"relativeX":0.5,"relativeY":0.5,"verticalWheelDelta":0}',
      '{"buttons":0,"relativeX":1.5,"relativeY":0.5,"verticalWheelDelta":0,"horizontalWheelDelta":0}',
      '{"buttons":0,"relativeX":0.5,"relativeY":0.5,"verticalWheelDelta":5,"horizontalWheelDelta":0}',
      '{"buttons":-1,"relativeX":0.5,"relativeY":0.5,"verticalWheelDelta":0,"horizontalWheelDelta":0}',
      'not json',
    ]) {
      const r = await seedPost('/mouseEvent', body);
      expect(r.status, body).toBe(400);
    }
    expect(hid.mark()).toEqual(before);
  });

  it('refuses a keystroke without a token or with a wrong one, and writes nothing', async () => {
    const before = hid.mark();
    const none = await curl(['-X', 'POST', `${base}/keystroke`, '-H', 'Content-Type: application/json', '-d', '{"code":"KeyA"}']);
    expect([401, 403]).toContain(none.status);
    const wrong = await seedPost('/keystroke', { code: 'KeyA' }, 'not-a-token');
    expect([401, 403]).toContain(wrong.status);
    const mouse = await seedPost('/mouseEvent', { buttons: 1, relativeX: 0.5, relativeY: 0.5, verticalWheelDelta: 0, horizontalWheelDelta: 0 }, 'not-a-token');
    expect([401, 403]).toContain(mouse.status);
    expect((await curl([`${base}/screenshot`])).status).not.toBe(200);
    expect(hid.mark()).toEqual(before);
  });

  it('GET /screenshot is a JPEG of the screen, and 204 with an empty body while there is no signal', async () => {
    const shot = await curl([`${base}/screenshot`, '-H', `Authorization: Bearer ${token}`]);
    expect(shot.status).toBe(200);
    expect(shot.type).toBe('image/jpeg');
    expect(jpegSize(shot.body)).toMatchObject({ width: 1280, height: 720 });

    await writeFile(join(hid.dir, 'no-signal'), '');
    try {
      const none = await waitFor('no signal', async () => {
        const r = await curl([`${base}/screenshot`, '-H', `Authorization: Bearer ${token}`]);
        return r.status === 204 ? r : null;
      });
      expect(none.body.length).toBe(0);
    } finally {
      await rm(join(hid.dir, 'no-signal'), { force: true });
    }
    // The simulated screen looks at the file at most every 250 ms: the next test needs the signal back.
    await waitFor('the signal back', async () => (await curl([`${base}/screenshot`, '-H', `Authorization: Bearer ${token}`])).status === 200);
  });

  it('a revoked key ends its base URL and its tokens at once', async () => {
    const other = await http(`${url}/api/v1/devices/${deviceId}/tinypilot-keys`, { key, json: {} });
    expect(other.status).toBe(201);
    const otherToken = JSON.parse((await curl(['-X', 'POST', `${other.body.base_url}/auth`])).text).token as string;

    expect((await http(`${url}/api/v1/devices/${deviceId}/tinypilot-keys/${keyId}`, { key, method: 'DELETE' })).status).toBe(204);
    const before = hid.mark();
    expect((await seedPost('/keystroke', { code: 'KeyA' })).status).not.toBe(200);
    expect((await curl(['-X', 'POST', `${base}/auth`])).status).not.toBe(200);
    // Nor is the revoked key's token good under another key's base URL.
    const crossed = await curl(['-X', 'POST', `${other.body.base_url}/keystroke`, '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json', '-d', '{"code":"KeyA"}']);
    expect([401, 403]).toContain(crossed.status);
    expect(hid.mark()).toEqual(before);
    // The device's other key is untouched.
    const still = await curl(['-X', 'POST', `${other.body.base_url}/keystroke`, '-H', `Authorization: Bearer ${otherToken}`, '-H', 'Content-Type: application/json', '-d', '{"code":"KeyC"}']);
    expect(still.status).toBe(200);
    expect(keyPresses(hid.reports('keyboard', before.keyboard))).toEqual([{ usage: 0x06, modifiers: 0 }]);
    expect(hid.hexSince('keyboard', before.keyboard).at(-1)).toBe(ZEROS);
    // The client goes on with the live key.
    base = other.body.base_url;
    token = otherToken;
  });

  it('a user without hid:write cannot make TinyPilot keys', async () => {
    const username = 'tp-viewer';
    const password = 'tp-viewer-password-1234';
    expect((await http(`${url}/api/v1/users`, { key, json: { username, password, roles: ['viewer'] } })).status).toBe(201);
    const teamId = (await http(`${url}/api/v1/devices/${deviceId}`, { key })).body.team_id as string;
    expect((await http(`${url}/api/v1/teams/${teamId}/members`, { key, json: { username, role: 'member' } })).status).toBe(201);
    const viewer = (await http(`${url}/api/v1/auth/login`, { json: { username, password } })).body.token as string;
    expect((await http(`${url}/api/v1/devices/${deviceId}/tinypilot-keys`, { key: viewer, json: {} })).status).toBe(403);
  });

  // Last of these: the agent resyncs the keyboard after failed writes (an extra all-zero report may follow).
  it("answers 500 with the seed's plain text when the agent cannot write to the gadget", async () => {
    // A directory where the report file should be: every write to it fails, as to an unplugged gadget.
    const keyboard = hid.path('keyboard');
    const mouse = hid.path('mouse');
    const saved = { keyboard: await readFile(keyboard), mouse: await readFile(mouse) };
    await rm(keyboard);
    await rm(mouse);
    await mkdir(keyboard);
    await mkdir(mouse);
    try {
      const k = await seedPost('/keystroke', { code: 'KeyA' });
      expect(k.status).toBe(500);
      expect(k.type).toMatch(/^text\/plain/);
      expect(k.text).toMatch(/^Failed to forward keystroke: /);
      const m = await seedPost('/mouseEvent', { buttons: 0, relativeX: 0.5, relativeY: 0.5, verticalWheelDelta: 0, horizontalWheelDelta: 0 });
      expect(m.status).toBe(500);
      expect(m.type).toMatch(/^text\/plain/);
      expect(m.text).toMatch(/^Failed to forward mouse event: /);
    } finally {
      await rm(keyboard, { recursive: true });
      await rm(mouse, { recursive: true });
      await writeFile(keyboard, saved.keyboard);
      await writeFile(mouse, saved.mouse);
    }
    // Once the gadget is back, keystrokes go through again.
    const from = hid.size('keyboard');
    await waitFor('keystrokes working again', async () => (await seedPost('/keystroke', { code: 'KeyB' })).status === 200);
    // One KeyB and a released keyboard (the agent may write the released state again as it resyncs).
    const reports = hid.reports('keyboard', from);
    expect(keyPresses(reports)).toEqual([{ usage: 0x05, modifiers: 0 }]);
    expect(hid.hexSince('keyboard', from).at(-1)).toBe(ZEROS);
  });
});

describe("PiTunnel's /screenshot", () => {
  it("returns the image with its Content-Type, as the seed's curl example gets it", async () => {
    const r = await curl([`${url}/screenshot`, '-u', `${key}:`, '-d', `device_id=${deviceId}`]);
    expect(r.status).toBe(200);
    expect(['image/jpeg', 'image/png']).toContain(r.type);
    const size = r.type === 'image/png' ? pngSize(r.body) : jpegSize(r.body);
    expect(size).toMatchObject({ width: 1280, height: 720 });
  });
});
