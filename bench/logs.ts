// The logs part of `npm run bench`, against a demo agent following its demo log file
// (DevEnv.logFile): 20,000 lines of ~100 bytes appended at once, timed from the write to the
// last of them being searchable (GET /api/v1/logs?q= finds them all), as lines per second; and
// what storing them cost D1: every D1 table is read before and after, and the rows added,
// removed or changed are counted, beside the same count over an idle window of the same length
// just before (heartbeats and the like write without any logs). The design stores lines in the
// device hub's own SQLite, so the rows per 1,000 lines should be the idle window's, i.e. 0.
// Run alone with `npx tsx bench/logs.ts`.
import { appendFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevEnv, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';

type Row = [string, string, string];
const LINES = Number(process.env.BENCH_LOG_LINES ?? 20_000);

/** Every row of every D1 table, as JSON strings per table. */
async function snapshot(env: DevEnv): Promise<Map<string, string[]>> {
  const db = await env.relay.mf!.getD1Database('DB');
  const tables = (await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{ name: string }>()).results;
  const out = new Map<string, string[]>();
  for (const { name } of tables) {
    const rows = (await db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).all()).results;
    out.set(name, rows.map((r) => JSON.stringify(r)));
  }
  return out;
}

/** Rows added, removed or changed between two snapshots, per table (only tables with any). */
function written(a: Map<string, string[]>, b: Map<string, string[]>): { total: number; tables: string[] } {
  let total = 0;
  const tables: string[] = [];
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const before = new Set(a.get(name) ?? []);
    const after = new Set(b.get(name) ?? []);
    // A changed row is one removed and one added: count it once.
    const added = [...after].filter((r) => !before.has(r)).length;
    const removed = [...before].filter((r) => !after.has(r)).length;
    const n = Math.max(added, removed);
    if (n) {
      total += n;
      tables.push(`${name} ${n}`);
    }
  }
  return { total, tables };
}

export async function benchLogs(env: DevEnv): Promise<Row[]> {
  const { url, apiKey, devices } = env.state;
  const deviceId = devices[0]!.id;
  const file = env.logFile(deviceId);
  const auth = { authorization: `Bearer ${apiKey}` };
  const word = `bench${randomBytes(4).toString('hex')}`;
  const total = async () => {
    const r = await fetch(`${url}/api/v1/logs?agent_id=${deviceId}&q=${word}&limit=1`, { headers: auth });
    const body = (await r.json()) as { total?: number };
    if (r.status !== 200) throw new Error(`GET /api/v1/logs: ${r.status} ${JSON.stringify(body)}`);
    return body.total ?? 0;
  };
  const lines = Array.from({ length: LINES }, (_, i) => `${new Date().toISOString()} INFO ${word} request ${i} served /api/v1/things/${i % 97} in ${i % 13} ms\n`).join('');

  const s0 = await snapshot(env);
  const t0 = performance.now();
  await appendFile(file, lines);
  let n = 0;
  while ((n = await total()) < LINES) {
    if (performance.now() - t0 > 120_000) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  const s1 = await snapshot(env);
  // The idle baseline: as long again with no lines written.
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const s2 = await snapshot(env);
  const run = written(s0, s1);
  const idle = written(s1, s2);
  return [
    [`log lines from the agent to searchable (${LINES} lines of ~100 bytes appended at once)`, n >= LINES ? `${(LINES / seconds).toFixed(0)} lines/s (${seconds.toFixed(2)} s)` : `ONLY ${n} of ${LINES} searchable after ${seconds.toFixed(0)} s`, '—'],
    [
      `… D1 rows written per 1,000 lines (every D1 table diffed; idle baseline over the same ${seconds.toFixed(1)} s)`,
      `${((run.total / LINES) * 1000).toFixed(2)} (${run.total} rows${run.tables.length ? `: ${run.tables.join(', ')}` : ''}; idle: ${idle.total}${idle.tables.length ? `: ${idle.tables.join(', ')}` : ''})`,
      '0 (lines live in the hub’s SQLite)',
    ],
  ];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await tempDir('bench-logs');
  const env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['bench-pi'], agentLogs: 'ignore', agentArgs: ['--no-journal'] });
  try {
    await waitOnline(env, 30_000);
    const rows = await benchLogs(env);
    console.log('| measure | result | target |\n|---|---|---|');
    for (const [m, r, t] of rows) console.log(`| ${m} | ${r} | ${t} |`);
  } finally {
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
