// Shared pieces of the browser tests: a local relay with a demo device (as `npm start` makes it),
// Debian's Chromium through playwright-core, signing in through the real sign-in form, an axe-core
// scan run in the page, a record of every request that left for another host, and screenshots
// under .pirelay/test-results/screenshots (kept by CI with the test results).
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { ROOT, startDevEnv, waitOnline, type DevEnv, type DevEnvOptions } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir, type Called } from '../e2e/harness.ts';

export const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
/** describe() that runs where Chromium is, and always in CI (whose .ci/run installs it). */
export const describeBrowser = describe.skipIf(!haveChromium && !process.env.CI);

export const SCREENSHOT_DIR = join(ROOT, '.pirelay/test-results/screenshots');

export interface Dashboard {
  env: DevEnv;
  browser: Browser;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** The demo device's id. */
  deviceId: string;
  /** Calls the API with the admin's API key. */
  api(path: string, init?: RequestInit & { json?: unknown; key?: string }): Promise<Called>;
  close(): Promise<void>;
}

export async function startDashboard(opts: Partial<DevEnvOptions> & { prefix?: string } = {}): Promise<Dashboard> {
  const port = await freePort();
  const env = await startDevEnv({ dir: await tempDir(opts.prefix ?? 'dashboard'), port, demoDevices: ['demo-pi'], agentLogs: 'ignore', ...opts });
  await waitOnline(env);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const origin = env.state.url;
  return {
    env,
    browser,
    origin,
    deviceId: env.state.devices[0]!.id,
    api: (path, init = {}) => http(origin + path, { key: env.state.apiKey, ...init }),
    close: async () => {
      await browser.close().catch(() => {});
      await env.stop();
    },
  };
}

export interface OpenedPage {
  page: Page;
  context: BrowserContext;
  /** Every request the page made to a host other than the relay's (must stay empty). */
  foreign: string[];
  /** Uncaught errors and console errors in the page. */
  errors: string[];
}

export async function openPage(d: Dashboard, opts: { width?: number; height?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<OpenedPage> {
  const context = await d.browser.newContext({
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 },
    colorScheme: opts.colorScheme ?? 'light',
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const page = await context.newPage();
  const host = new URL(d.origin).host;
  const foreign: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if ((u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:') && u.host !== host) foreign.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every 4xx answer as a console error: a 401 from /auth/me is how the app learns
    // nobody is signed in, and a page that shows an API refusal (403, 404, 422) has handled it.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return { page, context, foreign, errors };
}

/** Signs in through the sign-in form, as a person would; resolves when the signed-in frame shows. */
export async function signIn(page: Page, origin: string, username: string, password: string, path = '/'): Promise<void> {
  await page.goto(origin + path);
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

export const signInAdmin = (page: Page, d: Dashboard, path = '/') => signIn(page, d.origin, d.env.state.adminUser, d.env.state.adminPassword, path);

let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  nodes: string[];
}

/** axe-core run in the page (evaluated, so the page's CSP does not stand in its way); serious and critical violations. */
export async function axeScan(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Fails with the violations listed, so a failure says what to fix. */
export async function expectAccessible(page: Page, where: string) {
  const v = await axeScan(page);
  expect(v, `${where}: ${JSON.stringify(v, null, 1)}`).toEqual([]);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Makes a user (with the admin's key) and returns their credentials. */
export async function createUser(d: Dashboard, username: string, roles: string[], password = 'correct-horse-battery-9'): Promise<{ id: string; username: string; password: string }> {
  const r = await d.api('/api/v1/users', { json: { username, password, roles } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.id, username, password };
}

/** Every body the page received from the relay, to search for what must never come back. */
export function recordResponses(page: Page) {
  const pending: Promise<void>[] = [];
  const bodies: string[] = [];
  page.on('response', (r: Response) => {
    pending.push(
      r.text().then(
        (t) => void bodies.push(`${r.url()}\n${t}`),
        () => {},
      ),
    );
  });
  return async () => {
    await Promise.all(pending);
    return bodies;
  };
}

/** Everything the page holds as text, including what inputs and text areas hold. */
export const pageText = (page: Page) =>
  page.evaluate(() => document.documentElement.outerHTML + Array.from(document.querySelectorAll('input, textarea'), (e) => (e as HTMLInputElement).value).join('\n'));
