// Builds the dashboard (dashboard/ → dist/dashboard, vite.config.ts) when it is missing or older
// than its sources, so `npm start`, the tests and the benchmarks always serve the current app;
// and measures its first load (the HTML and the files it loads before the first page can draw),
// gzipped, against the 100 KB budget.
import { build } from 'vite';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
export const DASHBOARD_DIST = join(ROOT, 'dist/dashboard');
const STAMP = join(DASHBOARD_DIST, '.built');
const SOURCES = [join(ROOT, 'dashboard'), join(ROOT, 'shared'), join(ROOT, 'vite.config.ts'), join(ROOT, 'package-lock.json')];

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of readdirSync(path)) m = Math.max(m, newest(join(path, e)));
  return m;
}

export function dashboardStale(): boolean {
  if (!existsSync(STAMP)) return true;
  const built = statSync(STAMP).mtimeMs;
  return SOURCES.some((s) => newest(s) > built);
}

export async function buildDashboard(): Promise<void> {
  // Always the production build: Vite takes NODE_ENV over its mode, and vitest sets it to "test".
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ configFile: join(ROOT, 'vite.config.ts'), root: join(ROOT, 'dashboard'), mode: 'production', logLevel: 'warn' });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

/** Builds the dashboard if it is missing or stale; says so through `log`. */
export async function ensureDashboard(log: (m: string) => void = () => {}): Promise<void> {
  if (!dashboardStale()) return;
  log('building the dashboard (vite build)…');
  const t = Date.now();
  await buildDashboard();
  const size = firstLoad();
  log(`dashboard built in ${((Date.now() - t) / 1000).toFixed(1)} s; first load ${(size.gzip / 1024).toFixed(1)} KB gzipped`);
}

export interface FirstLoad {
  files: string[];
  raw: number;
  gzip: number;
}

/** index.html and what it loads at once (its script, its styles and the chunks it preloads), gzipped one by one as a server sends them. */
export function firstLoad(dir = DASHBOARD_DIST): FirstLoad {
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  const files = ['/index.html', ...new Set(refs)];
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const body = readFileSync(join(dir, f));
    raw += body.length;
    gzip += gzipSync(body, { level: 9 }).length;
  }
  return { files, raw, gzip };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildDashboard();
  const s = firstLoad();
  console.log(`dashboard: first load ${s.files.length} files, ${(s.raw / 1024).toFixed(1)} KB, ${(s.gzip / 1024).toFixed(1)} KB gzipped (budget 100 KB)`);
}
