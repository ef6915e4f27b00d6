// The terminal part of `npm run bench`, through the relay to a demo agent's real PTY, with a
// WebSocket client speaking the terminal socket as the page does (acking what it receives):
// - keystroke echo: one key sent, the time to the first output byte back (the shell's line editor
//   echoes it), alternating a letter and a backspace so the line never grows; beside the same
//   run's baselines: the same echo from a local PTY (Bun.spawn with `terminal`, no relay) and the
//   ceiling of any device round trip (bench/hop-baseline.ts);
// - output throughput: `cat` of a 100 MB text file, from the command's Enter to the marker printed
//   after it, in MB/s of bytes received, with the agent's RSS at its highest meanwhile;
// - Ctrl-C during that flood: from sending 0x03 to the shell's prompt being back;
// - the largest WebSocket message the client received in all of it (the platform lets a Worker
//   receive at most 1 MiB).
// Run alone with `npx tsx bench/terminal.ts`.
import { createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBunToEnd, startDevEnv, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';
import { socketUrl, terminalLink, Viewer } from '../test/e2e/terminal-helpers.ts';
import { startHopBaseline } from './hop-baseline.ts';
import { load, percentile } from './load.ts';
import { rss } from './proc.ts';

type Row = [string, string, string];
const KEYSTROKES = Number(process.env.BENCH_TERMINAL_KEYSTROKES ?? 500);
const WARMUP = 50;
const FLOOD_BYTES = Number(process.env.BENCH_TERMINAL_FLOOD_MB ?? 100) * 1_000_000;

const ms = (n: number) => n.toFixed(2);
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99) };
};

/** The same keystroke echo from a local PTY, no relay: Bun.spawn's terminal running the same shell. */
const LOCAL_PTY = `
const lat = [];
let waiting = null;
const proc = Bun.spawn(['bash', '--norc', '-i'], { terminal: { cols: 80, rows: 24, data() { waiting?.(); } }, env: { ...process.env, PS1: '$ ' } });
await Bun.sleep(500);
for (let i = 0; i < ${WARMUP + KEYSTROKES}; i++) {
  const t0 = performance.now();
  await new Promise((r) => { waiting = r; proc.terminal.write(i % 2 ? '\\x7f' : 'a'); });
  waiting = null;
  if (i >= ${WARMUP}) lat.push(performance.now() - t0);
  await Bun.sleep(1);
}
proc.kill(9);
console.log(JSON.stringify(lat));
process.exit(0);
`;

/** Watches a byte stream for a marker across chunk boundaries. */
function marker(v: Viewer, text: string): { seen: Promise<number> } {
  const needle = Buffer.from(text);
  let tail = Buffer.alloc(0);
  let resolveSeen!: (at: number) => void;
  const seen = new Promise<number>((r) => (resolveSeen = r));
  v.onBytes = (b) => {
    const joined = Buffer.concat([tail, Buffer.from(b.buffer, b.byteOffset, b.byteLength)]);
    if (joined.includes(needle)) {
      v.onBytes = undefined;
      resolveSeen(performance.now());
    }
    tail = joined.subarray(Math.max(0, joined.length - needle.length));
  };
  return { seen };
}

export async function benchTerminal(env: DevEnv): Promise<Row[]> {
  const { url, apiKey, devices } = env.state;
  const deviceId = devices[0]!.id;
  const agentPid = env.agents.get(deviceId)!.pid!;
  const rows: Row[] = [];
  const dir = await tempDir('bench-terminal');
  try {
    // Baselines of the same run.
    const hop = await startHopBaseline();
    let ceiling: { p50: number; p99: number };
    try {
      await load(`${hop.url}/ws`, { concurrency: 1, durationMs: 60_000, maxRequests: 200 });
      ceiling = await load(`${hop.url}/ws`, { concurrency: 1, durationMs: 60_000, maxRequests: 2000 });
    } finally {
      await hop.stop();
    }
    await writeFile(join(dir, 'pty.ts'), LOCAL_PTY);
    const local = await runBunToEnd([join(dir, 'pty.ts')]);
    const localPty = local.code === 0 ? stats(JSON.parse(local.stdout.trim().split('\n').pop()!) as number[]) : null;

    const link = await terminalLink(url, apiKey, deviceId);
    const v = await Viewer.open(socketUrl(url, deviceId, 120, 40), link.token, { keep: false });
    try {
      // A prompt that only the shell prints (the typed text has the octal escape), and no history.
      v.type("PS1='\\101RDY> '; unset PROMPT_COMMAND; HISTFILE=/dev/null\r");
      await marker(v, 'ARDY> ').seen;
      await v.settle(300);

      // Keystroke echo.
      const echo: number[] = [];
      for (let i = 0; i < WARMUP + KEYSTROKES; i++) {
        const before = v.received;
        const t0 = performance.now();
        const at = new Promise<number>((r) => (v.onBytes = () => r(performance.now())));
        v.type(i % 2 ? '\x7f' : 'a');
        const t1 = await at;
        v.onBytes = undefined;
        // Let the rest of the echo (a backspace's erase sequence) arrive before the next key.
        await new Promise((r) => setTimeout(r, 2));
        if (v.received > before && i >= WARMUP) echo.push(t1 - t0);
      }
      const e = stats(echo);
      rows.push([
        `terminal keystroke → its echo back, through the relay (${echo.length} sequential)`,
        `p50 ${ms(e.p50)} ms, p99 ${ms(e.p99)} ms (${(e.p50 / ceiling.p50).toFixed(1)}× / ${(e.p99 / ceiling.p99).toFixed(1)}× the ceiling)`,
        'p99 ≤ 20 ms',
      ]);
      rows.push([`… the same echo from a local PTY, no relay (baseline)`, localPty ? `p50 ${ms(localPty.p50)} ms, p99 ${ms(localPty.p99)} ms` : `not measured: ${local.stderr.slice(0, 120)}`, '—']);

      // A 100 MB text file (100-byte lines), then `cat` of it to the marker after it.
      const file = join(dir, 'flood.txt');
      await new Promise<void>((done, fail) => {
        const out = createWriteStream(file);
        const line = `${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(3).slice(0, 99)}\n`;
        const block = line.repeat(10_000);
        let written = 0;
        const more = () => {
          while (written < FLOOD_BYTES) {
            written += block.length;
            if (!out.write(block)) return void out.once('drain', more);
          }
          out.end(done);
        };
        out.on('error', fail);
        more();
      });
      await v.settle(200);
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, rss(agentPid).total)), 100);
      let flood: { mbs: number; bytes: number };
      try {
        const start = v.received;
        const done = marker(v, 'DONE!');
        const t0 = performance.now();
        v.type(`cat ${file}; printf '\\104ONE!\\n'\r`);
        const t1 = await done.seen;
        const bytes = v.received - start;
        flood = { bytes, mbs: bytes / 1e6 / ((t1 - t0) / 1000) };
      } finally {
        clearInterval(sampler);
      }
      // The prompt comes with the marker or just after it.
      await v.settle(300);
      // What cat wrote, with the PTY's \r before each \n: fewer bytes means the agent sent a viewer a redraw instead.
      const expected = FLOOD_BYTES + FLOOD_BYTES / 100;
      rows.push([
        `terminal output: cat of a ${FLOOD_BYTES / 1e6} MB file through a session`,
        `${flood.mbs.toFixed(1)} MB/s (${(flood.bytes / 1e6).toFixed(1)} MB received of ${(expected / 1e6).toFixed(1)} MB written${flood.bytes < expected ? ': OUTPUT SKIPPED' : ''}); agent RSS at most ${peak.toFixed(1)} MiB`,
        '≥ 50 MB/s',
      ]);

      // Ctrl-C after a second of the same flood: to the prompt's return.
      const flowing = new Promise<void>((r) => {
        const t0 = performance.now();
        v.onBytes = () => {
          if (performance.now() - t0 > 1_000) {
            v.onBytes = undefined;
            r();
          }
        };
      });
      v.type(`cat ${file}\r`);
      await flowing;
      const prompt = marker(v, 'ARDY> ');
      const c0 = performance.now();
      const sentAt = v.received;
      v.type('\x03');
      const c1 = await prompt.seen;
      rows.push([`… Ctrl-C during that flood → the prompt back`, `${ms(c1 - c0)} ms (${((v.received - sentAt) / 1024).toFixed(0)} KiB arrived after the 0x03)`, '≤ 200 ms']);
      rows.push([`… the largest WebSocket message the terminal client received`, `${(v.largest / 1024).toFixed(1)} KiB ${v.largest > 1 << 20 ? 'OVER 1 MiB' : '(none over 1 MiB)'}`, 'no message over 1 MiB']);
      v.send({ t: 'close' });
    } finally {
      v.ws.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await tempDir('bench-terminal-env');
  const env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['bench-pi'], agentLogs: 'ignore' });
  try {
    await waitOnline(env, 30_000);
    const rows = await benchTerminal(env);
    console.log('| measure | result | target |\n|---|---|---|');
    for (const [m, r, t] of rows) console.log(`| ${m} | ${r} | ${t} |`);
  } finally {
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
