// The dashboard part of `npm run bench`: the first load's gzipped size against its 100 KB budget,
// and the time from navigating to / until the fleet list shows the bench device (its link to
// /device/<id>), in Debian's Chromium, signed in already, median and p90 of 10 after a warm-up —
// beside two baselines from the same run and browser: loading a bare static file from the relay,
// and GET /api/v1/devices from the page. Run alone with `npx tsx bench/dashboard.ts`.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { startDevEnv, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { ensureDashboard, firstLoad } from '../scripts/dashboard.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';
import { percentile } from './load.ts';

type Row = [string, string, string];
const CHROMIUM = '/usr/bin/chromium';
const RUNS = 10;
/** How long one navigation may take to show the device before the list counts as not rendered. */
const RENDER_LIMIT_MS = 15_000;
const BUDGET_KB = 100;

const kb = (n: number) => (n / 1024).toFixed(1);
const ms = (n: number) => n.toFixed(0);
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90) };
};

export async function benchDashboard(env: DevEnv): Promise<Row[]> {
  await ensureDashboard();
  const size = firstLoad();
  const rows: Row[] = [
    [`dashboard first load (${size.files.length} files, gzipped)`, `${kb(size.gzip)} KB (${kb(size.raw)} KB raw)`, `≤ ${BUDGET_KB} KB`],
  ];
  if (!existsSync(CHROMIUM)) {
    rows.push(['fleet list rendered in Chromium', `skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`, '—']);
    return rows;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    rows.push(...(await fleetRender(browser, env)));
  } finally {
    await browser.close();
  }
  return rows;
}

async function signedIn(browser: Browser, env: DevEnv): Promise<BrowserContext> {
  const { url, adminUser, adminPassword } = env.state;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(url + '/');
  await page.getByLabel('User name').fill(adminUser);
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await page.close();
  return context;
}

async function fleetRender(browser: Browser, env: DevEnv): Promise<Row[]> {
  const { url, devices } = env.state;
  const selector = `a[href="/device/${devices[0]!.id}"]`;
  const context = await signedIn(browser, env);
  // Stamps, in the page's own clock (0 = the navigation's start), the first frame after the
  // device's link is in the document and laid out. (A string: tsx would wrap a function's inner
  // named functions in a helper that does not exist in the page.)
  await context.addInitScript(`{
    const sel = ${JSON.stringify(selector)};
    const observer = new MutationObserver(() => {
      const a = document.querySelector(sel);
      if (!a || a.getBoundingClientRect().height === 0) return;
      observer.disconnect();
      requestAnimationFrame(() => { window.__fleetRendered = performance.now(); });
    });
    observer.observe(document, { childList: true, subtree: true });
  }`);

  const fleet: number[] = [];
  const statics: number[] = [];
  const fetches: number[] = [];
  try {
    // One warm-up of each (the HTTP cache, the relay's isolates), then RUNS measured.
    for (let i = 0; i <= RUNS; i++) {
      const page = await context.newPage();
      await page.goto(url + '/');
      const rendered = await page
        .waitForFunction(() => (window as unknown as { __fleetRendered?: number }).__fleetRendered, null, { timeout: RENDER_LIMIT_MS })
        .then((h) => h.jsonValue() as Promise<number>)
        .catch(() => null);
      if (rendered === null) {
        const stub = await page.getByText('This page is being built.').count();
        await page.close();
        return [
          [
            `navigate to / → fleet list with the device (Chromium, signed in)`,
            stub ? 'fleet list not rendered (page is a stub)' : `fleet list not rendered: no ${selector} within ${RENDER_LIMIT_MS / 1000} s`,
            '—',
          ],
        ];
      }
      if (i > 0) fleet.push(rendered);
      // Baseline 2: the fleet's own API call, from this page with its cookie.
      const fetched = await page.evaluate(async () => {
        const t = performance.now();
        const r = await fetch('/api/v1/devices');
        await r.json();
        if (!r.ok) throw new Error(`GET /api/v1/devices: ${r.status}`);
        return performance.now() - t;
      });
      if (i > 0) fetches.push(fetched);
      await page.close();

      // Baseline 1: a bare static file from the same relay (through the same Worker and assets).
      const bare = await context.newPage();
      await bare.goto(url + '/favicon.svg', { waitUntil: 'load' });
      const loaded = await bare.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).loadEventEnd);
      if (i > 0) statics.push(loaded);
      await bare.close();
    }
  } finally {
    await context.close();
  }
  const f = stats(fleet);
  const s = stats(statics);
  const a = stats(fetches);
  return [
    [`navigate to / → fleet list with the device (Chromium, signed in, ${RUNS} runs)`, `p50 ${ms(f.p50)} ms, p90 ${ms(f.p90)} ms (${(f.p50 / s.p50).toFixed(1)}× the bare static file)`, '—'],
    [`navigate to a bare static file, /favicon.svg (baseline)`, `p50 ${ms(s.p50)} ms, p90 ${ms(s.p90)} ms`, '—'],
    [`GET /api/v1/devices from the page (baseline)`, `p50 ${ms(a.p50)} ms, p90 ${ms(a.p90)} ms (fleet list ${(f.p50 / a.p50).toFixed(1)}× this)`, '—'],
  ];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await tempDir('bench-dashboard');
  const env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['bench-pi'], agentLogs: 'ignore' });
  try {
    await waitOnline(env, 30_000);
    for (const [m, r, t] of await benchDashboard(env)) console.log(`| ${m} | ${r} | ${t} |`);
  } finally {
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
