// GET /api/v1/stream and the credential it was opened with, through the Worker in workerd: a stream
// (SSE or the WebSocket form) ends when its credential stops being valid — its API key revoked,
// its session logged out or ended by a password change or reset, or its expiry passed — while
// other streams, of another key or session of the same user or of another user, keep receiving;
// and the reconnect with the dead credential is a 401. With the FleetHub out of reach, a logout
// still succeeds and a key's revoke says its streams are not closed (502), which a repeat fixes.
// The SSE bridge's own end at expiry is checked on a socket the hub never closes.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, BASE, TEST_TEAM, userWithKey } from './helpers.ts';
import { expectError, login, sessionUser, userWithPassword } from './auth-helpers.ts';
import { createApp } from '../../worker/app.ts';
import { waitFor } from './device-helpers.ts';
import { publish, settle, socket, sse, type SocketReader, type SseReader } from './stream-helpers.ts';
import { sseFromWatcher } from '../../worker/stream/sse.ts';
import { StreamCloseCode } from '../../shared/codes.ts';

/** Generous: how fast a stream ends is not what is checked, only that it does. */
const END_TIMEOUT_MS = 15_000;

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

/** A new API key of the user holding `key` (POST /api/v1/api-keys), with its id. */
async function newKey(key: string, body: Record<string, unknown> = {}) {
  const res = await api('/api/v1/api-keys', { key, json: { name: 'stream', ...body } });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

/** An SSE and a WebSocket-form stream of one credential. */
async function both(credential: string) {
  return { sse: await sse(credential), ws: await socket(credential) };
}
type Both = Awaited<ReturnType<typeof both>>;

async function expectEnded(s: Both, comment: string, code: number, reason: string) {
  await waitFor(() => s.sse.ended() && s.ws.closed() !== null, 'the streams to end', END_TIMEOUT_MS);
  expect(s.sse.text().endsWith(`: ${comment}\n\n`)).toBe(true);
  expect(s.ws.closed()).toEqual({ code, reason });
}

/** Publishes an event of TEST_TEAM and waits for every stream given to get it: they are open and receiving. */
async function expectReceiving(readers: (SseReader | SocketReader)[]) {
  const id = await publish(`dev-${TEST_TEAM}`, TEST_TEAM);
  const got = (r: SseReader | SocketReader) => ('events' in r ? r.events().some((e) => e.id === id) : r.got.some((m) => m.id === id));
  await waitFor(() => readers.every(got), 'the open streams to get the event');
  expect(readers.map((r) => ('ended' in r ? r.ended() : r.closed()))).toEqual(readers.map((r) => ('ended' in r ? false : null)));
}

const reconnect = (credential: string) => api('/api/v1/stream', { key: credential });

/** Calls the app with a FleetHub that cannot be reached (every call on it fails, as in an outage); D1 is the real one. */
async function withFleetHubDown(path: string, credential: string, method: string) {
  const down = { idFromName: (name: string) => env.FLEET_HUB.idFromName(name), get: () => ({ revoke: () => Promise.reject(new Error('FleetHub unreachable')) }) };
  const ctx = createExecutionContext();
  const init = { method, headers: { authorization: `Bearer ${credential}` } };
  const res = await createApp({ startedAt: Date.now() }).request(`${BASE}${path}`, init, { ...env, FLEET_HUB: down as unknown as Env['FLEET_HUB'] }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

function close(...all: Both[]) {
  for (const s of all) {
    void s.sse.cancel();
    s.ws.ws.close();
  }
}

// Each test waits for a stream's end up to END_TIMEOUT_MS, and may wait so more than once.
describe('GET /api/v1/stream ends with its credential', { timeout: 4 * END_TIMEOUT_MS }, () => {
  it('ends the streams of an API key when it is revoked; another key of the same user and another user keep receiving', async () => {
    const owner = await userWithKey(['viewer']);
    const revoked = await newKey(owner.key);
    const kept = await newKey(owner.key);
    const other = await userWithKey(['viewer']);
    const r = await both(revoked.key);
    const k = await both(kept.key);
    const o = await both(other.key);
    expect((await api(`/api/v1/api-keys/${revoked.id}`, { key: owner.key, method: 'DELETE' })).status).toBe(204);
    await expectEnded(r, 'access changed', StreamCloseCode.ACCESS_CHANGED, 'access changed');
    await expectReceiving([k.sse, k.ws, o.sse, o.ws]);
    expect((await reconnect(revoked.key)).status).toBe(401);
    // An admin revoking someone else's key ends that key's streams the same way.
    const theirs = await newKey(other.key);
    const t = await both(theirs.key);
    expect((await api(`/api/v1/api-keys/${theirs.id}`, { key: admin, method: 'DELETE' })).status).toBe(204);
    await expectEnded(t, 'access changed', StreamCloseCode.ACCESS_CHANGED, 'access changed');
    await expectReceiving([k.sse, o.sse]);
    close(k, o);
  });

  it("ends a session's streams at logout; the user's other session and their API key keep receiving", async () => {
    const user = await sessionUser(['viewer']);
    const second = ((await (await login(user.username, user.password)).json()) as { token: string }).token;
    const key = await newKey(second);
    const out = await both(user.token);
    const s2 = await both(second);
    const k = await both(key.key);
    expect((await api('/api/v1/auth/logout', { key: user.token, method: 'POST' })).status).toBe(204);
    await expectEnded(out, 'access changed', StreamCloseCode.ACCESS_CHANGED, 'access changed');
    await expectReceiving([s2.sse, s2.ws, k.sse, k.ws]);
    expect((await reconnect(user.token)).status).toBe(401);
    close(s2, k);
  });

  it("ends the streams of the sessions a password change or an admin's reset ends; another user keeps receiving", async () => {
    const user = await userWithPassword(['viewer']);
    const token = async (password = user.password) => ((await (await login(user.username, password)).json()) as { token: string }).token;
    const changer = await token();
    const ended = await both(await token());
    const other = await both((await userWithKey(['viewer'])).key);
    const changed = await api('/api/v1/auth/me/password', { key: changer, method: 'PUT', json: { current_password: user.password, new_password: 'a-new-password-1' } });
    expect(changed.status).toBe(204);
    await expectEnded(ended, 'access changed', StreamCloseCode.ACCESS_CHANGED, 'access changed');
    // The session that changed it goes on (its streams reconnect); the others are over.
    expect((await reconnect(changer)).status).toBe(200);

    const reset = await both(await token('a-new-password-1'));
    expect((await api(`/api/v1/users/${user.userId}/password`, { key: admin, method: 'PUT', json: { new_password: 'another-password-2' } })).status).toBe(204);
    await expectEnded(reset, 'access changed', StreamCloseCode.ACCESS_CHANGED, 'access changed');
    expect((await reconnect(changer)).status).toBe(401);
    await expectReceiving([other.sse, other.ws]);
    close(other);
  });

  it("ends by itself when its API key expires, with no event flowing; another key's streams keep receiving", async () => {
    const owner = await userWithKey(['viewer']);
    const expiring = await newKey(owner.key, { expires_at: new Date(Date.now() + 2000).toISOString() });
    const e = await both(expiring.key);
    const k = await both(owner.key);
    await expectEnded(e, 'credential expired', StreamCloseCode.CREDENTIAL_EXPIRED, 'credential expired');
    expect(e.sse.statuses()).toEqual([]);
    await expectReceiving([k.sse, k.ws]);
    expect((await reconnect(expiring.key)).status).toBe(401);
    close(k);
  });

  it("with the FleetHub out of reach: a logout still succeeds; a key's revoke is a 502 STREAMS_NOT_CLOSED with the key revoked, and its repeat ends the streams", async () => {
    const user = await sessionUser(['viewer']);
    expect((await withFleetHubDown('/api/v1/auth/logout', user.token, 'POST')).status).toBe(204);
    expect((await reconnect(user.token)).status).toBe(401);

    const owner = await userWithKey(['viewer']);
    const key = await newKey(owner.key);
    const k = await both(key.key);
    await expectError(await withFleetHubDown(`/api/v1/api-keys/${key.id}`, owner.key, 'DELETE'), 502, 'STREAMS_NOT_CLOSED');
    expect((await reconnect(key.key)).status).toBe(401);
    await expectReceiving([k.sse, k.ws]);
    expect((await api(`/api/v1/api-keys/${key.id}`, { key: owner.key, method: 'DELETE' })).status).toBe(204);
    await expectEnded(k, 'access changed', StreamCloseCode.ACCESS_CHANGED, 'access changed');
  });

  describe('the SSE bridge', () => {
    /** A bridge over one end of a socket pair; the other end plays the hub. */
    function bridge(expiresAt: number | null) {
      const [bridgeEnd, hubEnd] = Object.values(new WebSocketPair());
      hubEnd!.accept();
      bridgeEnd!.accept();
      const body = sseFromWatcher(bridgeEnd!, { heartbeatMs: 60_000, bufferBytes: 1 << 20, retryMs: 2000, expiresAt });
      const text = (async () => {
        let all = '';
        const decoder = new TextDecoder();
        const reader = body.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) all += decoder.decode(r.value, { stream: true });
        return all;
      })();
      return { hub: hubEnd!, text };
    }

    it('ends the stream at the expiry by itself, even when the hub never closes its socket', async () => {
      const b = bridge(Date.now() + 300);
      let hubSaw: number | null = null;
      b.hub.addEventListener('close', (e) => void (hubSaw = e.code));
      expect(await b.text).toBe('retry: 2000\n\n: credential expired\n\n');
      await waitFor(() => hubSaw !== null, 'the bridge to close its hub socket', END_TIMEOUT_MS);
      expect(hubSaw).toBe(1000);
    });

    it('says why when the hub closes the socket for an expired credential first', async () => {
      const b = bridge(null);
      b.hub.close(StreamCloseCode.CREDENTIAL_EXPIRED, 'credential expired');
      expect(await b.text).toBe('retry: 2000\n\n: credential expired\n\n');
    });
  });
});
