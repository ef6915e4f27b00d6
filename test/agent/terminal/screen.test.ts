// A viewer that re-attaches sees the screen as it is, not a tail of output: a full-screen program
// (the alternate screen, colours, the cursor at a position, a mode) is drawn, the viewer drops,
// the program draws more while nobody watches, a viewer attaches again, and a fresh emulator fed
// only what the new attachment received shows, cell by cell, what a viewer that watched all along
// shows. The same for vim when it is installed.
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cells, replayed, rig, sleep, until, type TestViewer } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
const dirs: string[] = [];
afterEach(async () => {
  await current?.cleanup();
  current = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** What the viewer received after `attached` (the redraw and live output), replayed into a fresh emulator. */
async function freshScreen(v: TestViewer) {
  const { cols, rows } = v.attached.session;
  return replayed(v.bytes, cols, rows);
}

async function sameScreens(a: TestViewer, b: TestViewer) {
  // Both have parsed everything they were sent once their output stops changing.
  let last = -1;
  await until(() => {
    const n = a.outputBytes + b.outputBytes;
    const quiet = n === last;
    last = n;
    return quiet;
  }, 'output to settle');
  const fresh = await freshScreen(b);
  expect(await cells(fresh)).toEqual(await cells(a.screen));
}

describe('terminal: the screen survives the viewer', () => {
  test('a full-screen program drawn, the viewer dropped, more drawn, re-attached: the same screen, cell by cell', async () => {
    const r = (current = rig());
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-fs-'));
    dirs.push(dir);
    const script = join(dir, 'fullscreen.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        // The alternate screen, cleared; text at positions, colours, a hidden cursor, app cursor keys.
        "printf '\\033[?1049h\\033[2J\\033[H\\033[1;37;44m TITLE BAR \\033[0m'",
        "printf '\\033[5;10H\\033[31mred text\\033[0m\\033[7;3H\\033[1mbold\\033[0m \\033[4munder\\033[0m'",
        "printf '\\033[?1h'",
        'read line',
        "printf '\\033[12;20H\\033[32mdrawn while nobody watched: %s\\033[0m\\033[3;4H' \"$line\"",
        'read line2',
        "printf '\\033[?1049l'",
      ].join('\n'),
    );
    const watcher = await r.open({ user: 'owner-1' });
    await watcher.waitControl('attached');
    await watcher.run('echo on-the-normal-screen');
    const typist = await r.open({ session: watcher.session, user: 'owner-1', cols: 80, rows: 24 });
    await typist.waitControl('attached');
    await watcher.type(`sh ${script}\r`);
    await watcher.waitFor('bold');
    await sameScreens(watcher, typist);
    // The second viewer drops; the program draws while it is away.
    typist.stream.reset('CANCELLED');
    await sleep(50);
    await watcher.type('hello\r');
    await watcher.waitFor('nobody watched');
    const back = await r.open({ session: watcher.session, user: 'owner-1' });
    await back.waitControl('attached');
    await until(() => back.outputBytes > 0, 'the redraw');
    await sameScreens(watcher, back);
    const fresh = await freshScreen(back);
    expect(fresh.buffer.active.type).toBe('alternate');
    expect(fresh.modes.applicationCursorKeysMode).toBe(true);
    expect(fresh.buffer.active.cursorX).toBe(3);
    expect(fresh.buffer.active.cursorY).toBe(2);
    expect(fresh.buffer.active.getLine(11)?.translateToString(true)).toContain('drawn while nobody watched: hello');
    // The normal screen is underneath, with what was there before the program.
    expect(await cells(fresh)).toContainEqual(expect.stringMatching(/^normal:.*o[^|]*\|n[^|]*\|-[^|]*\|t[^|]*\|h[^|]*\|e/));
    await watcher.type('\r');
    await until(() => watcher.screen.buffer.active.type === 'normal', 'the program to end');
    await sameScreens(watcher, back);
  });

  test.if(Bun.which('vim') !== null)('vim: re-attached, the same screen', async () => {
    const r = (current = rig());
    const dir = mkdtempSync(join(tmpdir(), 'pirelay-vim-'));
    dirs.push(dir);
    const file = join(dir, 'notes.txt');
    writeFileSync(file, Array.from({ length: 60 }, (_, i) => `line ${i + 1}: ${'abcdefghij'.repeat(i % 7)}`).join('\n'));
    const a = await r.open();
    await a.waitControl('attached');
    await a.type(`vim -u NONE -N -n ${file}\r`);
    await a.waitFor('line 20');
    await a.type('30Gdd');
    await sleep(300);
    const b = await r.open({ session: a.session, user: 'watcher-9' });
    await b.waitControl('attached');
    await until(() => b.outputBytes > 0, 'the redraw');
    await sameScreens(a, b);
    expect((await freshScreen(b)).buffer.active.type).toBe('alternate');
    await a.type(':q!\r');
  });
});
