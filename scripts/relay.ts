// Runs the relay locally in workerd through Miniflare's API (no `wrangler dev` proxies in the
// way): bundles worker/index.ts with esbuild, takes bindings from wrangler.toml, applies D1
// migrations the way `wrangler d1 migrations apply --local` records them, and persists state
// under the given directory. Used by `npm start`, the end-to-end tests and the benchmarks.
// As a CLI: `tsx scripts/relay.ts [--port 8787] [--state .pirelay/state] [--var KEY=VALUE ...]`.
import { build } from 'esbuild';
import { Miniflare, type WorkerOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDashboard } from './dashboard.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');

export interface RelayOptions {
  port?: number;
  host?: string;
  /** Directory for D1 and Durable Object state; reused across restarts. */
  stateDir: string;
  /** Extra or overriding vars and secrets (SESSION_SECRET, BOOTSTRAP_TOKEN, HEARTBEAT_INTERVAL_MS …). */
  vars?: Record<string, string>;
  log?: boolean;
  /** Leave the database at the migrations before this file name (test/e2e/migration.test.ts). */
  migrateBefore?: string;
  /**
   * Serve the port straight from the Worker (default), not through Miniflare's entry worker, which
   * runs in the same single-threaded workerd and costs as much as a simple route per request.
   * PIRELAY_MINIFLARE_ENTRY=1 turns it back on.
   */
  direct?: boolean;
  /** Open the V8 inspector on this port (for CPU profiles of the relay). */
  inspectorPort?: number;
}

export interface Relay {
  url: string;
  /** The Miniflare instance (not there when the relay runs under `wrangler dev`). */
  mf?: Miniflare;
  stop(): Promise<void>;
}

export async function bundleWorker(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const outfile = join(outDir, 'index.js');
  await build({
    entryPoints: [join(ROOT, 'worker/index.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * Applies migrations/NNNN_*.sql not yet recorded in d1_migrations (wrangler's own table); with
 * `before`, only those whose name sorts before it (how the upgrade test makes an older database).
 */
export async function applyMigrations(mf: Miniflare, before?: string): Promise<string[]> {
  const db = await mf.getD1Database('DB');
  await db.exec('CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)');
  const done = new Set((await db.prepare('SELECT name FROM d1_migrations').all<{ name: string }>()).results.map((r) => r.name));
  const dir = join(ROOT, 'migrations');
  const files = (await readdir(dir)).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort();
  const applied: string[] = [];
  for (const f of files) {
    if (done.has(f) || (before !== undefined && f >= before)) continue;
    const sql = await readFile(join(dir, f), 'utf8');
    const statements = sql
      .split(/-->\s*statement-breakpoint|;\s*\n/)
      .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
      .filter(Boolean);
    await db.batch([...statements.map((s) => db.prepare(s)), db.prepare('INSERT INTO d1_migrations (name) VALUES (?1)').bind(f)]);
    applied.push(f);
  }
  return applied;
}

/** Whether a listen address is reachable from this machine only. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * How a relay that is not behind Cloudflare's edge learns client addresses (worker/client-ip.ts):
 * a CF-Connecting-IP is then the client's own claim, not to be trusted, and workerd reports no
 * address, so on loopback we say what it can only be: this machine. Used by the local relay,
 * `wrangler dev` (scripts/wrangler-dev.ts) and `npm run dev`'s .dev.vars.
 */
export function localClientVars(host: string): Record<string, string> {
  return { TRUST_CF_CONNECTING_IP: 'false', ...(isLoopback(host) ? { LOCAL_CLIENT_IP: host === '::1' ? '::1' : '127.0.0.1' } : {}) };
}

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const stateDir = resolve(opts.stateDir);
  // The Worker serves the dashboard from dist/dashboard (wrangler.toml [assets]).
  await ensureDashboard(opts.log === false ? undefined : (m) => console.log(`[pirelay] ${m}`));
  const script = await bundleWorker(join(stateDir, '..', 'build'));
  const fromToml = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'));
  const w = fromToml.workerOptions as WorkerOptions & { bindings?: Record<string, unknown> };
  const host = opts.host ?? '127.0.0.1';
  const direct = opts.direct ?? process.env.PIRELAY_MINIFLARE_ENTRY !== '1';
  const relayWorker = {
    name: 'pirelay',
    modules: true,
    scriptPath: script,
    modulesRoot: dirname(script),
    compatibilityDate: w.compatibilityDate,
    compatibilityFlags: w.compatibilityFlags,
    d1Databases: w.d1Databases,
    durableObjects: w.durableObjects,
    ...(w.assets ? { assets: w.assets } : {}),
    bindings: { ...(w.bindings ?? {}), ...localClientVars(host), ...(opts.vars ?? {}) },
  };
  // Visitors reach the Worker straight, as on Cloudflare. Miniflare's own entry (a second worker
  // in front that costs as much CPU as a simple route) still serves on a spare port. The socket is
  // declared on a worker of its own that names ours: a socket of a worker with assets would go
  // through Miniflare's asset router and an RPC proxy first (two more hops per request, and a
  // 500 for a Host no URL can be made of), where on Cloudflare the Worker runs first
  // (run_worker_first) and calls the assets itself.
  const socketWorker = {
    name: 'pirelay-socket',
    modules: true,
    script: 'export default { fetch: () => new Response(null, { status: 404 }) };',
    compatibilityDate: w.compatibilityDate,
    unsafeDirectSockets: [{ host, port: opts.port ?? 8787, serviceName: 'pirelay' }],
  };
  const mf = new Miniflare({
    workers: direct ? [relayWorker, socketWorker] : [relayWorker],
    host,
    port: direct ? 0 : (opts.port ?? 8787),
    defaultPersistRoot: stateDir,
    d1Persist: true,
    durableObjectsPersist: true,
    unsafeStickyBlobs: true,
    ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
  } as ConstructorParameters<typeof Miniflare>[0]);
  const entry = (await mf.ready).toString();
  const url = (direct ? (await mf.unsafeGetDirectURL('pirelay-socket')).toString() : entry).replace(/\/$/, '');
  await applyMigrations(mf, opts.migrateBefore);
  return { url, mf, stop: () => mf.dispose() };
}

function parseArgs(argv: string[]) {
  const out: { port: number; state: string; vars: Record<string, string> } = { port: Number(process.env.PORT ?? 8787), state: '.pirelay/state', vars: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--state') out.state = argv[++i]!;
    else if (a === '--var') {
      const [k, ...v] = argv[++i]!.split('=');
      out.vars[k!] = v.join('=');
    }
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  const relay = await startRelay({ port: args.port, stateDir: args.state, vars: args.vars });
  console.log(`relay listening on ${relay.url}`);
  const stop = async () => {
    await relay.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
