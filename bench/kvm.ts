// The KVM part of `npm run bench`, against a demo agent run with --hid-dir DIR (so a report
// "reaching the host" is its bytes appearing in DIR/hidg0):
// - a keystroke, from sending the request to its 8-byte press report being in DIR/hidg0, p50/p99,
//   over REST (POST …/keystroke) and over the live-input WebSocket (GET …/hid), one at a time,
//   and mouse moves over that WebSocket at 125 a second (how many reach the host), beside the
//   same run's ceiling for any device call: a Worker → Durable Object hop plus one
//   WebSocket message to a Bun peer and back (bench/hop-baseline.ts);
// - characters per second typing a 5,000-character mixed text (POST …/type), decoded back from
//   DIR/hidg0 by an en-US host's rules to check that none were lost;
// - the live view (GET …/screen/live) at 1280×720: frames per second, and the delay from a
//   frame's capture (its X-Capture-Time, stamped by the agent on this same machine) to its last
//   byte arriving here.
// The file is watched with fs.watch (inotify) on DIR, backed by a 1 ms poll of its size in case
// an event is coalesced; each measured keystroke waits for its release report before the next.
// Run alone with `npx tsx bench/kvm.ts`.
import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'undici';
import { startDevEnv, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';
import { decodeUs, HidFiles, jpegSize, mixedText, MjpegReader } from '../test/e2e/kvm-helpers.ts';
import { startHopBaseline } from './hop-baseline.ts';
import { load, percentile } from './load.ts';

type Row = [string, string, string];
const KEYSTROKES = Number(process.env.BENCH_KVM_KEYSTROKES ?? 500);
const WARMUP = 50;
const TYPE_CHARS = 5000;
const LIVE_MS = Number(process.env.BENCH_KVM_LIVE_MS ?? 5_000);

const ms = (n: number) => n.toFixed(2);
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99) };
};

/** Resolves when DIR/hidg0 reaches a size: woken by inotify, with a 1 ms poll behind it. */
class Growth {
  private readonly watcher: FSWatcher;
  private readonly timer: NodeJS.Timeout;
  private waiters: { size: number; resolve: (at: number) => void }[] = [];
  /** performance.now() of the last time the size was seen to change. */
  lastChange = 0;
  private lastSize: number;

  constructor(private readonly hid: HidFiles) {
    this.lastSize = hid.size('keyboard');
    // The agent makes DIR at its first report; watching needs it now.
    mkdirSync(hid.dir, { recursive: true });
    this.watcher = watch(hid.dir, () => this.check());
    this.timer = setInterval(() => this.check(), 1);
  }

  private check() {
    const size = this.hid.size('keyboard');
    const now = performance.now();
    if (size !== this.lastSize) {
      this.lastSize = size;
      this.lastChange = now;
    }
    if (!this.waiters.length) return;
    this.waiters = this.waiters.filter((w) => (size >= w.size ? (w.resolve(now), false) : true));
  }

  /** performance.now() when the file was first seen at `size` bytes or more. */
  reach(size: number, timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`DIR/hidg0 did not reach ${size} bytes in ${timeoutMs} ms (it has ${this.hid.size('keyboard')})`)), timeoutMs);
      this.waiters.push({ size, resolve: (at) => (clearTimeout(t), resolve(at)) });
      this.check();
    });
  }

  stop() {
    this.watcher.close();
    clearInterval(this.timer);
  }
}

export async function benchKvm(env: DevEnv, hidDir: string): Promise<Row[]> {
  const { url, apiKey, devices } = env.state;
  const dev = `${url}/api/v1/devices/${devices[0]!.id}`;
  const auth = { authorization: `Bearer ${apiKey}` };
  const hid = new HidFiles(hidDir);
  const rows: Row[] = [];

  // The same run's ceiling: the hop and one WebSocket message to a Bun peer and back, sequential.
  const hop = await startHopBaseline();
  let ceiling: { p50: number; p99: number };
  try {
    await load(`${hop.url}/ws`, { concurrency: 1, durationMs: 60_000, maxRequests: 200 });
    ceiling = await load(`${hop.url}/ws`, { concurrency: 1, durationMs: 60_000, maxRequests: 2000 });
  } finally {
    await hop.stop();
  }

  const growth = new Growth(hid);
  try {
    // REST: POST …/keystroke, timed to the press report and to the answer.
    const toReport: number[] = [];
    const toAnswer: number[] = [];
    for (let i = 0; i < WARMUP + KEYSTROKES; i++) {
      const from = hid.size('keyboard');
      const t0 = performance.now();
      const answered = fetch(`${dev}/keystroke`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"code":"KeyA"}' }).then(async (r) => {
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`keystroke: ${r.status}`);
        return performance.now();
      });
      const reported = await growth.reach(from + 8);
      const done = await answered;
      await growth.reach(from + 16);
      if (i >= WARMUP) {
        toReport.push(reported - t0);
        toAnswer.push(done - t0);
      }
    }
    const rest = stats(toReport);
    const restAnswer = stats(toAnswer);
    rows.push([
      `keystroke over REST → press report in hidg0 (${KEYSTROKES} sequential)`,
      `p50 ${ms(rest.p50)} ms, p99 ${ms(rest.p99)} ms (${(rest.p50 / ceiling.p50).toFixed(1)}× / ${(rest.p99 / ceiling.p99).toFixed(1)}× the ceiling)`,
      'p50 ≤ 5 ms, p99 ≤ 20 ms',
    ]);
    rows.push([`… the same keystroke's 200 answer`, `p50 ${ms(restAnswer.p50)} ms, p99 ${ms(restAnswer.p99)} ms`, '—']);

    // WebSocket: {t: "keystroke"} on the live-input socket, timed to the press report.
    const ws = new WebSocket(`${dev.replace(/^http/, 'ws')}/hid`, { headers: auth });
    await new Promise<void>((res, rej) => {
      ws.onopen = () => res();
      ws.onerror = () => rej(new Error('the live-input WebSocket did not open'));
    });
    const overWs: number[] = [];
    let mouseRow: Row | null = null;
    try {
      for (let i = 0; i < WARMUP + KEYSTROKES; i++) {
        const from = hid.size('keyboard');
        const t0 = performance.now();
        ws.send('{"t":"keystroke","code":"KeyB"}');
        const reported = await growth.reach(from + 8);
        await growth.reach(from + 16);
        if (i >= WARMUP) overWs.push(reported - t0);
      }
      // Mouse moves from a viewer at 125 a second for 3 s: how many reach the host, and that the last one does.
      const mFrom = hid.size('mouse');
      let sent = 0;
      const m0 = performance.now();
      await new Promise<void>((done) => {
        const t = setInterval(() => {
          sent++;
          ws.send(JSON.stringify({ t: 'mouse', x: (sent % 1000) / 1000, y: 0.5, buttons: 0 }));
          if (performance.now() - m0 >= 3_000) {
            clearInterval(t);
            done();
          }
        }, 8);
      });
      const lastX = Math.floor(((sent % 1000) / 1000) * 32767);
      const until = performance.now() + 10_000;
      let moves = hid.reports('mouse', mFrom);
      while (performance.now() < until && (moves.at(-1)?.[1] ?? -1) + ((moves.at(-1)?.[2] ?? 0) << 8) !== lastX) {
        await new Promise((r) => setTimeout(r, 10));
        moves = hid.reports('mouse', mFrom);
      }
      const lastWritten = (moves.at(-1)?.[1] ?? 0) + ((moves.at(-1)?.[2] ?? 0) << 8);
      mouseRow = [
        `mouse moves over the live-input WebSocket (${sent} sent at 125/s for 3 s)`,
        `${(moves.length / 3).toFixed(0)} reports/s written, ${lastWritten === lastX ? 'the last position arrived' : `LAST POSITION MISSING (${lastWritten}, not ${lastX})`}`,
        '≥ 60 moves/s, the latest wins',
      ];
    } finally {
      ws.close();
    }
    const wsStats = stats(overWs);
    rows.push([
      `keystroke over the live-input WebSocket → press report (${KEYSTROKES} sequential)`,
      `p50 ${ms(wsStats.p50)} ms, p99 ${ms(wsStats.p99)} ms (${(wsStats.p50 / ceiling.p50).toFixed(1)}× / ${(wsStats.p99 / ceiling.p99).toFixed(1)}× the ceiling)`,
      'p50 ≤ 5 ms, p99 ≤ 20 ms',
    ]);
    rows.push(mouseRow);
    rows.push([`Worker → Durable Object hop + one WebSocket message to a Bun peer and back (ceiling of a device round trip, 2000 sequential; a press report is one way)`, `p50 ${ms(ceiling.p50)} ms, p99 ${ms(ceiling.p99)} ms`, '—']);

    // Typing: the default pace and as fast as allowed (interval_ms 0), each decoded back.
    for (const interval of [undefined, 0]) {
      const text = mixedText(TYPE_CHARS, 5 + (interval ?? 1));
      const from = hid.size('keyboard');
      const t0 = performance.now();
      const started = await fetch(`${dev}/type`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ text, layout: 'en-US', interval_ms: interval }) });
      const job = (await started.json()) as { id: string; state: string };
      if (started.status !== 202) throw new Error(`type: ${started.status} ${JSON.stringify(job)}`);
      let state = job;
      while (state.state === 'typing') {
        await new Promise((r) => setTimeout(r, 20));
        state = (await (await fetch(`${dev}/type/${job.id}`, { headers: auth })).json()) as typeof job;
      }
      const seconds = (growth.lastChange - t0) / 1000;
      const typed = decodeUs(hid.reports('keyboard', from));
      const lost = typed === text ? 'none lost' : `MISMATCH: ${typed.length} of ${text.length} characters decoded, first difference at ${[...text].findIndex((c, i) => typed[i] !== c)}`;
      rows.push([`typing ${TYPE_CHARS} mixed en-US characters (${interval === undefined ? 'default pace' : 'interval_ms 0'}; job ${state.state})`, `${(TYPE_CHARS / seconds).toFixed(0)} chars/s, ${lost}`, '≥ 500 chars/s, none lost']);
    }
  } finally {
    growth.stop();
  }

  // The live view at 1280×720: the most frames it sends (fps=30) and its default (15).
  for (const fps of [30, 15]) {
    const res = await fetch(`${dev}/screen/live?fps=${fps}`, { headers: auth });
    if (res.status !== 200) {
      rows.push([`live view (MJPEG), fps=${fps} asked`, `not measured: ${res.status} ${(await res.text()).slice(0, 120)}`, '≥ 15 fps, capture → client p50 ≤ 100 ms']);
      continue;
    }
    const reader = new MjpegReader(res);
    const delays: number[] = [];
    let frames = 0;
    let size = '';
    let bytes = 0;
    try {
      const first = await reader.next();
      const { width, height } = jpegSize(first.bytes);
      size = `${width}×${height}`;
      const t0 = performance.now();
      while (performance.now() - t0 < LIVE_MS) {
        const p = await reader.next();
        frames++;
        bytes += p.bytes.length;
        delays.push(p.arrivedAt - Number(p.headers['x-capture-time']));
      }
      const secs = (performance.now() - t0) / 1000;
      const d = stats(delays);
      rows.push([
        `live view (MJPEG) at ${size}, fps=${fps} asked, ${LIVE_MS / 1000} s`,
        `${(frames / secs).toFixed(1)} fps (${(bytes / frames / 1024).toFixed(0)} KiB/frame); capture → client p50 ${ms(d.p50)} ms, p99 ${ms(d.p99)} ms`,
        '≥ 15 fps, capture → client p50 ≤ 100 ms',
      ]);
    } finally {
      await reader.cancel();
    }
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await tempDir('bench-kvm');
  const hidDir = join(dir, 'hid');
  const env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['bench-pi'], agentLogs: 'ignore', agentArgs: ['--hid-dir', hidDir] });
  try {
    await waitOnline(env, 30_000);
    const rows = await benchKvm(env, hidDir);
    console.log('| measure | result | target |\n|---|---|---|');
    for (const [m, r, t] of rows) console.log(`| ${m} | ${r} | ${t} |`);
  } finally {
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
