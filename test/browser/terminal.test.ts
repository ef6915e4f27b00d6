// The dashboard's terminal. First its connection logic (dashboard/src/terminal/connection.ts) with
// a fake socket, no browser: the token offered as a subprotocol, acks only for output the screen
// has taken and in batches, a drop re-attached with the resume token (never the single-use link
// token), a refused link said as such, an exit or a named refusal final. Then in Chromium against
// the local relay and the demo device's real agent: PiTunnel's /terminal link opened as a page
// with no dashboard session, `echo hello` typed and seen, the socket dropped while the network is
// down, and the same session with its screen back once it returns; a used or bogus link refused;
// the device tab's sessions, a second viewer read-only (its typing refused, and said), typing
// handed over and taken back, a session closed; every state at 1280 and 390 px, light and dark,
// scanned with axe and loading nothing from another host.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Page } from 'playwright-core';
import * as shared from '../../shared/api/terminal.ts';
import { TerminalConnection, type ConnectionOptions, type ConnectionState, type SocketLike } from '../../dashboard/src/terminal/connection.ts';
import { ACK_BYTES, ACK_DELAY_MS, TERMINAL_SUBPROTOCOL, TERMINAL_TOKEN_PROTOCOL_PREFIX } from '../../dashboard/src/terminal/protocol.ts';
import { http } from '../e2e/harness.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

// ─── the connection, with a fake socket ──────────────────────────────────────────────────────

class FakeSocket {
  binaryType = 'blob';
  readyState = 0;
  sent: (string | Uint8Array)[] = [];
  closed: number | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(
    readonly query: { cols: number; rows: number },
    readonly protocols: string[],
  ) {}
  send(data: string | Uint8Array) {
    this.sent.push(data);
  }
  close(code?: number) {
    this.closed = code;
  }
  /** The relay's side. */
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  text(m: unknown) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  bytes(n: number) {
    this.onmessage?.({ data: new Uint8Array(n).fill(0x41).buffer });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
  get acks() {
    return this.sent.filter((m): m is string => typeof m === 'string').map((m) => JSON.parse(m)).filter((m) => m.t === 'ack').map((m) => m.n as number);
  }
  get token() {
    return this.protocols.find((p) => p.startsWith(TERMINAL_TOKEN_PROTOCOL_PREFIX))?.slice(TERMINAL_TOKEN_PROTOCOL_PREFIX.length);
  }
}

const session = (id = 'session-0001') => ({
  id,
  owner: { user_id: 'u1', name: 'admin' },
  typist: null,
  viewers: [],
  command: ['/bin/bash', '-l'],
  user: 'pi',
  pid: 4242,
  cols: 80,
  rows: 24,
  created_at: 1,
  idle_since: null,
  closes_at: null,
});
const attached = (id?: string) => ({ t: 'attached', session: session(id), viewer: 'viewer-0001', typing: true });

function harness(extra: Partial<ConnectionOptions> = {}) {
  const sockets: FakeSocket[] = [];
  const states: [ConnectionState, string | undefined][] = [];
  const messages: unknown[] = [];
  const pending: (() => void)[] = [];
  const c = new TerminalConnection({
    token: 'link-token-aaaaaaaaaaaaaaaa',
    size: () => ({ cols: 100, rows: 30 }),
    open: (q, protocols) => {
      const s = new FakeSocket(q, protocols);
      sockets.push(s);
      return s as unknown as SocketLike;
    },
    onState: (s, why) => states.push([s, why]),
    onMessage: (m) => messages.push(m),
    // The screen takes output later (as xterm's write callback does): the test says when.
    onOutput: (_bytes, written) => pending.push(written),
    delay: () => 1000,
    now: () => Date.now(),
    ...extra,
  });
  const last = () => sockets.at(-1)!;
  return { c, sockets, states, messages, pending, last, state: () => states.at(-1)?.[0] };
}

describe('the terminal connection', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('uses the same subprotocol strings as shared/api/terminal.ts (copied there to keep zod out of the page)', () => {
    expect(TERMINAL_SUBPROTOCOL).toBe(shared.TERMINAL_SUBPROTOCOL);
    expect(TERMINAL_TOKEN_PROTOCOL_PREFIX).toBe(shared.TERMINAL_TOKEN_PROTOCOL_PREFIX);
  });

  it('offers the link token as a subprotocol beside pirelay-terminal, with the screen size, and is live once attached', () => {
    const h = harness();
    h.c.start();
    expect(h.sockets).toHaveLength(1);
    expect(h.last().protocols).toEqual(['pirelay-terminal', 'pirelay-token.link-token-aaaaaaaaaaaaaaaa']);
    expect(h.last().query).toEqual({ cols: 100, rows: 30 });
    expect(h.last().binaryType).toBe('arraybuffer');
    expect(h.state()).toBe('connecting');
    h.last().open();
    // Open is not attached: keys typed now would go nowhere.
    expect(h.c.sendInput(new Uint8Array([0x61]))).toBe(false);
    h.last().text(attached());
    expect(h.state()).toBe('live');
    expect(h.c.sendInput(new Uint8Array([0x61]))).toBe(true);
    expect(h.last().sent.at(-1)).toEqual(new Uint8Array([0x61]));
    expect(h.messages).toEqual([attached()]);
  });

  it('acknowledges output only once the screen has taken it, batched by time and by size', () => {
    const h = harness();
    h.c.start();
    h.last().open();
    h.last().text(attached());
    h.last().bytes(1000);
    h.last().bytes(2000);
    vi.advanceTimersByTime(ACK_DELAY_MS * 4);
    expect(h.last().acks, 'acked before the screen took the bytes').toEqual([]);
    h.pending.shift()!();
    h.pending.shift()!();
    expect(h.last().acks).toEqual([]);
    vi.advanceTimersByTime(ACK_DELAY_MS);
    expect(h.last().acks).toEqual([3000]);
    // A full batch goes at once, without waiting for the timer.
    h.last().bytes(ACK_BYTES);
    h.pending.shift()!();
    expect(h.last().acks).toEqual([3000, ACK_BYTES]);
    vi.advanceTimersByTime(ACK_DELAY_MS * 4);
    expect(h.last().acks).toEqual([3000, ACK_BYTES]);
  });

  it('re-attaches after a drop with the latest resume token, never the link token, and does not ack an old socket’s output on the new one', () => {
    const h = harness();
    h.c.start();
    const first = h.last();
    first.open();
    first.text(attached());
    first.text({ t: 'resume', token: 'resume-token-1-bbbbbbbbbbbbbbbb', expires_at: Date.now() + 600_000 });
    first.text({ t: 'resume', token: 'resume-token-2-cccccccccccccccc', expires_at: Date.now() + 600_000 });
    first.bytes(500);
    first.drop();
    expect(h.state()).toBe('reconnecting');
    expect(h.c.sendInput(new Uint8Array([0x61])), 'a key typed while down is not queued').toBe(false);
    expect(h.sockets).toHaveLength(1);
    vi.advanceTimersByTime(1000);
    expect(h.sockets).toHaveLength(2);
    const second = h.last();
    expect(second.token).toBe('resume-token-2-cccccccccccccccc');
    // The first socket's write finishes only now: those bytes were the old socket's to ack.
    second.open();
    h.pending.shift()!();
    vi.advanceTimersByTime(ACK_DELAY_MS * 2);
    expect(second.acks).toEqual([]);
    second.text(attached());
    expect(h.state()).toBe('live');
    // resume is this module's business, not the page's
    expect(h.messages.filter((m) => (m as { t: string }).t === 'resume')).toEqual([]);
  });

  it('tries the resume token again when the network was down (a socket that never opened), with backoff', () => {
    const h = harness({ delay: (attempt) => 1000 * 2 ** attempt });
    h.c.start();
    h.last().open();
    h.last().text(attached());
    h.last().text({ t: 'resume', token: 'resume-token-1-bbbbbbbbbbbbbbbb', expires_at: Date.now() + 600_000 });
    h.last().drop();
    vi.advanceTimersByTime(1000);
    h.last().drop(); // never opened
    expect(h.state()).toBe('reconnecting');
    vi.advanceTimersByTime(1999);
    expect(h.sockets).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(h.sockets).toHaveLength(3);
    expect(h.last().token).toBe('resume-token-1-bbbbbbbbbbbbbbbb');
    // The network coming back dials at once.
    h.last().drop();
    h.c.nudge();
    expect(h.sockets).toHaveLength(4);
  });

  it('says a link that never opened a socket has expired or was used, and never offers it again', () => {
    const h = harness();
    h.c.start();
    h.last().drop();
    expect(h.state()).toBe('refused');
    expect(h.states.at(-1)![1]).toBe('This terminal link has expired or was already used — ask for a new one.');
    vi.advanceTimersByTime(120_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('ends on exit, and on a refusal the relay names before attaching, without dialling again', () => {
    const h = harness();
    h.c.start();
    h.last().open();
    h.last().text(attached());
    h.last().text({ t: 'resume', token: 'resume-token-1-bbbbbbbbbbbbbbbb', expires_at: Date.now() + 600_000 });
    h.last().text({ t: 'exit', code: 0, signal: null, reason: 'exited' });
    expect(h.state()).toBe('ended');
    expect(h.last().closed).toBe(1000);
    h.last().drop();
    vi.advanceTimersByTime(120_000);
    expect(h.sockets).toHaveLength(1);

    const g = harness();
    g.c.start();
    g.last().open();
    g.last().text({ t: 'error', code: 'SESSION_NOT_FOUND', message: 'No such terminal session' });
    g.last().drop();
    expect(g.state()).toBe('ended');
    expect(g.states.at(-1)![1]).toBe('No such terminal session (SESSION_NOT_FOUND)');
    vi.advanceTimersByTime(120_000);
    expect(g.sockets).toHaveLength(1);
  });

  it('keeps an error after attaching as a message (typing while read-only), not an end', () => {
    const h = harness();
    h.c.start();
    h.last().open();
    h.last().text(attached());
    h.last().text({ t: 'error', code: 'READ_ONLY', message: 'You are watching; admin is typing' });
    expect(h.state()).toBe('live');
    expect(h.messages.at(-1)).toEqual({ t: 'error', code: 'READ_ONLY', message: 'You are watching; admin is typing' });
  });

  it('signed in, asks for a fresh link for the same session once the resume token failed or ran out; a session gone ends it', async () => {
    const relinked: string[] = [];
    let answer: string | { ended: string } | null = 'fresh-link-dddddddddddddddd';
    const h = harness({
      relink: async (s) => {
        relinked.push(s);
        return answer;
      },
    });
    h.c.start();
    h.last().open();
    h.last().text(attached('session-7777'));
    h.last().text({ t: 'resume', token: 'resume-token-1-bbbbbbbbbbbbbbbb', expires_at: Date.now() + 600_000 });
    h.last().drop();
    // Twice with the resume token (the network may only have been down)…
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(1000);
      expect(h.last().token).toBe('resume-token-1-bbbbbbbbbbbbbbbb');
      h.last().drop();
    }
    // …then a fresh link for the session it was attached to.
    await vi.advanceTimersByTimeAsync(1000);
    expect(relinked).toEqual(['session-7777']);
    expect(h.last().token).toBe('fresh-link-dddddddddddddddd');
    h.last().open();
    h.last().text(attached('session-7777'));
    expect(h.state()).toBe('live');

    // The resume token that opened a socket is spent: with no new one (the hub sent none), the
    // fresh link is asked for at once; a session that is gone ends the view with the API's words.
    answer = { ended: 'No such terminal session (SESSION_NOT_FOUND)' };
    h.last().drop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(relinked).toEqual(['session-7777', 'session-7777']);
    expect(h.state()).toBe('ended');
    expect(h.states.at(-1)![1]).toBe('No such terminal session (SESSION_NOT_FOUND)');
  });

  it('without a way to relink, ends once the resume token has run out', () => {
    let now = 1_000_000;
    const h = harness({ now: () => now });
    h.c.start();
    h.last().open();
    h.last().text(attached());
    h.last().text({ t: 'resume', token: 'resume-token-1-bbbbbbbbbbbbbbbb', expires_at: now + 5000 });
    h.last().drop();
    now += 10_000;
    vi.advanceTimersByTime(1000);
    expect(h.sockets).toHaveLength(1);
    expect(h.state()).toBe('ended');
    expect(h.states.at(-1)![1]).toMatch(/can no longer be re-attached/);
  });

  it('stop() closes the socket and never dials again', () => {
    const h = harness();
    h.c.start();
    h.last().open();
    h.last().text(attached());
    h.last().text({ t: 'resume', token: 'resume-token-1-bbbbbbbbbbbbbbbb', expires_at: Date.now() + 600_000 });
    h.c.stop();
    expect(h.last().closed).toBe(1000);
    h.last().drop();
    vi.advanceTimersByTime(120_000);
    expect(h.sockets).toHaveLength(1);
  });
});

// ─── in Chromium, against the real relay and agent ───────────────────────────────────────────

/** Every WebSocket the page makes, kept on window so the test can drop one as a network would. */
const RECORD_SOCKETS = `(() => {
  const Real = window.WebSocket;
  const all = (window.__sockets = []);
  window.WebSocket = class extends Real {
    constructor(url, protocols) {
      super(url, protocols);
      if (String(url).includes('/terminal/socket')) all.push(this);
    }
  };
})();`;

const terminalSockets = (page: Page) => page.evaluate(() => (window as unknown as { __sockets: WebSocket[] }).__sockets.length);
const dropSocket = (page: Page) => page.evaluate(() => (window as unknown as { __sockets: WebSocket[] }).__sockets.at(-1)!.close(4000, 'dropped by the test'));

/** The terminal's screen, one string per row (xterm's DOM rows; spaces as spaces). */
async function screenLines(page: Page, within = page.locator('body')): Promise<string[]> {
  return within.locator('.xterm-rows > div').evaluateAll((rows) => rows.map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()));
}

const status = (page: Page) => page.getByRole('status').filter({ hasText: /^(Connecting…|Live|Reconnecting…|Ended|Not connected)/ });

async function live(page: Page) {
  await status(page).filter({ hasText: /^Live/ }).waitFor({ timeout: 30_000 });
}

/** Types a line into the terminal as a person would: focus its input, type, Enter. */
async function typeLine(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Terminal input' }).focus();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

/** Waits until a row of the screen is exactly `line`. */
async function seeLine(page: Page, line: string) {
  await expect.poll(async () => (await screenLines(page)).includes(line), { timeout: 20_000 }).toBe(true);
}

async function noSidewaysScroll(page: Page, where: string) {
  const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  expect(scrollWidth, `${where}: scrolls sideways`).toBeLessThanOrEqual(innerWidth!);
}

describeBrowser('the terminal in the dashboard', () => {
  let d: Dashboard;

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'terminal' });
  }, 120_000);
  afterAll(async () => {
    await d?.close();
  });

  /** PiTunnel's /terminal, as its client calls it: Basic with the API key, device_id form-encoded. */
  async function pitunnelLink(): Promise<string> {
    const r = await http(`${d.origin}/terminal`, {
      method: 'POST',
      basicKey: d.env.state.apiKey,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ device_id: d.deviceId }).toString(),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(Object.keys(r.body)).toContain('terminal_url');
    const url = new URL(r.body.terminal_url);
    expect(url.origin).toBe(d.origin);
    expect(url.pathname).toBe(`/terminal/${d.deviceId}`);
    expect(url.hash.length).toBeGreaterThan(10);
    return r.body.terminal_url;
  }

  it('opens PiTunnel’s terminal URL with no dashboard session, runs echo hello, and finds the same session and screen after the connection drops', async () => {
    const url = await pitunnelLink();
    const { page, context, foreign, errors } = await openPage(d);
    await page.addInitScript(RECORD_SOCKETS);
    await page.goto(url);
    // The token leaves the address bar at once.
    await expect.poll(() => page.url()).toBe(`${d.origin}/terminal/${d.deviceId}`);
    await live(page);
    expect(await context.cookies(), 'the page needed no dashboard session').toEqual([]);
    const sessionId = (await page.locator('.term-session code').textContent())!;
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{8,64}$/);

    await typeLine(page, 'echo hello');
    await seeLine(page, 'hello');
    // A variable set in this shell proves later that it is the same shell, not a new one.
    await typeLine(page, 'KEPT=still-here');
    await screenshot(page, 'terminal-page-1280-light');
    await expectAccessible(page, 'the terminal page');

    // The network goes and the socket drops: the page says so and waits for the network.
    await context.setOffline(true);
    await dropSocket(page);
    await status(page).filter({ hasText: /^Reconnecting…/ }).waitFor({ timeout: 15_000 });
    await expectAccessible(page, 'the terminal page, reconnecting');
    await context.setOffline(false);
    await live(page);
    expect(await terminalSockets(page)).toBeGreaterThanOrEqual(2);
    expect(await page.locator('.term-session code').textContent()).toBe(sessionId);
    // The screen was reset on attaching and drawn again by the agent: hello is still there.
    await seeLine(page, 'hello');
    await typeLine(page, 'echo "$KEPT"');
    await seeLine(page, 'still-here');

    // The relay restarting is the same drop to the page: once more, by closing the socket alone.
    await dropSocket(page);
    await live(page);
    await seeLine(page, 'still-here');
    expect(await page.locator('.term-session code').textContent()).toBe(sessionId);

    // The same link opened again is refused: its token was single-use.
    const again = await openPage(d, { width: 390, height: 844, colorScheme: 'dark' });
    await again.page.goto(url);
    await again.page.getByText('This terminal link has expired or was already used — ask for a new one.').waitFor({ timeout: 30_000 });
    expect(again.page.url()).toBe(`${d.origin}/terminal/${d.deviceId}`);
    await screenshot(again.page, 'terminal-page-refused-390-dark');
    await expectAccessible(again.page, 'the terminal page, link refused');
    await noSidewaysScroll(again.page, 'the refused terminal page at 390');
    expect(again.foreign).toEqual([]);
    await again.context.close();

    // Exit ends it, with the reason.
    await typeLine(page, 'exit');
    await status(page).filter({ hasText: /^Ended — the shell exited/ }).waitFor({ timeout: 15_000 });
    const n = await terminalSockets(page);
    await page.waitForTimeout(2000);
    expect(await terminalSockets(page), 'dialled again after the shell exited').toBe(n);

    expect(foreign).toEqual([]);
    // Chromium logs each refused upgrade while offline; nothing else may be in the console.
    expect(errors.filter((e) => !/WebSocket connection to .* failed/.test(e))).toEqual([]);
    await context.close();
  });

  it('refuses a made-up token and says so; a page without a token says it has none', async () => {
    const { page, context, foreign, errors } = await openPage(d, { colorScheme: 'dark' });
    await page.goto(`${d.origin}/terminal/${d.deviceId}#not-a-real-token-0123456789abcdef`);
    await page.getByText('This terminal link has expired or was already used — ask for a new one.').waitFor({ timeout: 30_000 });
    expect(page.url()).toBe(`${d.origin}/terminal/${d.deviceId}`);
    await expectAccessible(page, 'the terminal page with a bogus token');
    await page.goto(`${d.origin}/terminal/${d.deviceId}`);
    await page.getByText('This address has no terminal link token — ask for a new terminal link.').waitFor();
    await expectAccessible(page, 'the terminal page without a token');
    expect(foreign).toEqual([]);
    expect(errors.filter((e) => !/WebSocket connection to .* failed/.test(e))).toEqual([]);
    await context.close();
  });

  it('in the device tab: a new session, a second viewer read-only whose typing is refused, typing handed over and taken back, and the session closed', async () => {
    const role = await d.api('/api/v1/roles', { json: { name: 'Terminal sharer', permissions: ['dashboard:view', 'devices:read', 'terminal:open', 'terminal:share'] } });
    expect(role.status, JSON.stringify(role.body)).toBe(201);
    const sharer = await createUser(d, 'term-sharer', [role.body.id]);
    const team = (await d.api(`/api/v1/devices/${d.deviceId}`)).body.team_id;
    const joined = await d.api(`/api/v1/teams/${team}/members`, { json: { username: sharer.username, role: 'member' } });
    expect(joined.status, JSON.stringify(joined.body)).toBe(201);

    const owner = await openPage(d);
    await signInAdmin(owner.page, d, `/device/${d.deviceId}/terminal`);
    await owner.page.getByRole('heading', { name: 'Terminal sessions', level: 2 }).waitFor();
    await owner.page.getByRole('button', { name: 'New session' }).click();
    await live(owner.page);
    const sessionId = (await owner.page.locator('.term-session code').textContent())!;
    await typeLine(owner.page, 'echo from-the-owner');
    await seeLine(owner.page, 'from-the-owner');
    await screenshot(owner.page, 'terminal-tab-1280-light');
    await expectAccessible(owner.page, 'the terminal tab, typing');

    // The second viewer finds the session in the list and attaches: read-only, and told so.
    const watcher = await openPage(d, { width: 390, height: 844, colorScheme: 'dark' });
    await signIn(watcher.page, d.origin, sharer.username, sharer.password, `/device/${d.deviceId}/terminal`);
    const row = watcher.page.getByRole('row').filter({ hasText: sessionId.slice(0, 8) });
    await row.getByRole('button', { name: /^Attach/ }).click();
    await live(watcher.page);
    expect(await watcher.page.locator('.term-session code').textContent()).toBe(sessionId);
    await watcher.page.getByText(new RegExp(`^Read-only — ${d.env.state.adminUser} is typing`)).waitFor();
    // It sees the owner's screen as it is.
    await seeLine(watcher.page, 'from-the-owner');
    await screenshot(watcher.page, 'terminal-tab-read-only-390-dark');
    await expectAccessible(watcher.page, 'the terminal tab, read-only, at 390 dark');
    await noSidewaysScroll(watcher.page, 'the read-only terminal tab at 390');
    // The owner's page lists both viewers.
    await expect.poll(() => owner.page.getByRole('list', { name: 'Viewers' }).getByRole('listitem').count(), { timeout: 15_000 }).toBe(2);

    // Typing while read-only is refused by the agent, and the page says so; nothing reached the shell.
    await typeLine(watcher.page, 'echo not-allowed');
    await watcher.page.getByRole('alert').filter({ hasText: /READ_ONLY/ }).waitFor({ timeout: 15_000 });
    await expectAccessible(watcher.page, 'the terminal tab, input refused');
    await typeLine(owner.page, 'echo still-the-owner');
    await seeLine(owner.page, 'still-the-owner');
    expect((await screenLines(owner.page)).some((l) => l.includes('not-allowed'))).toBe(false);

    // The owner hands typing over: the second page types now, the owner reads.
    await owner.page.getByText('Hand over typing', { exact: true }).click();
    await expectAccessible(owner.page, 'the terminal tab, handover menu open');
    await owner.page.getByRole('group', { name: 'Hand typing over to' }).getByRole('button', { name: new RegExp(`^${sharer.username}`) }).click();
    await owner.page.getByText(new RegExp(`^Read-only — ${sharer.username} is typing`)).waitFor({ timeout: 15_000 });
    await expect.poll(() => watcher.page.getByText(/^Read-only/).count(), { timeout: 15_000 }).toBe(0);
    await typeLine(watcher.page, 'echo handed-over');
    await seeLine(owner.page, 'handed-over');
    await screenshot(owner.page, 'terminal-tab-handed-over-1280-light');

    // And takes it back.
    await owner.page.getByRole('button', { name: 'Take typing back' }).click();
    await watcher.page.getByText(new RegExp(`^Read-only — ${d.env.state.adminUser} is typing`)).waitFor({ timeout: 15_000 });
    await typeLine(owner.page, 'echo owner-again');
    await seeLine(watcher.page, 'owner-again');

    // Leaving keeps the session; the list shows it, and Close (confirmed) ends it for the watcher too.
    await owner.page.getByRole('button', { name: 'Back to the sessions' }).click();
    const ownRow = owner.page.getByRole('row').filter({ hasText: sessionId.slice(0, 8) });
    await ownRow.waitFor();
    await expectAccessible(owner.page, 'the terminal tab, the sessions list');
    await ownRow.getByRole('button', { name: /^Close/ }).click();
    await expectAccessible(owner.page, 'the terminal tab, close confirmation');
    await owner.page.getByRole('dialog').getByRole('button', { name: 'Close session' }).click();
    await expect.poll(() => ownRow.count(), { timeout: 15_000 }).toBe(0);
    await watcher.page.getByRole('status').filter({ hasText: /^Ended — the session was closed/ }).waitFor({ timeout: 15_000 });

    for (const p of [owner, watcher]) {
      expect(p.foreign).toEqual([]);
      expect(p.errors).toEqual([]);
      await p.context.close();
    }
  });

  it('holds its layout at 1280 and 390 px, light and dark, on the page and in the tab', async () => {
    for (const v of [
      { width: 1280, height: 800, colorScheme: 'dark' },
      { width: 390, height: 844, colorScheme: 'light' },
      { width: 390, height: 844, colorScheme: 'dark' },
    ] as const) {
      const where = `${v.width} ${v.colorScheme}`;
      const { page, context, foreign, errors } = await openPage(d, v);
      await page.goto(await pitunnelLink());
      await live(page);
      await typeLine(page, 'ls --color=always / ; echo layout-ok');
      await seeLine(page, 'layout-ok');
      // The screen fills the window below its bar.
      const box = await page.locator('.term-screen').boundingBox();
      expect(box!.width, where).toBeGreaterThan(v.width * 0.9);
      expect(box!.y + box!.height, where).toBeGreaterThan(v.height * 0.9);
      await screenshot(page, `terminal-page-${v.width}-${v.colorScheme}`);
      await expectAccessible(page, `the terminal page at ${where}`);
      await noSidewaysScroll(page, `the terminal page at ${where}`);
      await typeLine(page, 'exit');
      await status(page).filter({ hasText: /^Ended/ }).waitFor({ timeout: 15_000 });

      await signInAdmin(page, d, `/device/${d.deviceId}/terminal`);
      await page.getByRole('button', { name: 'New session' }).click();
      await live(page);
      await screenshot(page, `terminal-tab-${v.width}-${v.colorScheme}`);
      await expectAccessible(page, `the terminal tab at ${where}`);
      await noSidewaysScroll(page, `the terminal tab at ${where}`);
      await typeLine(page, 'exit');
      await status(page).filter({ hasText: /^Ended/ }).waitFor({ timeout: 15_000 });
      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);
      await context.close();
    }
  });
});
