// The metrics part of `npm run bench`, against the bench's demo agent:
// - the agent's own cost: CPU (% of one core, from /proc/<pid>/stat utime+stime over the window)
//   and RSS, first idle (nobody watches: it samples at the relay's refresh interval), then at 1 s
//   (one `metrics` watcher of the device held open, which is what makes a device sample live);
// - delivery delay of `event: metrics` to 1 (the same-run baseline), 100 and 1,000 SSE watchers of
//   the device (GET /api/v1/stream?agent_id=…&events=metrics): the arrival here minus the sample's
//   own timestamp (same machine, same clock);
// - D1 rows written per device per day at the default interval: SQLite triggers on every D1 table
//   count each INSERT, UPDATE and DELETE into a bench-only table (a diff of the tables, as the logs
//   bench does, misses an UPDATE that leaves its row as it was, such as a last-seen refresh within
//   the same second), over the idle window, extrapolated to a day;
// - the soak (BENCH_SOAK_MINUTES, or `npm run bench:soak`, 60 minutes by default): the agent at 1 s
//   for that long, RSS and CPU read every 10 s and printed as they come, then first/last/max RSS
//   and the slope.
// Run alone with `npx tsx bench/metrics.ts` (PIRELAY_AGENT_BIN runs a compiled agent instead).
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';
import { openSse, type SseReader } from '../test/e2e/sse.ts';
import { cpuTicks, rss } from './proc.ts';

type Row = [string, string, string];
const WINDOW_MS = Number(process.env.BENCH_METRICS_WINDOW_MS ?? 60_000);
/** How long the watcher counts listen for samples (one a second). */
const DELIVERY_MS = Number(process.env.BENCH_METRICS_DELIVERY_MS ?? 15_000);
/** Readers opened at once while connecting (the relay authenticates and dials the hubs for each). */
const OPEN_WIDTH = 50;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const HZ = 100;
const DAY_MS = 86_400_000;
const COUNTER = 'bench_d1_writes';

const fmt = (n: number, d = 1) => n.toFixed(d);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The agent process of the env's first device. */
const agentPid = (env: DevEnv) => env.agents.get(env.state.devices[0]!.id)!.pid!;

/** CPU % of one core and RSS (last, max) of a process over `ms`, RSS read every second. */
export async function costOver(pid: number, ms: number): Promise<{ cpu: number; rss: ReturnType<typeof rss>; maxRss: number }> {
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  let maxRss = 0;
  while (performance.now() - t0 < ms) {
    await sleep(Math.min(1_000, ms - (performance.now() - t0)));
    maxRss = Math.max(maxRss, rss(pid).total);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { cpu: ((cpuTicks(pid) - c0) / HZ / seconds) * 100, rss: rss(pid), maxRss };
}

/** N metrics watchers of one device, opened OPEN_WIDTH at a time; throws if any is refused. */
async function openWatchers(env: DevEnv, n: number): Promise<SseReader[]> {
  const { url, apiKey, devices } = env.state;
  const readers: SseReader[] = [];
  try {
    for (let i = 0; i < n; i += OPEN_WIDTH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(OPEN_WIDTH, n - i) }, () => openSse(`${url}/api/v1/stream?agent_id=${devices[0]!.id}&events=metrics`, { authorization: `Bearer ${apiKey}` })),
      );
      readers.push(...batch);
    }
    const refused = readers.filter((r) => r.status !== 200);
    if (refused.length) throw new Error(`stream: ${refused.length} of ${n} watchers refused (status ${refused[0]!.status}: ${await refused[0]!.text()})`);
    await waitFor(`${n} watchers connected`, async () => readers.every((r) => r.retry !== null), 60_000);
    return readers;
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
}

/** Delays (ms) of every metrics event every watcher parses over `ms`, from the sample's timestamp. */
async function deliveries(readers: SseReader[], ms: number): Promise<{ delays: number[]; samples: Set<string> }> {
  const delays: number[] = [];
  const samples = new Set<string>();
  for (const r of readers) {
    r.onMessage = (m) => {
      if (m.event !== 'metrics') return;
      const { timestamp } = JSON.parse(m.data) as { timestamp: string };
      samples.add(timestamp);
      delays.push(m.at - Date.parse(timestamp));
    };
  }
  await sleep(ms);
  for (const r of readers) r.onMessage = undefined;
  delays.sort((a, b) => a - b);
  return { delays, samples };
}

/** Installs the write counter: one trigger per D1 table and operation, each adding to COUNTER. */
export async function countD1Writes(env: DevEnv): Promise<{ read(): Promise<Map<string, number>>; remove(): Promise<void> }> {
  const db = await env.relay.mf!.getD1Database('DB');
  await db.prepare(`CREATE TABLE IF NOT EXISTS ${COUNTER} (tbl TEXT NOT NULL, op TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tbl, op))`).run();
  const tables = (await db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%' AND name <> '${COUNTER}'`).all<{ name: string }>()).results.map((r) => r.name);
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const triggers: string[] = [];
  for (const t of tables) {
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) {
      const name = `bench_count_${t}_${op}`.replace(/\W/g, '_');
      triggers.push(name);
      await db
        .prepare(`CREATE TRIGGER IF NOT EXISTS ${q(name)} AFTER ${op} ON ${q(t)} FOR EACH ROW BEGIN INSERT INTO ${COUNTER} (tbl, op, n) VALUES ('${t.replace(/'/g, "''")}', '${op}', 1) ON CONFLICT (tbl, op) DO UPDATE SET n = n + 1; END`)
        .run();
    }
  }
  return {
    async read() {
      const rows = (await db.prepare(`SELECT tbl, op, n FROM ${COUNTER}`).all<{ tbl: string; op: string; n: number }>()).results;
      return new Map(rows.map((r) => [`${r.tbl} ${r.op.toLowerCase()}`, r.n]));
    },
    async remove() {
      for (const name of triggers) await db.prepare(`DROP TRIGGER IF EXISTS ${q(name)}`).run();
      await db.prepare(`DROP TABLE IF EXISTS ${COUNTER}`).run();
    },
  };
}

/** Tables the callers' own use writes (an API key's last use, a session): theirs, not the device's. */
const CALLER_TABLES = new Set(['api_keys', 'sessions']);

const diff = (a: Map<string, number>, b: Map<string, number>) => {
  const out = new Map<string, number>();
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0) out.set(k, v - (a.get(k) ?? 0));
  return out;
};

export async function benchMetrics(env: DevEnv): Promise<Row[]> {
  const rows: Row[] = [];
  const pid = agentPid(env);
  const d1 = await countD1Writes(env);
  try {
    // Idle: nobody watches, so the agent samples at the refresh interval; D1 writes over the same window.
    await sleep(3_000);
    const w0 = await d1.read();
    const t0 = Date.now();
    const idle = await costOver(pid, WINDOW_MS);
    const written = diff(w0, await d1.read());
    const windowMs = Date.now() - t0;
    const total = [...written.values()].reduce((a, b) => a + b, 0);
    const perDay = (total / windowMs) * DAY_MS;
    rows.push([`agent idle (nobody watching: the refresh interval), over ${fmt(windowMs / 1000, 0)} s`, `CPU ${fmt(idle.cpu, 2)} % of a core; RSS ${fmt(idle.rss.total)} MiB (${fmt(idle.rss.anon)} anon, ${fmt(idle.rss.file)} file), max ${fmt(idle.maxRss)}`, '≤ 0.3 %, ≤ 40 MiB']);
    rows.push([
      `D1 rows written per device per day at the default interval (triggers count every INSERT/UPDATE/DELETE over ${fmt(windowMs / 1000, 0)} s, × a day)`,
      `${fmt(perDay, 0)} (${total} in the window${written.size ? `: ${[...written].map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}; known: last-seen refresh once a minute = 1,440/day)`,
      '≤ 2,000',
    ]);

    // At 1 s: one watcher held open; its deliveries are the baseline of the counts below. Numbers
    // are reported, never asserted: a part that fails says so in its row, and the rest still runs.
    const w1 = await d1.read();
    const t1 = Date.now();
    rows.push(...(await live(env, pid).catch((e): Row[] => [['agent at a 1 s interval; metrics watchers', `FAILED: ${e instanceof Error ? e.message : String(e)}`, '—']])));
    // The same count while someone watched (1 s samples, up to 1,000 watchers): still no write per sample.
    const watched = diff(w1, await d1.read());
    const watchedMs = Date.now() - t1;
    const device = [...watched].filter(([k]) => !CALLER_TABLES.has(k.split(' ')[0]!));
    const callers = [...watched].filter(([k]) => CALLER_TABLES.has(k.split(' ')[0]!));
    const watchedTotal = device.reduce((a, [, v]) => a + v, 0);
    const list = (xs: [string, number][]) => xs.map(([k, v]) => `${k} ${v}`).join(', ');
    rows.push([
      `… the same while watched live (1 s samples, up to 1,000 watchers), over ${fmt(watchedMs / 1000, 0)} s, × a day`,
      `${fmt((watchedTotal / watchedMs) * DAY_MS, 0)} (${watchedTotal} in the window${device.length ? `: ${list(device)}` : ''}${callers.length ? `; besides, the watchers' own key and sessions: ${list(callers)}` : ''})`,
      '≤ 2,000',
    ]);
  } finally {
    await d1.remove();
  }
  return rows;
}

async function live(env: DevEnv, pid: number): Promise<Row[]> {
  const rows: Row[] = [];
  const [one] = await openWatchers(env, 1);
  try {
    await waitFor('the first live sample', async () => one!.messages.some((m) => m.event === 'metrics'), 30_000);
    const t1 = Date.now();
    const seen = one!.messages.filter((m) => m.event === 'metrics').length;
    const cost = await costOver(pid, WINDOW_MS);
    const samples = one!.messages.filter((m) => m.event === 'metrics').length - seen;
    rows.push([
      `agent at a 1 s interval (one metrics watcher), over ${fmt((Date.now() - t1) / 1000, 0)} s`,
      `CPU ${fmt(cost.cpu, 2)} % of a core; RSS ${fmt(cost.rss.total)} MiB (${fmt(cost.rss.anon)} anon, ${fmt(cost.rss.file)} file), max ${fmt(cost.maxRss)}; ${samples} samples`,
      '≤ 0.3 %, ≤ 40 MiB',
    ]);
    for (const n of [1, 100, 1000]) {
      const readers = n === 1 ? [one!] : await openWatchers(env, n - 1);
      try {
        const all = n === 1 ? readers : [one!, ...readers];
        const { delays, samples: distinct } = await deliveries(all, DELIVERY_MS);
        const dropped = all.filter((r) => r.ended).length;
        rows.push([
          `metrics sample to ${n} SSE watcher${n > 1 ? 's' : ''} of one device at 1 sample/s${n === 1 ? ' (baseline)' : ''} (${delays.length} deliveries of ${distinct.size} samples)`,
          delays.length ? `p50 ${fmt(percentile(delays, 50), 0)} ms, p99 ${fmt(percentile(delays, 99), 0)} ms, max ${fmt(delays.at(-1)!, 0)} ms${dropped ? `; ${dropped} DROPPED` : ''}` : 'NO SAMPLES ARRIVED',
          n === 1000 ? 'p99 ≤ 250 ms' : '—',
        ]);
      } finally {
        if (n > 1) for (const r of readers) r.close();
      }
    }
  } finally {
    one!.close();
  }
  return rows;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den ? num / den : 0;
}

/** The agent at 1 s for `minutes`; a line every 10 s on `say`, and the summary rows. */
export async function benchSoak(env: DevEnv, minutes: number, say: (line: string) => void = (l) => console.error(l)): Promise<Row[]> {
  const pid = agentPid(env);
  const [watcher] = await openWatchers(env, 1);
  try {
    await waitFor('the first live sample', async () => watcher!.messages.some((m) => m.event === 'metrics'), 30_000);
    const t0 = performance.now();
    const c0 = cpuTicks(pid);
    const at: number[] = [];
    const mib: number[] = [];
    let lastTicks = c0;
    let lastT = t0;
    const samples0 = watcher!.messages.length;
    say(`soak: agent pid ${pid} at 1 s for ${minutes} min; every 10 s: minutes, RSS MiB (anon, file), CPU % of a core over the last 10 s, samples seen`);
    while (performance.now() - t0 < minutes * 60_000) {
      await sleep(10_000);
      const now = performance.now();
      const r = rss(pid);
      if (!r.total) throw new Error('soak: the agent is gone');
      const ticks = cpuTicks(pid);
      at.push((now - t0) / 60_000);
      mib.push(r.total);
      say(`soak ${fmt(at.at(-1)!, 2)} min: RSS ${fmt(r.total)} (${fmt(r.anon)}, ${fmt(r.file)}), CPU ${fmt(((ticks - lastTicks) / HZ / ((now - lastT) / 1000)) * 100, 2)} %, samples ${watcher!.messages.length - samples0}`);
      lastTicks = ticks;
      lastT = now;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = ((cpuTicks(pid) - c0) / HZ / seconds) * 100;
    // The slope after the first 10 minutes, once start-up and the first GCs are behind it.
    const from = at.findIndex((m) => m >= Math.min(10, minutes / 2));
    const perHour = slope(at.slice(from), mib.slice(from)) * 60;
    const samples = watcher!.messages.filter((m) => m.event === 'metrics').length;
    if (watcher!.ended) throw new Error('soak: the watcher was dropped');
    return [
      [`soak: agent at 1 s for ${fmt(seconds / 60, 0)} min (RSS every 10 s)`, `RSS first ${fmt(mib[0]!)} MiB, last ${fmt(mib.at(-1)!)}, max ${fmt(Math.max(...mib))}; slope ${perHour >= 0 ? '+' : ''}${fmt(perHour, 2)} MiB/h (after minute ${fmt(at[from] ?? 0, 0)}); CPU ${fmt(cpu, 2)} % of a core; ${samples} samples`, 'flat, ≤ 40 MiB, ≤ 0.3 %'],
    ];
  } finally {
    watcher!.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const soakOnly = process.argv.includes('--soak');
  const minutes = Number(process.env.BENCH_SOAK_MINUTES ?? 60);
  const dir = await tempDir('bench-metrics');
  const env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['bench-pi'], agentLogs: 'ignore' });
  try {
    await waitOnline(env, 30_000);
    const rows = soakOnly ? await benchSoak(env, minutes) : await benchMetrics(env);
    console.log('| measure | result | target |\n|---|---|---|');
    for (const [m, r, t] of rows) console.log(`| ${m} | ${r} | ${t} |`);
  } finally {
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
