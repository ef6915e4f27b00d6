// A flood of output against a viewer that does not read must not grow the agent's memory: the
// session pauses the program (tcflow TCOOFF on its PTY, else XOFF) — its writes stop, which
// /proc/<pid>/io shows — and once the viewer reads again Ctrl-C stops the flood. A viewer with no
// progress for STALL_MS (or past STALL_BYTES) stops holding the session back: its queue is dropped
// and it is redrawn when it reads again. With IXON off (raw mode) the program is paused all the
// same (TCOOFF needs no IXON), the stuck viewer is dropped, and the bounds hold.
import { afterEach, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { HIGH_WATER, LOW_WATER, STALL_BYTES } from '../../../agent/terminal/session.ts';
import { SCREEN_BACKLOG_CAP } from '../../../agent/terminal/screen.ts';
import { TERMINAL_MAX_RECORD } from '../../../shared/protocol/terminal.ts';
import { rig, sleep, until } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
afterEach(async () => {
  await current?.cleanup();
  current = null;
});

const written = (pid: number) => Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
/** The bound on a viewer's queue: the stall mark plus the chunk that crossed it. */
const VIEWER_BOUND = STALL_BYTES + TERMINAL_MAX_RECORD;
/** Where a paused program leaves a viewer's queue: the high-water mark plus what the PTY had already given. */
const PAUSED_BOUND = HIGH_WATER + (2 << 20);

describe('terminal: flow control', () => {
  test(
    'a flood against a viewer that stopped reading: the program is paused, memory stays bounded, Ctrl-C stops it once the viewer reads',
    async () => {
      const r = (current = rig());
      const v = await r.open();
      await v.waitControl('attached');
      await v.run('true');
      const rss0 = process.memoryUsage().rss;
      await v.type("sh -c 'echo FLOOD=$$; exec yes flooding-the-terminal'\r");
      const pid = Number(/FLOOD=(\d+)/.exec(await v.waitFor(/FLOOD=\d+/))![0].slice(6));
      v.pause();
      // The viewer's queue passes the high-water mark and the PTY is paused; it stays paused while
      // the viewer holds more than the low-water mark. (On a machine too slow to pause within
      // Bun's read burst the viewer may be past its bound at once: then it is dropped, below.)
      await until(() => {
        const f = r.flow(v.session);
        return (f.paused && f.viewers[0]!.queued > LOW_WATER) || f.viewers[0]!.stalled;
      }, 'the viewer to hold the PTY paused');
      let w2 = 0;
      if (!r.flow(v.session).viewers[0]!.stalled) {
        expect(r.flow(v.session).viewers[0]!.queued).toBeLessThan(PAUSED_BOUND);
        // Paused means the program's writes stop (a little more may fit the tty's buffer first).
        await sleep(300);
        const w1 = written(pid);
        await sleep(700);
        w2 = written(pid);
        if (!r.flow(v.session).viewers[0]!.stalled) expect(w2 - w1).toBeLessThan(64 * 1024);
      }
      // Past STALL_MS the viewer is dropped from the gate: its queue goes, output flows again (at
      // the emulator's pace), and nothing it missed is kept for it.
      await until(() => r.flow(v.session).viewers[0]!.stalled, 'the viewer to be marked stalled', 15_000);
      let worst = 0;
      for (let i = 0; i < 20; i++) {
        const f = r.flow(v.session);
        worst = Math.max(worst, f.viewers[0]!.queued);
        // The high-water mark is where the pause starts; what Bun had read before the XOFF took
        // effect overshoots it by a few MiB at most, and the cap is the hard bound.
        expect(f.backlog).toBeLessThanOrEqual(SCREEN_BACKLOG_CAP + (1 << 20));
        await sleep(50);
      }
      expect(worst).toBeLessThan(VIEWER_BOUND);
      expect(written(pid)).toBeGreaterThan(w2);
      expect(process.memoryUsage().rss - rss0).toBeLessThan(256 << 20);
      // The viewer reads again: it is redrawn, then live; Ctrl-C ends the flood and the prompt comes back.
      const before = v.outputBytes;
      v.resume();
      await until(() => v.outputBytes > before, 'output to flow again');
      await v.type(new Uint8Array([0x03]));
      expect(await v.run('echo after-the-flood', 20_000)).toContain('after-the-flood');
      expect(Buffer.from(v.bytes.subarray(before)).includes('\x1bc')).toBe(true);
      await until(() => !r.flow(v.session).paused, 'the PTY to be resumed');
      expect(r.flow(v.session).viewers[0]!.stalled).toBe(false);
    },
    { timeout: 60_000 },
  );

  test(
    'IXON off (raw mode): the program is paused all the same, a viewer that does not read is dropped after STALL_MS, the bounds hold, and it is redrawn',
    async () => {
      const r = (current = rig());
      const reader = await r.open();
      await reader.waitControl('attached');
      const stuck = await r.open({ session: reader.session, user: 'stuck' });
      await stuck.waitControl('attached');
      await reader.run('stty -ixon');
      stuck.pause();
      await reader.type("sh -c 'echo FLOOD=$$; exec yes no-xoff-here'\r");
      const pid = Number(/FLOOD=(\d+)/.exec(await reader.waitFor(/FLOOD=\d+/))![0].slice(6));
      const stuckFlow = () => r.flow(reader.session).viewers.find((x) => x.id === stuck.spec.viewer.id)!;
      // Paused for the stuck viewer though IXON is off: its writes stop (TCOOFF needs no IXON).
      await until(() => r.flow(reader.session).paused || stuckFlow().stalled, 'the PTY to be paused');
      if (!stuckFlow().stalled) {
        expect(stuckFlow().queued).toBeLessThan(PAUSED_BOUND);
        await sleep(300);
        const w1 = written(pid);
        await sleep(700);
        if (!stuckFlow().stalled) expect(written(pid) - w1).toBeLessThan(64 * 1024);
      }
      await until(() => stuckFlow().stalled, 'the stuck viewer to be dropped', 15_000);
      for (let i = 0; i < 20; i++) {
        const f = r.flow(reader.session);
        expect(f.backlog).toBeLessThanOrEqual(SCREEN_BACKLOG_CAP + (1 << 20));
        for (const x of f.viewers) expect(x.queued).toBeLessThan(VIEWER_BOUND);
        await sleep(50);
      }
      // The reading viewer kept getting output all along.
      const got = reader.outputBytes;
      await until(() => reader.outputBytes > got + (1 << 20), 'the reader to keep reading', 30_000);
      await reader.type(new Uint8Array([0x03]));
      expect(await reader.run('echo stopped', 20_000)).toContain('stopped');
      const before = stuck.outputBytes;
      stuck.resume();
      await stuck.waitFor('stopped', 20_000, 0);
      expect(Buffer.from(stuck.bytes.subarray(before)).includes('\x1bc')).toBe(true);
    },
    { timeout: 60_000 },
  );
});
