// An agent nobody opens a terminal on pays nothing for it: built as `run` builds it, it has loaded
// neither the session manager nor the terminal emulator (terminal_list answers without them); the
// first terminal stream loads them (the emulator on its own thread, which ends with the last
// session). And `run`'s stop hook closes the sessions. A fresh process,
// so nothing is cached.
import { describe, expect, it } from 'bun:test';
import { join } from 'node:path';

const PROBE = join(import.meta.dir, 'idle-probe.ts');

describe('terminal capability: the idle agent', () => {
  it('loads no terminal module and no emulator until the first terminal stream, whose emulator runs on its own thread until the last session ends; the stop hook closes sessions', () => {
    const r = Bun.spawnSync([process.execPath, PROBE], { stdout: 'pipe', stderr: 'pipe' });
    expect(r.stderr.toString()).toBe('');
    const out = JSON.parse(r.stdout.toString());
    expect(out.idle).toEqual([]);
    expect(out.list).toEqual({ ok: true, result: { sessions: [] } });
    expect(out.afterList).toEqual([]);
    expect(out.status).toBe(200);
    // The emulator itself is loaded on its own thread, never on the agent's.
    expect(out.afterOpen).toEqual(['agent/terminal/sessions.ts', 'agent/terminal/session.ts', 'agent/terminal/screen.ts']);
    expect(out.threadAfterOpen).toBe(true);
    expect(out.threadAfterStop).toBe(false);
    expect(out.stops).toBe(1);
    expect(out.afterStop).toEqual({ ok: true, result: { sessions: [] } });
  });
});
