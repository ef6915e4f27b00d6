// A session's life: it ends its whole process session when closed (the control, terminal_close,
// the agent stopping) and when its idle window runs out — a background job and a nohup'd one
// included —, it survives its viewers and the socket, a viewer in time cancels the idle window,
// and a shell that exits by itself tells every viewer and ends their streams. Also the limits and
// the statuses a refused attach is answered with.
import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { MAX_TERMINAL_SESSIONS, MAX_TERMINAL_VIEWERS, TerminalSessionSchema } from '../../../shared/protocol/terminal.ts';
import { rig, sleep, until, type TestViewer } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
afterEach(async () => {
  await current?.cleanup();
  current = null;
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    // A zombie is gone, only not reaped yet.
    return existsSync(`/proc/${pid}/stat`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
};

/** Starts a background job and a nohup'd one in the shell; their pids. */
async function children(v: TestViewer): Promise<number[]> {
  const out = await v.run('sleep 1000 & echo PID1=$!; nohup sleep 1001 >/dev/null 2>&1 & echo PID2=$!; trap "" HUP');
  const pids = [...out.matchAll(/PID\d=(\d+)/g)].map((m) => Number(m[1]));
  expect(pids).toHaveLength(2);
  for (const p of pids) expect(alive(p)).toBe(true);
  return pids;
}

describe('terminal: a session ends its whole process session', () => {
  test('the close control: the shell (ignoring SIGHUP), its job and a nohup job are killed; exit, then FIN', async () => {
    const r = (current = rig({}, { killGraceMs: 500 }));
    const v = await r.open();
    await v.waitControl('attached');
    const shell = v.attached.session.pid;
    const pids = await children(v);
    await v.control({ t: 'close' });
    const exit = await v.waitControl('exit');
    expect(exit).toEqual({ t: 'exit', code: null, signal: expect.any(String), reason: 'closed' });
    await until(() => v.ended === 'fin', 'the stream to end');
    for (const p of [shell, ...pids]) expect(alive(p)).toBe(false);
    expect(await r.rpc('terminal_list', {})).toEqual({ ok: true, result: { sessions: [] } });
  });

  test('terminal_close: kills the group and answers the session; an unknown one is SESSION_NOT_FOUND', async () => {
    const r = (current = rig({}, { killGraceMs: 500 }));
    const v = await r.open();
    await v.waitControl('attached');
    const pids = await children(v);
    const listed = await r.rpc('terminal_list', {});
    expect(listed.ok).toBe(true);
    const sessions = (listed as { result: { sessions: unknown[] } }).result.sessions;
    expect(sessions).toHaveLength(1);
    expect(TerminalSessionSchema.parse(sessions[0])).toMatchObject({ id: v.session, pid: v.attached.session.pid, viewers: [{ id: v.spec.viewer.id, typing: true }] });
    const closed = await r.rpc('terminal_close', { session: v.session });
    expect(closed).toMatchObject({ ok: true, result: { session: { id: v.session } } });
    for (const p of pids) expect(alive(p)).toBe(false);
    expect((await v.waitControl('exit')).reason).toBe('closed');
    expect(await r.rpc('terminal_close', { session: v.session })).toMatchObject({ ok: false, error: { code: 'SESSION_NOT_FOUND' } });
    expect(await r.rpc('terminal_close', { session: 'nosuchsession' })).toMatchObject({ ok: false, error: { code: 'SESSION_NOT_FOUND' } });
  });

  test('the idle window: after the last viewer left, the session lives idleMs, then its group is killed', async () => {
    const r = (current = rig({ idleMs: 700 }, { killGraceMs: 500 }));
    const v = await r.open();
    await v.waitControl('attached');
    const shell = v.attached.session.pid;
    const pids = await children(v);
    const left = Date.now();
    await v.close();
    const listed = await until(() => {
      const s = (r.cap.rpc!.terminal_list!({}) as { sessions: { idle_since: number | null; closes_at: number | null }[] }).sessions[0];
      return s?.idle_since !== null && s;
    }, 'the idle window to start');
    expect(listed.idle_since).toBeGreaterThanOrEqual(left - 50);
    expect(listed.closes_at).toBe(listed.idle_since! + 700);
    await until(() => !alive(shell), 'the idle window to close the session', 10_000);
    await until(() => pids.every((p) => !alive(p)), 'the jobs to be killed', 5_000);
    await until(() => (r.cap.rpc!.terminal_list!({}) as { sessions: unknown[] }).sessions.length === 0, 'the session to be forgotten');
  });

  test('a viewer attaching within the idle window cancels it; the screen is still there', async () => {
    const r = (current = rig({ idleMs: 1000 }));
    const v = await r.open();
    await v.waitControl('attached');
    await v.run('echo still-here');
    await v.close();
    await sleep(500);
    const again = await r.open({ session: v.session });
    await again.waitControl('attached');
    expect(again.attached.session).toMatchObject({ idle_since: null, closes_at: null });
    expect(again.typing).toBe(true);
    await sleep(1200);
    expect(alive(v.attached.session.pid)).toBe(true);
    expect(await again.run('echo and-alive')).toContain('and-alive');
  });

  test('the socket going keeps the session: its viewers end, its idle window starts, a new viewer gets it back', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    await v.run('X=kept-across-the-drop');
    r.cap.onGone!();
    r.link.hub.resetAll('SOCKET_CLOSED', 'gone');
    await until(() => v.ended !== null, 'the viewer to end');
    const s = (r.cap.rpc!.terminal_list!({}) as { sessions: { idle_since: number | null; viewers: unknown[] }[] }).sessions[0]!;
    expect(s.viewers).toEqual([]);
    expect(s.idle_since).not.toBeNull();
    const back = await r.open({ session: v.session });
    await back.waitControl('attached');
    expect(await back.run('echo $X')).toContain('kept-across-the-drop');
  });

  test('the shell exiting by itself: every viewer gets exit with its code, and its stream ends', async () => {
    const r = (current = rig());
    const a = await r.open();
    await a.waitControl('attached');
    const b = await r.open({ session: a.session, user: 'someone-else' });
    await b.waitControl('attached');
    await a.type('exit 7\r');
    for (const v of [a, b]) {
      expect(await v.waitControl('exit')).toEqual({ t: 'exit', code: 7, signal: null, reason: 'exited' });
      await until(() => v.ended === 'fin', 'the stream to end');
    }
  });

  test('closeAll (the agent stopping) closes every session', async () => {
    const r = (current = rig({}, { killGraceMs: 500 }));
    const a = await r.open();
    const b = await r.open({ user: 'another' });
    await a.waitControl('attached');
    await b.waitControl('attached');
    const pids = [a.attached.session.pid, b.attached.session.pid, ...(await children(a))];
    await r.cap.closeAll();
    for (const p of pids) expect(alive(p)).toBe(false);
    expect((r.cap.rpc!.terminal_list!({}) as { sessions: unknown[] }).sessions).toEqual([]);
  });
});

describe('terminal: limits and refusals', () => {
  test('an unknown session: ACCEPT 404 SESSION_NOT_FOUND with a JSON body', async () => {
    const r = (current = rig());
    const v = await r.open({ session: 'not-a-session-at-all' });
    expect(v.status).toBe(404);
    expect(JSON.parse(v.body)).toMatchObject({ code: 'SESSION_NOT_FOUND', error: expect.any(String), details: {} });
  });

  test(`at most ${MAX_TERMINAL_VIEWERS} viewers (409 TOO_MANY_VIEWERS) and ${MAX_TERMINAL_SESSIONS} sessions (409 TERMINAL_LIMIT)`, async () => {
    const r = (current = rig({ command: ['/bin/sh', '-c', 'exec sleep 1000'] }, { killGraceMs: 500 }));
    const first = await r.open();
    await first.waitControl('attached');
    for (let i = 1; i < MAX_TERMINAL_VIEWERS; i++) expect((await r.open({ session: first.session, user: `u${i}` })).status).toBe(200);
    const extra = await r.open({ session: first.session, user: 'one-too-many' });
    expect(extra.status).toBe(409);
    expect(JSON.parse(extra.body).code).toBe('TOO_MANY_VIEWERS');
    for (let i = 1; i < MAX_TERMINAL_SESSIONS; i++) expect((await r.open({ user: `s${i}` })).status).toBe(200);
    const over = await r.open({ user: 'one-session-too-many' });
    expect(over.status).toBe(409);
    expect(JSON.parse(over.body)).toMatchObject({ code: 'TERMINAL_LIMIT', details: { limit: MAX_TERMINAL_SESSIONS } });
  });

  test('a command that cannot be started: 500 SPAWN_FAILED, and the agent goes on', async () => {
    const r = (current = rig({ command: ['/nonexistent/program'] }));
    const v = await r.open();
    expect(v.status).toBe(500);
    expect(JSON.parse(v.body).code).toBe('SPAWN_FAILED');
  });
});
