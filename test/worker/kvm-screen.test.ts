// Screenshots and the live view through a real DeviceHub to a fake agent that speaks the stream
// mux: the hub opens a `screen` stream with what the query asked; a screenshot's bytes and
// Content-Type come through (inline or streamed), 204 has no body, and nothing else a device sends
// in its head gets through (a Set-Cookie, CORS headers, an HTML Content-Type: the attack of a
// malicious device on the relay's origin); the live view streams its parts and resets the stream
// when the viewer cancels; a device that does not answer is 504, one that went away 503; and only
// callers with screen:read in the device's team reach it.
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, BASE, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';
import { insertDevice, waitFor } from './device-helpers.ts';
import { browserSession, bytes, kvmDevice, makeTeam, userWithPermissions, type FakeKvmAgent } from './kvm-helpers.ts';
import type { MuxStream, StreamResetError } from '../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../shared/protocol/messages.ts';

let admin: string;
let deviceId: string;
let agent: FakeKvmAgent;
/** How the agent answers the next screen stream; each test sets it. */
let answer: (stream: MuxStream, open: StreamOpen) => void = (s) => s.reset('REFUSED', 'not set');

beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  const d = await kvmDevice(admin, { onOpen: (s, o) => answer(s, o) });
  deviceId = d.deviceId;
  agent = d.agent;
});

const shot = (query = '', key = admin) => api(`/api/v1/devices/${deviceId}/screenshot${query}`, { key });
const lastOpen = () => agent.streams.at(-1)!.open;
/** A JPEG's first bytes and some more: the hub passes bytes, it does not decode them. */
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 2, 3, 0xff, 0xd9]);

function resetOf(stream: MuxStream): { error: StreamResetError | null } {
  const seen: { error: StreamResetError | null } = { error: null };
  stream.onReset((e) => (seen.error = e));
  return seen;
}

describe('a screenshot', () => {
  it('passes the bytes and the Content-Type through, with no-store and nosniff', async () => {
    answer = (s) => s.accept({ status: 200, headers: [['content-type', 'image/jpeg'], ['content-length', String(JPEG.byteLength)]] }, { body: JPEG, fin: true });
    const res = await shot();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(JPEG);
    expect(lastOpen()).toEqual({ kind: 'screen', mode: 'snapshot', format: 'jpeg', quality: 80 });
  });

  it('asks for what the query says (PNG, quality, a maximum size)', async () => {
    answer = (s) => s.accept({ status: 200, headers: [['content-type', 'image/png']] }, { body: bytes('\x89PNG'), fin: true });
    const res = await shot('?format=png&quality=55&max_width=640&max_height=360');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    await res.arrayBuffer();
    expect(lastOpen()).toEqual({ kind: 'screen', mode: 'snapshot', format: 'png', quality: 55, max_width: 640, max_height: 360 });
  });

  it('streams a large screenshot with its Content-Length', async () => {
    const big = new Uint8Array(600 * 1024).map((_, i) => i % 251);
    let device: MuxStream | null = null;
    answer = (s) => {
      device = s;
      s.accept({ status: 200, headers: [['content-type', 'image/jpeg'], ['content-length', String(big.byteLength)]] });
      const w = s.writable.getWriter();
      void w.write(big).then(() => w.releaseLock());
    };
    const res = await shot();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(big.byteLength));
    const reader = res.body!.getReader();
    const got: Uint8Array[] = [];
    let n = 0;
    while (n < big.byteLength) {
      const next = await reader.read();
      if (next.done) break;
      got.push(next.value);
      n += next.value.byteLength;
    }
    // Only now the device ends its side: its CLOSE cannot overtake its DATA (see tunnels-helpers.ts).
    await device!.writable.close();
    expect((await reader.read()).done).toBe(true);
    expect(n).toBe(big.byteLength);
    const all = new Uint8Array(n);
    let at = 0;
    for (const g of got) (all.set(g, at), (at += g.byteLength));
    // Frames may overtake each other in this test pool, so the bytes are compared as a multiset.
    expect(all.reduce((a, b) => a + b, 0)).toBe(big.reduce((a, b) => a + b, 0));
  });

  it('answers 204 with an empty body when there is no video signal', async () => {
    answer = (s) => s.accept({ status: 204 }, { fin: true });
    const res = await shot();
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
  });

  it("drops every header of the device's but the image's type and length (no Set-Cookie)", async () => {
    answer = (s) =>
      s.accept(
        {
          status: 200,
          headers: [
            ['content-type', 'image/png'],
            ['set-cookie', '__Host-pirelay_session=stolen; Path=/'],
            ['set-cookie', 'tracker=1'],
            ['access-control-allow-origin', '*'],
            ['location', 'https://evil.example/'],
            ['content-security-policy', "script-src 'unsafe-inline'"],
            ['x-pirelay-kind', 'agent'],
            ['refresh', '0; url=https://evil.example/'],
          ],
        },
        { body: bytes('png'), fin: true },
      );
    const res = await shot();
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const names: string[] = [];
    res.headers.forEach((_v, name) => names.push(name));
    expect(names.filter((n) => !['cache-control', 'content-length', 'content-security-policy', 'content-type', 'x-content-type-options'].includes(n))).toEqual([]);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
  });

  it('refuses an answer that is not an image (a device serving HTML on the relay origin) with 502', async () => {
    for (const type of ['text/html', 'image/svg+xml', 'application/javascript', 'multipart/x-mixed-replace; boundary=x']) {
      let device: MuxStream | null = null;
      answer = (s) => {
        device = s;
        s.accept({ status: 200, headers: [['content-type', type]] }, { body: bytes('<script>alert(1)</script>'), fin: true });
      };
      const res = await shot();
      const err = await expectError(res, 502, 'BAD_DEVICE_RESPONSE');
      expect(JSON.stringify(err)).not.toContain('<script>');
      expect(device).not.toBeNull();
    }
    // Parameters the device adds do not go out (a header it could smuggle in them, say).
    answer = (s) => s.accept({ status: 200, headers: [['content-type', 'IMAGE/JPEG; x="\r\nSet-Cookie: a=b"\u0000']] }, { body: JPEG, fin: true });
    const res = await shot();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    await res.arrayBuffer();
    // No Content-Type at all is no image either.
    answer = (s) => s.accept({ status: 200 }, { body: bytes('x'), fin: true });
    await expectError(await shot(), 502, 'BAD_DEVICE_RESPONSE');
  });

  it("passes the device's error (no screen) as our error body, nothing more", async () => {
    answer = (s) =>
      s.accept(
        { status: 503, headers: [['content-type', 'application/json'], ['set-cookie', 'a=b']] },
        { body: bytes(JSON.stringify({ error: 'there is no screen', code: 'NO_SCREEN', details: { secret: 'x' } })), fin: true },
      );
    const res = await shot();
    expect(res.headers.get('set-cookie')).toBeNull();
    const err = await expectError(res, 503, 'NO_SCREEN');
    expect(err).toEqual({ error: 'there is no screen', code: 'NO_SCREEN', details: {} });
    // A body that is not ours: the status alone speaks.
    answer = (s) => s.accept({ status: 500, headers: [['content-type', 'text/html']] }, { body: bytes('<h1>oops</h1>'), fin: true });
    await expectError(await shot(), 502, 'DEVICE_ERROR');
    // A device cannot make the client think its own credential failed (the dashboard would sign out).
    for (const status of [401, 403, 404, 418]) {
      answer = (s) => s.accept({ status, headers: [['content-type', 'application/json']] }, { body: bytes(JSON.stringify({ error: 'x', code: 'UNAUTHORIZED' })), fin: true });
      await expectError(await shot(), 502, 'UNAUTHORIZED');
    }
  });

  it('answers 504 DEVICE_TIMEOUT when the device does not answer, and resets the stream', async () => {
    let seen: { error: StreamResetError | null } = { error: null };
    answer = (s) => (seen = resetOf(s));
    await expectError(await shot(), 504, 'DEVICE_TIMEOUT');
    await waitFor(() => seen.error !== null, 'the reset');
    expect(seen.error!.code).toBe('TARGET_TIMEOUT');
  });

  it('answers 503 KVM_UNAVAILABLE when the agent refuses screen streams (no KVM)', async () => {
    answer = (s) => s.reset('REFUSED', 'the agent accepts no screen streams');
    await expectError(await shot(), 503, 'KVM_UNAVAILABLE');
  });

  it('answers 503 DEVICE_OFFLINE for a device without an agent', async () => {
    const offline = await insertDevice({ status: 'approved' });
    await expectError(await api(`/api/v1/devices/${offline}/screenshot`, { key: admin }), 503, 'DEVICE_OFFLINE');
    await expectError(await api(`/api/v1/devices/${offline}/screen/live`, { key: admin }), 503, 'DEVICE_OFFLINE');
  });
});

describe('the live view', () => {
  it('streams multipart parts as they come and resets the stream when the viewer cancels', async () => {
    let device: MuxStream | null = null;
    let seen: { error: StreamResetError | null } = { error: null };
    let sent = 0;
    answer = (s) => {
      device = s;
      seen = resetOf(s);
      s.accept({ status: 200, headers: [['content-type', 'multipart/x-mixed-replace; boundary=frame'], ['set-cookie', 'x=y']] });
      // One part every 20 ms until the stream ends, as a capture loop would.
      const w = s.writable.getWriter();
      void (async () => {
        try {
          for (;;) {
            await new Promise((r) => setTimeout(r, 20));
            await w.write(bytes(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nJPG${sent++ % 10}\r\n`));
          }
        } catch {
          // the viewer went away
        }
      })();
    };
    const res = await api(`/api/v1/devices/${deviceId}/screen/live?fps=10&quality=60&max_width=1280`, { key: admin });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('multipart/x-mixed-replace; boundary=frame');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(lastOpen()).toEqual({ kind: 'screen', mode: 'live', format: 'jpeg', quality: 60, fps: 10, max_width: 1280 });
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    while ((text.match(/--frame\r\n/g) ?? []).length < 4) {
      const next = await reader.read();
      expect(next.done).toBe(false);
      text += decoder.decode(next.value, { stream: true });
    }
    expect(text).toContain('Content-Type: image/jpeg');
    await reader.cancel();
    await waitFor(() => seen.error !== null, 'the stream reset after the viewer left');
    expect(device).not.toBeNull();
  });

  it('refuses a live answer that is not multipart/x-mixed-replace with a boundary', async () => {
    for (const type of ['image/jpeg', 'multipart/x-mixed-replace', 'text/html; boundary=x', 'multipart/x-mixed-replace; boundary=a\r\nSet-Cookie: a=b', 'multipart/x-mixed-replace; boundary=a\u0000', `multipart/x-mixed-replace; boundary=${'b'.repeat(71)}`]) {
      answer = (s) => s.accept({ status: 200, headers: [['content-type', type]] }, { body: bytes('x'), fin: true });
      await expectError(await api(`/api/v1/devices/${deviceId}/screen/live`, { key: admin }), 502, 'BAD_DEVICE_RESPONSE');
    }
  });

  it('answers 204 when there is no signal', async () => {
    answer = (s) => s.accept({ status: 204 }, { fin: true });
    const res = await api(`/api/v1/devices/${deviceId}/screen/live`, { key: admin });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
  });
});

describe('who may see the screen', () => {
  it('401 without a credential, 403 without screen:read, 404 for another team, 400 for a bad query; no stream reaches the device', async () => {
    await makeTeam('team-far');
    const outsider = (await userWithPermissions(['devices:read', 'hid:write', 'screen:read'], 'team-far', 'owner')).key;
    const hidOnly = (await userWithPermissions(['devices:read', 'hid:write'])).key;
    const viewer = (await userWithKey(['viewer'])).key;
    const before = agent.streams.length;
    for (const path of ['/screenshot', '/screen/live']) {
      await expectError(await api(`/api/v1/devices/${deviceId}${path}`), 401, 'UNAUTHORIZED');
      await expectError(await api(`/api/v1/devices/${deviceId}${path}`, { key: hidOnly }), 403, 'FORBIDDEN');
      await expectError(await api(`/api/v1/devices/${deviceId}${path}`, { key: viewer }), 403, 'FORBIDDEN');
      await expectError(await api(`/api/v1/devices/${deviceId}${path}`, { key: outsider }), 404, 'NOT_FOUND');
      await expectError(await api(`/api/v1/devices/${deviceId}${path}?quality=0`, { key: outsider }), 404, 'NOT_FOUND');
      for (const q of ['quality=0', 'quality=101', 'max_width=15', 'max_height=9000', 'unknown=1', 'quality=high']) {
        await expectError(await api(`/api/v1/devices/${deviceId}${path}?${q}`, { key: admin }), 400, 'VALIDATION_ERROR');
      }
    }
    await expectError(await shot('?format=gif'), 400, 'VALIDATION_ERROR');
    await expectError(await api(`/api/v1/devices/${deviceId}/screen/live?fps=31`, { key: admin }), 400, 'VALIDATION_ERROR');
    await expectError(await api(`/api/v1/devices/${deviceId}/screen/live?format=png`, { key: admin }), 400, 'VALIDATION_ERROR');
    expect(agent.streams.length).toBe(before);
  });

  // A long timeout: two PBKDF2 hashes (the user's password, then the login) are slow on a loaded machine.
  it('a browser session reads a screenshot by its cookie (a GET needs no Origin)', async () => {
    answer = (s) => s.accept({ status: 200, headers: [['content-type', 'image/jpeg']] }, { body: JPEG, fin: true });
    const { cookie } = await browserSession();
    const res = await SELF.fetch(`${BASE}/api/v1/devices/${deviceId}/screenshot`, { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(JPEG);
  }, 30_000);
});
