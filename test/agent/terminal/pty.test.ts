// The PTY round trip through the terminal capability's stream, over a real mux, with a real
// bash in a real PTY: attach, resize (stty size sees it), UTF-8 both ways (even split across
// records), output that is every byte value checked byte for byte, and binary-safe input.
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_MAX_RECORD } from '../../../shared/protocol/terminal.ts';
import { rig, until } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
const dirs: string[] = [];
afterEach(async () => {
  await current?.cleanup();
  current = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'pirelay-term-'));
  dirs.push(d);
  return d;
}

describe('terminal: the PTY round trip', () => {
  test('a new session: ACCEPT 200, attached (this viewer types), then the screen, then a prompt', async () => {
    const r = (current = rig());
    const v = await r.open({ cols: 100, rows: 30 });
    expect(v.status).toBe(200);
    await v.waitControl('attached');
    const a = v.attached;
    expect(a.typing).toBe(true);
    expect(a.viewer).toBe(v.spec.viewer.id);
    expect(a.session).toMatchObject({ owner: { user_id: 'owner-1' }, cols: 100, rows: 30, command: ['/bin/bash', '--norc', '--noprofile', '-i'], idle_since: null, closes_at: null });
    expect(a.session.typist?.id).toBe(v.spec.viewer.id);
    expect(v.controls[0]!.t).toBe('attached');
    const out = await v.run('echo $TERM:$HOME:$USER:$LOGNAME:$(pwd)');
    expect(out).toContain(`xterm-256color:${process.env.HOME ?? '/root'}`);
  });

  test('stty size follows a resize; absurd sizes are clamped, not refused', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    expect(await v.run('stty size')).toMatch(/[\r\n]24 80\r\n/);
    await v.control({ t: 'resize', cols: 132, rows: 43 });
    await v.waitControl('size', (s) => s.cols === 132);
    expect(await v.run('stty size')).toMatch(/[\r\n]43 132\r\n/);
    await v.control({ t: 'resize', cols: 0, rows: 65535 });
    await v.waitControl('size', (s) => s.cols === 2 && s.rows === 200);
    await v.control({ t: 'resize', cols: 65535, rows: 0 });
    await v.waitControl('size', (s) => s.cols === 500 && s.rows === 1);
    await v.control({ t: 'resize', cols: 90, rows: 20 });
    await v.waitControl('size', (s) => s.cols === 90 && s.rows === 20);
    expect(await v.run('stty size')).toMatch(/[\r\n]20 90\r\n/);
    expect(v.of('error')).toEqual([]);
  });

  test('UTF-8 comes back intact, and a character split across two input records arrives whole', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    await v.run('export LANG=C.UTF-8');
    expect(await v.run("printf '<%s>\\n' 'héllo wörld € 日本語 🎉'")).toContain('<héllo wörld € 日本語 🎉>');
    const from = v.text.length;
    // "echo ☃" with the snowman (e2 98 83) cut after its first byte.
    const line = new TextEncoder().encode("printf '[%s]\\n' ☃\r");
    const cut = line.indexOf(0xe2) + 1;
    await v.type(line.subarray(0, cut));
    await v.type(line.subarray(cut));
    expect(await v.waitFor('[☃]', 10_000, from)).toContain('[☃]');
  });

  test('output of every byte value, checked byte for byte (raw mode: no \\n → \\r\\n)', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    const dir = tmp();
    const file = join(dir, 'all-bytes');
    // 2 MB: all 256 values in a pseudo-random order, so no chunking can line up with it.
    const data = new Uint8Array(2_000_000);
    let x = 12345;
    for (let i = 0; i < data.length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    writeFileSync(file, data);
    await v.run('true');
    const from = v.outputBytes;
    // The markers are split in the command line, so its echo does not hold them.
    await v.type(`stty raw -echo; printf ST''ART; cat ${file}; printf E''ND; stty sane\r`);
    await until(() => Buffer.from(v.bytes.subarray(from)).includes('END'), 'the file and its END marker', 30_000);
    const all = v.bytes.subarray(from);
    const start = Buffer.from(all).indexOf('START') + 5;
    const got = all.subarray(start, start + data.length);
    expect(got.length).toBe(data.length);
    expect(Buffer.compare(Buffer.from(got), Buffer.from(data))).toBe(0);
    expect(new TextDecoder().decode(all.subarray(start + data.length, start + data.length + 3))).toBe('END');
    // Output went out in records no larger than the cap.
    expect(Math.max(...v.records.filter((x) => x.kind === 'binary').map((x) => x.bytes))).toBeLessThanOrEqual(TERMINAL_MAX_RECORD);
  });

  test('input is binary-safe: every byte value typed in raw mode lands in a file as sent', async () => {
    const r = (current = rig());
    const v = await r.open();
    await v.waitControl('attached');
    const file = join(tmp(), 'typed');
    await v.type(`stty raw -echo; printf RE''ADY; head -c 256 > ${file}; stty sane; echo WRO''TE\r`);
    await v.waitFor('READY');
    const all = new Uint8Array(256).map((_, i) => i);
    await v.type(all.subarray(0, 100));
    await v.type(all.subarray(100));
    await v.waitFor('WROTE');
    expect([...readFileSync(file)]).toEqual([...all]);
  });
});
