// Output throughput of one session in this process, without the relay: a loopback hub reading the
// viewer's stream directly (no emulator on the reading side), `cat` of a file of BYTES (default
// 50 MB) from Enter to a marker after it. Run with `bun test/agent/terminal/throughput-probe.ts`;
// prints MB/s and the bytes received (every byte of the file must arrive). A measurement, not a test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TerminalOpen } from '../../../shared/protocol/terminal.ts';
import { encodeWsRecord, WsRecordDecoder, WsRecordKind } from '../../../shared/protocol/ws-records.ts';
import { rig } from './helpers.ts';

const BYTES = Number(process.env.BYTES ?? 50_000_000);
const RUNS = Number(process.env.RUNS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'pirelay-tp-'));
const file = join(dir, 'flood.txt');
const line = `${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(3).slice(0, 99)}\n`;
writeFileSync(file, line.repeat(Math.ceil(BYTES / line.length)).slice(0, BYTES));

const r = rig();
const spec: TerminalOpen = { kind: 'terminal', viewer: { id: 'probe-viewer-0001', user_id: 'owner-1', name: 'o', may_share: false }, cols: 120, rows: 40 };
const stream = r.link.hub.open(spec);
await stream.accepted;
const writer = stream.writable.getWriter();
const type = (s: string) => writer.write(encodeWsRecord(WsRecordKind.BINARY, new TextEncoder().encode(s)));
const reader = stream.readable.getReader();
const dec = new WsRecordDecoder(1 << 20);
let received = 0;
let tail = '';
/** Bytes received from the command's Enter to the end of the marker's record. */
let want = null as { needle: string; resolve: () => void } | null;
void (async () => {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    for (const rec of dec.push(value)) {
      if (rec.kind !== 'binary') continue;
      received += rec.data.byteLength;
      if (want) {
        const b = Buffer.from(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength);
        if (b.includes(want.needle) || Buffer.concat([Buffer.from(tail, 'latin1'), b.subarray(0, 16)]).includes(want.needle)) {
          const w = want;
          want = null;
          w.resolve();
        }
        tail = b.subarray(-16).toString('latin1');
      }
    }
  }
})();
const waitFor = (needle: string) => {
  tail = '';
  return new Promise<void>((resolve) => (want = { needle, resolve }));
};
await type('stty -echo\r');
await Bun.sleep(300);
const results: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const from = received;
  const done = waitFor('DONE!');
  const t0 = performance.now();
  await type(`cat ${file}; printf '\\104ONE!\\n'\r`);
  await done;
  const s = (performance.now() - t0) / 1000;
  const got = received - from;
  results.push(BYTES / 1e6 / s);
  console.log(JSON.stringify({ run: i, mbps: +(BYTES / 1e6 / s).toFixed(1), received: got, file: BYTES, ms: Math.round(s * 1000), flow: r.flow(r.cap ? (await r.rpc('terminal_list', {}) as { result: { sessions: { id: string }[] } }).result.sessions[0]!.id : '') }));
  await Bun.sleep(300);
}
console.log(JSON.stringify({ best: +Math.max(...results).toFixed(1), median: +results.sort((a, b) => a - b)[Math.floor(results.length / 2)]!.toFixed(1) }));
await r.cap.closeAll();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
