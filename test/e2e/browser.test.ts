// A real browser (Debian's Chromium, driven by playwright-core) reaches a device's web app at
// http://<tunnel>.localhost:<port>/ with no DNS set-up, as the README promises, including a
// WebSocket the page opens through the tunnel. CI installs chromium; elsewhere the test says
// how to get it rather than failing on a missing binary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, startTargets, tempDir, type Targets } from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

describe.skipIf(!haveChromium && !process.env.CI)('a tunnel in Chromium', () => {
  let env: DevEnv;
  let targets: Targets;
  let browser: Browser;
  let port: number;

  beforeAll(async () => {
    targets = await startTargets();
    const ports = targets;
    port = await freePort();
    env = await startDevEnv({ dir: await tempDir('browser'), port, demoDevices: ['browser-pi'] });
    await waitOnline(env);
    const r = await http(`${env.state.url}/api/v1/devices/${env.state.devices[0]!.id}/tunnels`, {
      key: env.state.apiKey,
      json: { name: 'webapp', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'public' } },
    });
    expect(r.status).toBe(201);
    await waitFor('tunnel reachable', async () => (await fetch(`${env.state.url}/health`)).ok, 5_000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await env?.stop();
    targets?.stop();
  });

  it('loads http://webapp.localhost:<port>/ and talks WebSocket through it', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`http://webapp.localhost:${port}/echo/from-chromium?x=1`);
    expect(res?.status()).toBe(200);
    const seen = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string; headers: Record<string, string> };
    expect(seen.path).toBe('/echo/from-chromium');
    expect(seen.headers['x-forwarded-host']).toBe(`webapp.localhost:${port}`);
    const echoed = await page.evaluate(
      () =>
        new Promise<string>((resolve, reject) => {
          const ws = new WebSocket(`ws://${location.host}/ws`);
          ws.onopen = () => ws.send('hello from the browser');
          ws.onmessage = (ev) => resolve(String(ev.data));
          ws.onerror = () => reject(new Error('websocket failed'));
        }),
    );
    expect(echoed).toBe('hello from the browser');
  });
});
