// The whole-app sweep: every page of dashboard/src/pages.ts (so a new page is swept without editing
// this file), plus the sign-in page, the session-expired page and a page that does not exist, at
// 1280×800 and 390×844, light and dark. On each: a screenshot (<page>-<w>x<h>-<scheme>.png, kept by
// CI), axe with zero serious or critical violations, nothing requested from another host, no page
// errors, no horizontal scroll at 360 px, and by keyboard: Tab from the top reaches the skip link
// first and then the main navigation, every focused control showing a focus indicator. Also a
// static check that nothing the relay serves for the dashboard points at another host.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Cookie, Page } from 'playwright-core';
import { DASHBOARD_DIST } from '../../scripts/dashboard.ts';
import { http } from '../e2e/harness.ts';
import { describeBrowser, expectAccessible, openPage, screenshot, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

// pages.ts itself, so a page added there is swept. Imported by a path held in a variable: the
// node-side type check (tsconfig.node.json) would otherwise follow it into the pages' .tsx and CSS.
const PAGES_MODULE = '../../dashboard/src/pages.ts';
const { PAGES } = (await import(/* @vite-ignore */ PAGES_MODULE)) as { PAGES: { path: string; title: string }[] };

/** The device page's tabs, swept as /device/<id>/<tab>: add each tab here as the device page gains it. */
const DEVICE_TABS: string[] = ['metrics', 'processes', 'tunnels', 'kvm', 'terminal', 'logs', 'settings'];

interface Ids {
  deviceId: string;
  teamId: string;
}

/** A concrete URL (and a screenshot name) for each page path that has route params. */
const CONCRETE: Record<string, (ids: Ids) => { name: string; path: string }[]> = {
  '/device/:id/:tab?': ({ deviceId }) => [{ name: 'device', path: `/device/${deviceId}` }, ...DEVICE_TABS.map((tab) => ({ name: `device-${tab}`, path: `/device/${deviceId}/${tab}` }))],
  '/teams/:id': ({ teamId }) => [{ name: 'team', path: `/teams/${teamId}` }],
};

/** What a page still draws after its Loading status has gone (by path in pages.ts). */
const READY: Record<string, (page: Page) => Promise<void>> = {
  // The reference draws itself (in its shadow DOM) once the document is parsed.
  '/docs': (page) => page.locator('openapi-explorer .operations-root').first().waitFor(),
};

const hasParams = (path: string) => path.includes(':');
const slug = (path: string) => (path === '/' ? 'fleet' : path.slice(1).replaceAll('/', '-'));

type Kind = 'app' | 'sign-in' | 'session-expired';
interface Target {
  name: string;
  path: string;
  kind: Kind;
  ready?: (page: Page) => Promise<void>;
}

function targets(ids: Ids): Target[] {
  const app = PAGES.flatMap((p): Target[] => {
    const ready = READY[p.path];
    if (!hasParams(p.path)) return [{ name: slug(p.path), path: p.path, kind: 'app', ready }];
    return (CONCRETE[p.path]?.(ids) ?? []).map((c) => ({ ...c, kind: 'app' as const, ready }));
  });
  return [
    ...app,
    { name: 'not-found', path: '/no-such-page', kind: 'app' },
    { name: 'sign-in', path: '/', kind: 'sign-in' },
    { name: 'session-expired', path: '/teams', kind: 'session-expired' },
  ];
}

const VARIANTS = [
  { width: 1280, height: 800, colorScheme: 'light' },
  { width: 1280, height: 800, colorScheme: 'dark' },
  { width: 390, height: 844, colorScheme: 'light' },
  { width: 390, height: 844, colorScheme: 'dark' },
] as const;
type Variant = (typeof VARIANTS)[number];

// The list of tests is made when this file is collected, before the relay is up: the ids go in
// as placeholders and are filled in by beforeAll (the URLs are built when each test runs).
const ids: Ids = { deviceId: '<demo device>', teamId: '<team>' };
const cases = targets(ids).flatMap((t) => VARIANTS.map((v) => ({ ...t, v, label: `${t.name} at ${v.width}×${v.height} ${v.colorScheme}` })));

/** The focused element, inside shadow roots too, described for the checks and their messages. */
async function focused(page: Page) {
  return page.evaluate(() => {
    let el = document.activeElement as HTMLElement | null;
    while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement as HTMLElement;
    if (!el || el === document.body) return null;
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1 && !/rgba\(.*,\s*0\)$|transparent/.test(s.outlineColor);
    const shadow = s.boxShadow !== 'none' && s.boxShadow !== '';
    return {
      what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''} "${(el.textContent ?? '').trim().slice(0, 40)}"`,
      skip: el.matches('a.skip'),
      inNav: !!el.closest('nav[aria-label="Main"]') || el.getAttribute('aria-controls') === 'main-nav',
      inMain: !!el.closest('main'),
      indicator: outline || shadow,
      onScreen: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && r.left < innerWidth && r.top < innerHeight,
    };
  });
}

/** Tab from the top of the document (not from the heading the app focuses on arrival). */
async function tabFromTop(page: Page, stops: number) {
  await page.evaluate(() => {
    const start = document.createElement('span');
    start.tabIndex = -1;
    start.id = 'sweep-start';
    document.body.prepend(start);
    start.focus();
  });
  const seen: NonNullable<Awaited<ReturnType<typeof focused>>>[] = [];
  for (let i = 0; i < stops; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (!f) break;
    seen.push(f);
  }
  await page.evaluate(() => document.getElementById('sweep-start')?.remove());
  return seen;
}

describeBrowser('every page of the dashboard', () => {
  let d: Dashboard;
  let session: Cookie[];

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'pages' });
    ids.deviceId = d.deviceId;
    const team = await d.api('/api/v1/teams', { json: { name: 'sweep-team' } });
    expect(team.status, JSON.stringify(team.body)).toBe(201);
    ids.teamId = team.body.id;
    // One signed-in session, handed to each page's fresh browser context as its cookie.
    const { page, context } = await openPage(d);
    await signInAdmin(page, d);
    session = await context.cookies();
    await context.close();
  }, 120_000);
  afterAll(async () => {
    await d?.close();
  });

  it('has a concrete URL for every page of pages.ts', () => {
    const unmapped = PAGES.filter((p) => hasParams(p.path) && !(CONCRETE[p.path]?.(ids).length));
    expect(unmapped.map((p) => p.path), 'add these paths to CONCRETE in test/browser/pages.test.ts').toEqual([]);
    const names = targets(ids).map((t) => t.name);
    expect(new Set(names).size, `screenshot names collide: ${names.join(', ')}`).toBe(names.length);
  });

  it('serves nothing that points at another host (script src, link href, @import, url())', async () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir)) {
        const p = join(dir, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(html|js|css)$/.test(e)) files.push(p);
      }
    };
    walk(DASHBOARD_DIST);
    expect(files.some((f) => f.endsWith('.js'))).toBe(true);
    const patterns = [
      /<script[^>]*\ssrc\s*=\s*["']?\s*((?:https?:)?\/\/[^"'\s>]+)/gi,
      /<link[^>]*\shref\s*=\s*["']?\s*((?:https?:)?\/\/[^"'\s>]+)/gi,
      /@import\s+(?:url\()?\s*["']?\s*((?:https?:)?\/\/[^"')\s;]+)/gi,
      /url\(\s*\\?["']?\s*((?:https?:)?\/\/[^"')\s\\]+)/gi,
    ];
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const re of patterns) for (const m of text.matchAll(re)) found.push(`${f.slice(DASHBOARD_DIST.length)}: ${m[1]}`);
    }
    expect(found).toEqual([]);
    // And index.html as the relay serves it: its scripts and styles come from this origin.
    const r = await http(`${d.origin}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    const refs = [...String(r.body).matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(new URL(ref, d.origin).origin, ref).toBe(d.origin);
  });

  it.each(cases)('$label', async (t) => {
    const v: Variant = t.v;
    const { page, context, foreign, errors } = await openPage(d, v);
    try {
      if (t.kind === 'sign-in') {
        await page.goto(d.origin + t.path);
        await page.getByRole('heading', { name: 'Sign in to pirelay', level: 1 }).waitFor();
      } else if (t.kind === 'session-expired') {
        await signInAdmin(page, d, t.path);
        // Once the live stream is up: a session that ended while its upgrade was in flight would
        // make Chromium log the refused handshake (which the app handles, as the page shows).
        await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
        const token = (await context.cookies()).find((c) => c.name === '__Host-pirelay_session')!.value;
        // The session ends at the relay (as its expiry or a logout elsewhere would).
        expect((await http(`${d.origin}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
        // The relay closes the live stream of the ended session, and the app finds out by itself.
        await page.getByRole('heading', { name: 'Your session has ended', level: 1 }).waitFor();
      } else {
        await context.addCookies(session);
        await page.goto(d.origin + targets(ids).find((x) => x.name === t.name)!.path);
        await page.getByRole('button', { name: 'Sign out' }).waitFor();
        await page.getByRole('heading', { level: 1 }).first().waitFor();
        if (t.name !== 'not-found') await page.locator('#page-title').waitFor();
      }
      await expect.poll(() => page.getByRole('status').filter({ hasText: /Loading/ }).count(), { timeout: 30_000 }).toBe(0);
      await t.ready?.(page);
      const where = `${t.label} (${page.url()})`;

      await screenshot(page, `${t.name}-${v.width}x${v.height}-${v.colorScheme}`);
      await expectAccessible(page, where);

      // Keyboard: from the top, the skip link first, then the main navigation (its links, or at
      // 390 px its Menu button) before anything in the page itself; every stop visibly focused.
      const stops = await tabFromTop(page, 8);
      expect(stops.length, `${where}: Tab reached nothing`).toBeGreaterThan(0);
      for (const s of stops) {
        expect(s.indicator, `${where}: no visible focus indicator on ${s.what}`).toBe(true);
        expect(s.onScreen, `${where}: focused but off screen: ${s.what}`).toBe(true);
      }
      if (t.kind === 'app') {
        expect(stops[0]!.skip, `${where}: the first Tab stop is ${stops[0]!.what}, not the skip link`).toBe(true);
        const nav = stops.findIndex((s) => s.inNav);
        const main = stops.findIndex((s) => s.inMain);
        expect(nav, `${where}: Tab never reached the main navigation: ${stops.map((s) => s.what).join(' → ')}`).toBeGreaterThan(0);
        if (main >= 0) expect(nav, `${where}: the page's content came before the main navigation`).toBeLessThan(main);
      }

      // No horizontal scroll at 360 px (once per scheme, after the 390 px screenshot).
      if (v.width === 390) {
        await page.setViewportSize({ width: 360, height: v.height });
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
        const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        expect(scrollWidth, `${where}: scrolls sideways at 360 px`).toBeLessThanOrEqual(innerWidth!);
      }

      expect(foreign, `${where}: requests to other hosts`).toEqual([]);
      expect(errors, `${where}: errors in the page`).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

