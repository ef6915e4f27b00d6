// Trimming the executable's pages (agent/trim.ts): only read-only mappings of the executable with
// no private page are picked, whatever else smaps lists; and on this machine a real Bun process
// that trims holds fewer file pages afterwards and goes on working (it parses, imports and
// spawns, all of which run code from the pages it dropped).
import { describe, expect, it } from 'bun:test';
import { join } from 'node:path';
import { trimmable } from '../../agent/trim.ts';

const block = (range: string, perms: string, path: string, anonymous: number | null) =>
  [`${range} ${perms} 00000000 08:01 123    ${path}`, 'Size:               1024 kB', 'Rss:                 512 kB', ...(anonymous === null ? [] : [`Anonymous:         ${anonymous} kB`]), 'VmFlags: rd ex mr mw me'].join('\n');

describe('trimmable', () => {
  it('picks the read-only mappings of the executable without private pages, and nothing else', () => {
    const exe = '/usr/local/bin/pirelay agent';
    const smaps = [
      block('00200000-01a39000', 'r--p', exe, 0),
      block('01a40000-0684a000', 'r-xp', exe, 0),
      // relocated (copy-on-write pages): its contents are no longer the file's
      block('0684a000-06867000', 'r--p', exe, 116),
      block('06867000-06b0d000', 'rw-p', exe, 0),
      block('7f0000000000-7f0000100000', 'r-xp', '/usr/lib/x86_64-linux-gnu/libc.so.6', 0),
      block('7f0000100000-7f0000200000', 'r-xp', `${exe} (deleted)`, 0),
      block('7f0000200000-7f0000300000', 'r-xp', exe, null),
      block('33a19c00000-33a59c00000', 'rw-p', '', 12_000),
    ].join('\n');
    expect(trimmable(smaps, exe)).toEqual([
      [0x200000n, 0x1a39000n],
      [0x1a40000n, 0x684a000n],
    ]);
  });
});

describe('trim', () => {
  it('a Bun process that trims holds fewer file pages, and goes on working', () => {
    const probe = join(import.meta.dir, 'trim-probe.ts');
    const r = Bun.spawnSync([process.execPath, probe], { stdout: 'pipe', stderr: 'pipe' });
    expect(r.stderr.toString()).toBe('');
    const out = JSON.parse(r.stdout.toString()) as { before: number; after: number; trimmed: number; works: string };
    expect(out.trimmed).toBeGreaterThan(0);
    expect(out.after).toBeLessThan(out.before);
    expect(out.works).toBe('parsed 3, imported, spawned ok');
  });
});
