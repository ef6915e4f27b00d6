// A viewer that keeps up is never dropped: one reading at a steady pace, slower than the PTY
// writes, receives every byte of a big `cat` exactly, in order — never a redraw instead — while
// the other core is busy too (where an XOFF once took long enough to stop the program that a
// reading viewer's queue passed its bound and lost what was queued). The session holds the program
// paused for it instead, and its queue stays near the high-water mark.
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HIGH_WATER } from '../../../agent/terminal/session.ts';
import type { TerminalOpen } from '../../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordKind } from '../../../shared/protocol/ws-records.ts';
import { rig, sleep, until } from './helpers.ts';

let current: ReturnType<typeof rig> | null = null;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await current?.cleanup();
  current = null;
  for (const f of cleanups.splice(0)) f();
});

/** Bytes per millisecond the viewer reads: 16 MB/s, below what a PTY carries here (~70 MB/s). */
const PACE = 16_000;
const FILE_BYTES = 32 << 20;

describe('terminal: a viewer that keeps up', () => {
  test(
    'reading at a steady pace slower than the PTY, it gets every byte of a 32 MiB cat, exactly, and is never stalled',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pirelay-steady-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'flood.txt');
      // Lines of varying length, so chunk and record boundaries fall anywhere.
      const lines: string[] = [];
      let size = 0;
      for (let i = 0; size < FILE_BYTES; i++) {
        const l = `${i.toString(36)} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(1 + (i % 5)).slice(0, 20 + ((i * 7919) % 150))}\n`;
        lines.push(l);
        size += l.length;
      }
      writeFileSync(file, lines.join(''));
      const expected = readFileSync(file);

      const flag = new Int32Array(new SharedArrayBuffer(4));
      const busy = new Worker(new URL('./busy-core.ts', import.meta.url));
      busy.postMessage(flag);
      cleanups.push(() => {
        Atomics.store(flag, 0, 1);
        busy.terminate();
      });

      const r = (current = rig());
      const spec: TerminalOpen = { kind: 'terminal', viewer: { id: 'steady-viewer-1', user_id: 'owner-1', name: 'owner', may_share: false }, cols: 120, rows: 40 };
      const stream = r.link.hub.open(spec);
      expect((await stream.accepted).status).toBe(200);
      const writer = stream.writable.getWriter();
      const type = (s: string) => writer.write(encodeWsRecord(WsRecordKind.BINARY, new TextEncoder().encode(s)));
      const reader = stream.readable.getReader();
      const decoder = new WsRecordDecoder(1 << 20);
      const output: Buffer[] = [];
      let session = '';
      let worstQueued = 0;
      let ended = false;
      const reading = (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          let bytes = 0;
          for (const rec of decoder.push(value)) {
            if (rec.kind === 'text') {
              const c = JSON.parse(rec.text) as { t: string; session?: { id: string } };
              if (c.t === 'attached') session = c.session!.id;
            } else if (rec.kind === 'binary') {
              output.push(Buffer.from(rec.data));
              bytes += rec.data.byteLength;
            }
          }
          if (session) worstQueued = Math.max(worstQueued, r.flow(session)?.viewers[0]?.queued ?? 0);
          // The steady pace: the time these bytes take at PACE.
          if (bytes) await sleep(bytes / PACE);
        }
        ended = true;
      })();
      await until(() => session, 'attached');
      await sleep(300);
      const all = () => Buffer.concat(output);
      // No echo and no \n → \r\n (IXON stays as a shell leaves it); the markers are printed by
      // printf from octal escapes, so the command line's own echo cannot match them.
      await type(`stty -echo -opost; printf '\\102EGIN>'; cat ${file}; printf '<\\105ND'\r`);
      await until(() => all().includes('<END'), 'the end marker', 120_000);
      const got = all();
      const body = got.subarray(got.indexOf('BEGIN>') + 'BEGIN>'.length, got.indexOf('<END'));
      expect(body.byteLength).toBe(expected.byteLength);
      expect(body.equals(expected)).toBe(true);
      const flow = r.flow(session);
      expect(flow.viewers[0]!.stalled).toBe(false);
      // Never redrawn: no reset (ESC c) came after the attach's redraw.
      expect(got.subarray(got.indexOf('BEGIN>')).includes('\x1bc')).toBe(false);
      // Held paused for it: its queue stayed near the high-water mark, far from the stall bound.
      expect(worstQueued).toBeLessThan(HIGH_WATER + (2 << 20));
      expect(ended).toBe(false);
      stream.reset('CANCELLED');
      await reading.catch(() => {});
    },
    { timeout: 180_000 },
  );
});
