// The terminal end to end through real parts: the relay in workerd (as `npm start` runs it), real
// agents under Bun with real PTYs running the device's login shell, and a client that speaks the
// terminal socket as the browser's page does (test/e2e/terminal-helpers.ts). What the shell prints
// is judged from the bytes that arrive; what the screen shows by feeding them to @xterm/headless;
// whether a process died by this machine's /proc (the agent runs here).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TERMINAL_SIZE } from '../../shared/protocol/terminal.ts';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';
import { upgradeStatus } from './kvm-helpers.ts';
import { gone, parentOf, protocolsFor, screenOf, socketUrl, terminalLink, Viewer } from './terminal-helpers.ts';

/** The agents' idle window: short, so the idle close is seen in a test, long enough for a re-attach. */
const IDLE_MS = 4_000;

let env: DevEnv;
let dir: string;
let url: string;
let key: string;
let deviceId: string;
let otherId: string;
/** An operator of the devices' team (holds terminal:open and terminal:share). */
let operatorKey: string;
/** A viewer of the team (no terminal:open). */
let viewerKey: string;
const viewers: Viewer[] = [];

const open = async (opts: { key?: string; session?: string; cols?: number; rows?: number; device?: string } = {}) => {
  const device = opts.device ?? deviceId;
  const link = await terminalLink(url, opts.key ?? key, device, opts.session);
  const v = await Viewer.open(socketUrl(url, device, opts.cols, opts.rows), link.token);
  viewers.push(v);
  return v;
};
const resume = async (token: string, cols?: number, rows?: number) => {
  const v = await Viewer.open(socketUrl(url, deviceId, cols, rows), token);
  viewers.push(v);
  return v;
};
const sessions = async () => {
  const r = await http(`${url}/api/v1/devices/${deviceId}/terminal/sessions`, { key });
  if (r.status !== 200) throw new Error(`list sessions: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.sessions as { id: string; pid: number; viewers: unknown[]; idle_since: number | null }[];
};
/** The status of a terminal socket's upgrade offered these subprotocols (101: accepted). */
const socketStatus = (protocols: string[], device = deviceId) =>
  upgradeStatus(socketUrl(url, device).replace(/^ws/, 'http'), { 'sec-websocket-protocol': protocols.join(', ') });
/**
 * Starts `sleep <secs>` as a grandchild of the shell (a background job's child) and a `nohup`ed
 * job (it ignores the hangup), and returns their pids, checked against /proc.
 */
const grandchildren = async (v: Viewer, secs: number) => {
  const from = v.received;
  v.type(`sh -c 'sleep ${secs} & echo GRAND=$!; wait' & nohup sleep ${secs + 1} >/dev/null 2>&1 & echo NOHUP=$!\r`);
  const out = await v.until('both pids', () => {
    const s = v.bytes.subarray(from).toString();
    return /GRAND=\d+\r?\n/.test(s) && /NOHUP=\d+\r?\n/.test(s) ? s : null;
  });
  const grand = Number(/GRAND=(\d+)/.exec(out)![1]);
  const nohup = Number(/NOHUP=(\d+)/.exec(out)![1]);
  expect(gone(grand)).toBe(false);
  expect(gone(nohup)).toBe(false);
  // The grandchild's parent is the `sh -c`, whose parent is the session's shell.
  expect(parentOf(parentOf(grand))).toBe(v.attached.session.pid);
  return [grand, nohup] as const;
};

async function memberKey(role: 'operator' | 'viewer'): Promise<string> {
  const username = `term-${role}`;
  const password = `pw-${role}-terminal-1234`;
  const u = await http(`${url}/api/v1/users`, { key, json: { username, password, roles: [role] } });
  if (u.status !== 201) throw new Error(`user: ${u.status} ${JSON.stringify(u.body)}`);
  const team = (await http(`${url}/api/servers/${deviceId}`, { key })).body.team_id as string;
  const m = await http(`${url}/api/v1/teams/${team}/members`, { key, json: { username, role: 'member' } });
  if (m.status !== 201 && m.status !== 200) throw new Error(`member: ${m.status} ${JSON.stringify(m.body)}`);
  const login = await http(`${url}/api/v1/auth/login`, { json: { username, password } });
  const k = await http(`${url}/api/v1/api-keys`, { key: login.body.token, json: { name: `terminal ${role}` } });
  if (k.status !== 201) throw new Error(`api key: ${k.status} ${JSON.stringify(k.body)}`);
  return k.body.key;
}

beforeAll(async () => {
  dir = await tempDir('terminal');
  env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['term-pi', 'term-other'], agentArgs: ['--terminal-idle-ms', String(IDLE_MS), '--no-journal'], vars: { HEARTBEAT_INTERVAL_MS: '500' } });
  await waitOnline(env, 30_000);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices.find((d) => d.name === 'term-pi')!.id;
  otherId = env.state.devices.find((d) => d.name === 'term-other')!.id;
  operatorKey = await memberKey('operator');
  viewerKey = await memberKey('viewer');
}, 90_000);

afterAll(async () => {
  for (const v of viewers) v.ws.close();
  await env?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a session through the relay', () => {
  it('runs the login shell in a real PTY: stty size after a resize (clamped when absurd), UTF-8, and 2 MiB of binary-ish output byte for byte', async () => {
    const v = await open({ cols: 80, rows: 24 });
    expect(v.attached.typing).toBe(true);
    expect(v.attached.session).toMatchObject({ cols: 80, rows: 24, viewers: [expect.objectContaining({ typing: true })] });
    expect(v.resumeToken ?? (await v.control('resume')).token).toEqual(expect.any(String));

    let from = v.received;
    v.type('stty size\r');
    await v.output(/\n24 80\n/, from);

    v.send({ t: 'resize', cols: 132, rows: 40 });
    await v.until('the size message', () => v.controls.find((c) => c.t === 'size' && c.cols === 132 && c.rows === 40));
    from = v.received;
    v.type('stty size\r');
    await v.output(/\n40 132\n/, from);

    // Absurd sizes are clamped, not refused.
    v.send({ t: 'resize', cols: 60_000, rows: 0 });
    from = v.received;
    v.type('stty size\r');
    await v.output(new RegExp(`\\n${TERMINAL_SIZE.minRows} ${TERMINAL_SIZE.maxCols}\\n`), from);
    v.send({ t: 'resize', cols: 100, rows: 30 });
    from = v.received;
    v.type('stty size\r');
    await v.output(/\n30 100\n/, from);

    // UTF-8: the shell prints from octal escapes, so only the real characters can match.
    from = v.received;
    v.type("printf '\\342\\234\\223 h\\303\\251llo \\360\\237\\230\\200 \\344\\270\\255\\346\\226\\207\\n'\r");
    await v.output('\n✓ héllo 😀 中文\n', from);

    // Every byte value, 2 MiB, through a raw PTY (no output processing), compared byte for byte.
    const data = Buffer.alloc(2 << 20);
    let s = 15;
    for (let i = 0; i < data.length; i++) data[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
    const file = join(dir, 'binary.bin');
    await writeFile(file, data);
    from = v.received;
    v.type(`stty raw -echo; printf '\\102EGIN>'; cat ${file}; printf '<\\105ND'; stty sane\r`);
    await v.until('the whole file', () => v.bytes.subarray(from).includes('<END'), 60_000);
    const got = v.bytes.subarray(from);
    const start = got.indexOf('BEGIN>') + 'BEGIN>'.length;
    const end = got.lastIndexOf('<END');
    expect(start).toBeGreaterThan('BEGIN>'.length - 1);
    expect(end - start).toBe(data.length);
    expect(Buffer.compare(got.subarray(start, end), data)).toBe(0);
    // No message near the 1 MiB a Worker may receive: records are at most 64 KiB.
    expect(v.largest).toBeLessThanOrEqual(64 * 1024);

    const exit = v.controls.length;
    v.send({ t: 'close' });
    expect(await v.control('exit', exit)).toMatchObject({ t: 'exit', reason: 'closed' });
  });

  it('Ctrl-C interrupts, Ctrl-D ends the shell (exit reason "exited")', async () => {
    const v = await open();
    let from = v.received;
    v.type('sleep 30; echo NOT$((1+1))\r');
    await new Promise((r) => setTimeout(r, 300));
    v.type('\x03');
    v.type('echo AFTER$((2+3))\r');
    // Up to the prompt after it: a ^D typed before the shell's line editor is back is lost.
    const out = await v.output(/\nAFTER5\n[\s\S]*[#$] $/, from);
    expect(out).not.toContain('NOT2');
    from = v.controls.length;
    v.type('\x04');
    expect(await v.control('exit', from)).toMatchObject({ reason: 'exited', code: 0 });
  });
});

describe('re-attaching after the viewer dropped', () => {
  // vim's screen can be compared exactly; htop's changes every refresh, so its frame (the column
  // headers, the function keys) is compared. .ci/run installs both when they are missing.
  const programs = ['vim', 'htop'].map((name) => execFileSync('sh', ['-c', `command -v ${name} || true`], { encoding: 'utf8' }).trim()).filter(Boolean);
  // As with Chromium: a machine without either skips them, saying so, except in CI, which must run them.
  it.skipIf(programs.length === 0 && !process.env.CI)('has a full-screen program to run (vim or htop; skipped here: install one)', () => expect(programs.length).toBeGreaterThan(0));
  it.each(programs)('a viewer that dropped comes back with its resume token to the same session and the same screen, with %s running', async (program) => {
    const v1 = await open({ cols: 100, rows: 30 });
    const session = v1.attached.session.id as string;
    const file = join(dir, 'screen.txt');
    await writeFile(file, Array.from({ length: 80 }, (_, i) => `line ${i + 1}: ${'abcdefghij'.repeat(1 + (i % 7))} ✓`).join('\n') + '\n');
    const from = v1.received;
    if (program.endsWith('htop')) v1.type(`${program}\r`);
    else v1.type(`${program} -u NONE -N -n -i NONE ${file}\r`);
    await v1.output(program.endsWith('htop') ? /PID/ : /line 20:/, from);
    if (!program.endsWith('htop')) v1.type(':set number\r25Gwwi INSERTED \x1b');
    // Vim takes its time to leave insert mode after Esc (timeoutlen): wait out more than that.
    await v1.settle(program.endsWith('htop') ? 100 : 1_500);
    const before = await screenOf(v1.bytes, 100, 30);
    expect(before.alternate).toBe(true);
    if (!program.endsWith('htop')) expect(before.lines.join('\n')).toContain('INSERTED');

    const token = v1.resumeToken!;
    expect(token).toEqual(expect.any(String));
    await v1.drop();
    // The session outlives its viewer: listed, watched by nobody, running.
    await waitFor('the session to be unwatched', async () => (await sessions()).find((s) => s.id === session && s.viewers.length === 0 && s.idle_since !== null));
    await new Promise((r) => setTimeout(r, 1_000));

    const v2 = await resume(token, 100, 30);
    expect(v2.attached.session.id).toBe(session);
    expect(v2.attached.typing).toBe(true);
    if (program.endsWith('htop')) {
      // htop redraws itself; compare once it has drawn its refresh on both (the header row stays).
      await v2.settle(100);
      const after = await screenOf(v2.bytes, 100, 30);
      expect(after.alternate).toBe(true);
      const headers = (lines: string[]) => lines.find((l) => /\bPID\b.*\bUSER\b/.test(l))?.trim();
      expect(headers(after.lines)).toBeDefined();
      expect(headers(after.lines)).toEqual(headers(before.lines));
      expect(after.lines.slice(-1)).toEqual(before.lines.slice(-1));
    } else {
      await v2.settle(1_500);
      const after = await screenOf(v2.bytes, 100, 30);
      expect(after.lines).toEqual(before.lines);
      expect(after.cursor).toEqual(before.cursor);
      expect(after.alternate).toBe(true);
    }
    // The resume token is single-use; the hub sent a fresh one with the re-attach.
    expect(await socketStatus(protocolsFor(token))).not.toBe(101);
    expect(v2.resumeToken).toEqual(expect.any(String));
    expect(v2.resumeToken).not.toBe(token);

    // And it is the live session: leave the program, the shell answers.
    const back = v2.received;
    v2.type(program.endsWith('htop') ? 'q' : ':q!\r');
    // Typed ahead, the program would swallow it: wait for the shell's screen (the alternate one left).
    await v2.until('the program to end', () => v2.bytes.subarray(back).includes('\x1b[?1049l'));
    await v2.settle(200);
    v2.type('echo BACK$((6*7))\r');
    await v2.output('\nBACK42\n', back);
    const exit = v2.controls.length;
    v2.send({ t: 'close' });
    await v2.control('exit', exit);
  });
});

describe('two viewers, one typist', () => {
  it('the read-only viewer is told so and its input is refused (READ_ONLY) until the owner hands typing over; then it types and the owner may not', async () => {
    const owner = await open();
    const session = owner.attached.session.id as string;
    const guest = await open({ key: operatorKey, session });
    expect(guest.attached.session.id).toBe(session);
    expect(guest.attached.typing).toBe(false);
    await owner.until('the owner to see the guest', () => owner.controls.find((c) => c.t === 'session' && c.session.viewers.length === 2 && c.typing === true));

    let o = owner.received;
    let g = guest.received;
    let errors = guest.controls.length;
    guest.type('echo RO$((1+1))\r');
    expect(await guest.control('error', errors)).toMatchObject({ code: 'READ_ONLY' });
    owner.type('echo ONE$((1+1))\r');
    await owner.output('\nONE2\n', o);
    await guest.output('\nONE2\n', g);
    expect(owner.bytes.subarray(o).toString()).not.toContain('RO2');

    const handedOver = owner.controls.length;
    owner.send({ t: 'handover', to: guest.attached.viewer });
    expect(await owner.control('handed_over', handedOver)).toMatchObject({ to: { name: 'term-operator' } });
    await guest.until('the guest to be told it types', () => guest.controls.find((c) => c.t === 'session' && c.typing === true));

    o = owner.received;
    g = guest.received;
    guest.type('echo TWO$((2+2))\r');
    await guest.output('\nTWO4\n', g);
    await owner.output('\nTWO4\n', o);
    errors = owner.controls.length;
    owner.type('echo OWN$((3+3))\r');
    expect(await owner.control('error', errors)).toMatchObject({ code: 'READ_ONLY' });

    // The owner takes typing back.
    const took = owner.controls.length;
    owner.send({ t: 'take' });
    await owner.control('handed_over', took);
    o = owner.received;
    owner.type('echo BACK$((4+4))\r');
    await owner.output('\nBACK8\n', o);
    expect(owner.bytes.toString()).not.toContain('OWN6');

    // The handover is in the audit log.
    const audit = await http(`${url}/api/v1/audit?limit=100`, { key });
    expect(audit.status).toBe(200);
    expect(JSON.stringify(audit.body)).toMatch(/terminal\.(handover|hand_over)/);

    const exit = owner.controls.length;
    owner.send({ t: 'close' });
    await owner.control('exit', exit);
    await guest.until('the guest to see the session end', () => guest.controls.find((c) => c.t === 'exit') || guest.closed);
  });
});

describe('closing kills the whole process group', () => {
  it('closing a session through the API kills its shell, the grandchildren it started and a nohup job', async () => {
    const v = await open();
    const session = v.attached.session.id as string;
    const shell = v.attached.session.pid as number;
    const [grand, nohup] = await grandchildren(v, 7771);
    const r = await http(`${url}/api/v1/devices/${deviceId}/terminal/sessions/${session}`, { key, method: 'DELETE' });
    expect(r.status).toBeLessThan(300);
    await waitFor('the shell, its grandchild and its nohup job to die', async () => gone(shell) && gone(grand) && gone(nohup), 15_000);
    await v.until('the viewer to be told', () => v.controls.find((c) => c.t === 'exit' && c.reason === 'closed'));
    expect((await sessions()).map((s) => s.id)).not.toContain(session);
    // Closing it again: 404.
    const again = await http(`${url}/api/v1/devices/${deviceId}/terminal/sessions/${session}`, { key, method: 'DELETE' });
    expect(again.status).toBe(404);
  });

  it('a session nobody watches is closed after the idle window, and its processes die; its resume token then opens nothing', async () => {
    const v = await open();
    const session = v.attached.session.id as string;
    const shell = v.attached.session.pid as number;
    const [grand, nohup] = await grandchildren(v, 7773);
    const token = v.resumeToken!;
    const left = Date.now();
    await v.drop();
    await waitFor('the idle window to close the session', async () => gone(shell) && gone(grand) && gone(nohup), IDLE_MS + 15_000, 100);
    // Not before the window ran out.
    expect(Date.now() - left).toBeGreaterThanOrEqual(IDLE_MS - 500);
    // The agent forgets the session once it has reaped the group, a moment after the processes died.
    await waitFor('the session to leave the list', async () => !(await sessions()).some((s) => s.id === session), 10_000, 100);
    expect(await socketStatus(protocolsFor(token))).not.toBe(101);
  });
});

describe('tokens', () => {
  it('a link token opens one socket once, for its device only; none, a forged one and another device are refused', async () => {
    const link = await terminalLink(url, key, deviceId);
    expect(link.terminal_url).toBe(`${url}/terminal/${deviceId}#${link.token}`);
    expect(link.session).toBeNull();
    expect(Date.parse(link.expires_at) - Date.now()).toBeLessThanOrEqual(60_000);

    // Another device's socket does not take it.
    expect(await socketStatus(protocolsFor(link.token), otherId)).not.toBe(101);
    const other = await terminalLink(url, key, otherId);
    expect(await socketStatus(protocolsFor(other.token), deviceId)).not.toBe(101);

    // No token, a forged one, no subprotocol at all.
    for (const protocols of [['pirelay-terminal'], protocolsFor('A'.repeat(43)), protocolsFor('x')]) expect(await socketStatus(protocols), JSON.stringify(protocols)).not.toBe(101);
    expect(await upgradeStatus(socketUrl(url, deviceId).replace(/^ws/, 'http'), {})).not.toBe(101);
    // An API key on the socket is not a terminal token.
    expect(await upgradeStatus(socketUrl(url, deviceId).replace(/^ws/, 'http'), { authorization: `Bearer ${key}`, 'sec-websocket-protocol': 'pirelay-terminal' })).not.toBe(101);

    const fresh = await terminalLink(url, key, deviceId);
    const v = await Viewer.open(socketUrl(url, deviceId), fresh.token);
    viewers.push(v);
    // Used once: refused the second time, even while the first socket is open.
    expect(await socketStatus(protocolsFor(fresh.token))).not.toBe(101);
    const exit = v.controls.length;
    v.send({ t: 'close' });
    await v.control('exit', exit);
    expect(await socketStatus(protocolsFor(fresh.token))).not.toBe(101);
  });

  it("a link needs terminal:open on the device (natively and through PiTunnel's /terminal); a session the device does not keep gets none", async () => {
    const r = await http(`${url}/api/v1/devices/${deviceId}/terminal`, { key: viewerKey });
    expect(r.status).toBe(403);
    const none = await http(`${url}/api/v1/devices/${deviceId}/terminal`);
    expect(none.status).toBe(401);
    const pt = await http(`${url}/terminal`, { basicKey: viewerKey, body: new URLSearchParams({ device_id: deviceId }) });
    expect(pt.status).toBe(403);
    const link = await http(`${url}/api/v1/devices/${deviceId}/terminal?session=NoSuchSession123`, { key });
    expect(link.status).toBe(404);
    expect(link.body.code).toBe('SESSION_NOT_FOUND');
  });

  it("PiTunnel's /terminal gives a terminal_url that opens a session that echoes", async () => {
    const r = await http(`${url}/terminal`, { basicKey: key, body: new URLSearchParams({ device_id: deviceId }) });
    expect(r.status).toBe(200);
    expect(r.body.terminal_url).toMatch(new RegExp(`^${url}/terminal/${deviceId}#`));
    const v = await Viewer.open(socketUrl(url, deviceId), new URL(r.body.terminal_url).hash.slice(1));
    viewers.push(v);
    const from = v.received;
    v.type('echo hello\r');
    await v.output('\nhello\n', from);
    const exit = v.controls.length;
    v.send({ t: 'close' });
    await v.control('exit', exit);
  });
});
