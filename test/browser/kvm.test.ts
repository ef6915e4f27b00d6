// The device page's KVM tab through the UI, against the local relay and the demo device's real
// agent (--simulate, whose HID reports go to files in its hid dir, as a USB host would read them):
// a key typed into the capture surface arrives as its boot report in hidg0 (once, however long
// it is held, and released when the surface loses focus), a click on the live view as an absolute
// mouse report in hidg1 at the point clicked, a shortcut as one keystroke with its modifiers, a
// pasted text is typed and decodes back to itself (and a cancelled one stops where it says), Caps
// Lock lights up when the simulated target turns it on, no signal and an offline device show as
// such, a screenshot downloads, and a user without hid:write only watches. Every state visited is
// scanned with axe-core and must load nothing from another host.
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { DevEnv } from '../../scripts/dev-env.ts';
import { HID_USAGES, MODIFIER_BITS } from '../../shared/hid/keycodes.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard } from './harness.ts';

/** The demo device's HID directory: the agent's --hid-dir, as the DevEnv gives it. */
function hidDir(d: Dashboard): string {
  const env = d.env as DevEnv & { hidDir?: (deviceId: string) => string };
  if (typeof env.hidDir !== 'function') throw new Error("DevEnv.hidDir(deviceId) is missing: demo devices need a --hid-dir the tests can read (the agent part's contract)");
  return env.hidDir(d.deviceId);
}

async function fileBytes(path: string): Promise<Buffer> {
  return existsSync(path) ? readFile(path) : Buffer.alloc(0);
}

/** The reports written to `file` since `from` bytes, split into `size`-byte reports (hex each). */
async function reportsSince(file: string, from: number, size: number): Promise<Buffer[]> {
  const b = (await fileBytes(file)).subarray(from);
  const out: Buffer[] = [];
  for (let i = 0; i + size <= b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}
const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

const CODE_OF_USAGE = new Map(Object.entries(HID_USAGES).map(([code, usage]) => [usage, code]));
const SHIFT = MODIFIER_BITS.ShiftLeft | MODIFIER_BITS.ShiftRight;

/** What en-US keyboard reports type: each key newly pressed in a report is one character. */
function decodeUs(reports: Buffer[]): string {
  let text = '';
  let held = new Set<number>();
  for (const r of reports) {
    const keys = new Set([...r.subarray(2)].filter((k) => k !== 0));
    for (const k of keys) {
      if (held.has(k)) continue;
      const code = CODE_OF_USAGE.get(k) ?? '?';
      const shifted = (r[0]! & SHIFT) !== 0;
      if (/^Key[A-Z]$/.test(code)) text += shifted ? code[3] : code[3]!.toLowerCase();
      else if (code === 'Space') text += ' ';
      else text += `<${code}>`;
    }
    held = keys;
  }
  return text;
}

async function openKvm(page: Page, d: Dashboard) {
  await page.goto(`${d.origin}/device/${d.deviceId}/kvm`);
  await page.getByRole('heading', { name: 'Remote screen', level: 2 }).waitFor();
}

const surfaceOf = (page: Page) => page.getByRole('application', { name: /^Remote screen/ });
const liveView = (page: Page) => page.getByRole('img', { name: /^Live view of the screen/ });

async function waitLoaded(page: Page) {
  await liveView(page).waitFor();
  await expect.poll(() => liveView(page).evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 30_000 }).toBeGreaterThan(0);
}

/** Starts capture the keyboard way: focus the surface (Tab would reach it), press Enter. */
async function control(page: Page) {
  await page.getByRole('status').filter({ hasText: 'Input connected' }).waitFor({ timeout: 30_000 });
  await surfaceOf(page).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: /^Release keyboard/ }).waitFor();
}

describeBrowser('the KVM tab', () => {
  let d: Dashboard;
  let dir: string;

  beforeAll(async () => {
    d = await startDashboard({ prefix: 'kvm' });
    dir = hidDir(d);
  }, 120_000);
  afterAll(async () => {
    await d?.close();
  });

  it('sends a key typed into the capture surface as its press and release reports to hidg0, and the live view changes', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openKvm(page, d);
    await waitLoaded(page);
    await screenshot(page, 'kvm-1280-light');
    await expectAccessible(page, 'the KVM tab');
    const before = await liveView(page).screenshot();

    const from = (await fileBytes(join(dir, 'hidg0'))).length;
    await control(page);
    await page.getByText(/Keys go to the remote computer\. Press Ctrl\+Alt\+Shift/).waitFor();
    await expectAccessible(page, 'the KVM tab, capturing');
    // Held, the browser repeats the key; the target repeats it itself, so only one press goes.
    await page.keyboard.down('a');
    await page.keyboard.down('a');
    await page.keyboard.down('a');
    await page.keyboard.up('a');
    await expect
      .poll(async () => (await reportsSince(join(dir, 'hidg0'), from, 8)).map(hex), { timeout: 15_000 })
      .toEqual(['00 00 04 00 00 00 00 00', '00 00 00 00 00 00 00 00']);
    // (The Enter that started capture was never sent down, so its release was not sent either.)

    // The simulated screen draws the keys it sees: the live view shows it.
    await page.keyboard.type('xyz');
    await expect.poll(async () => (await liveView(page).screenshot()).equals(before), { timeout: 15_000 }).toBe(false);

    // A key still held when the surface loses focus is released on the target: nothing sticks.
    const held = (await fileBytes(join(dir, 'hidg0'))).length;
    await page.keyboard.down('s');
    await expect.poll(async () => (await reportsSince(join(dir, 'hidg0'), held, 8)).some((r) => r[2] === 0x16), { timeout: 15_000 }).toBe(true);
    await page.getByRole('heading', { name: 'Remote screen', level: 2 }).click();
    await expect.poll(async () => (await reportsSince(join(dir, 'hidg0'), held, 8)).map(hex).at(-1), { timeout: 15_000 }).toBe('00 00 00 00 00 00 00 00');
    await page.keyboard.up('s');
    await page.getByRole('button', { name: 'Control keyboard' }).waitFor();

    // The release chord gives the keyboard back: Tab leaves the surface again.
    await control(page);
    await page.keyboard.press('Control+Alt+Shift');
    await page.getByRole('button', { name: 'Control keyboard' }).waitFor();
    await page.keyboard.press('b');
    await page.keyboard.press('Tab');
    expect(await surfaceOf(page).evaluate((el) => el === document.activeElement)).toBe(false);
    // Control again and press c: once c (0x06) has arrived, b (0x05), pressed while released, must not have.
    const keysSince = async () => (await reportsSince(join(dir, 'hidg0'), from, 8)).flatMap((r) => [...r.subarray(2)].filter((k) => k));
    await control(page);
    await page.keyboard.press('c');
    await expect.poll(async () => (await keysSince()).includes(0x06), { timeout: 15_000 }).toBe(true);
    expect(await keysSince(), 'a key pressed while the keyboard was released reached the target').not.toContain(0x05);

    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('clicks on the live view as an absolute mouse report in hidg1 at the point clicked', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openKvm(page, d);
    await waitLoaded(page);
    await page.getByRole('status').filter({ hasText: 'Input connected' }).waitFor({ timeout: 30_000 });
    // The picture's own rectangle (the letterbox excluded), in page pixels.
    const box = await liveView(page).evaluate((img: HTMLImageElement) => {
      const r = img.getBoundingClientRect();
      const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
      const w = img.naturalWidth * s;
      const h = img.naturalHeight * s;
      return { x: r.left + (r.width - w) / 2, y: r.top + (r.height - h) / 2, w, h };
    });
    const from = (await fileBytes(join(dir, 'hidg1'))).length;
    await page.mouse.click(box.x + box.w * 0.25, box.y + box.h * 0.75);
    await expect.poll(async () => (await reportsSince(join(dir, 'hidg1'), from, 7)).some((r) => r[0] === 0x01), { timeout: 15_000 }).toBe(true);
    const reports = await reportsSince(join(dir, 'hidg1'), from, 7);
    const press = reports.find((r) => r[0] === 0x01)!;
    // Within a pixel's worth of 0.25 and 0.75 of 32767.
    expect(Math.abs(press.readUInt16LE(1) - 0.25 * 32767), hex(press)).toBeLessThanOrEqual(32767 / box.w + 1);
    expect(Math.abs(press.readUInt16LE(3) - 0.75 * 32767), hex(press)).toBeLessThanOrEqual(32767 / box.h + 1);
    expect([press[5], press[6]]).toEqual([0, 0]);
    await expect.poll(async () => (await reportsSince(join(dir, 'hidg1'), from, 7)).at(-1)?.[0], { timeout: 15_000 }).toBe(0x00);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('sends a shortcut from the menu as one keystroke with its modifiers (Ctrl+Alt+Del)', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openKvm(page, d);
    await page.getByRole('status').filter({ hasText: 'Input connected' }).waitFor({ timeout: 30_000 });
    const from = (await fileBytes(join(dir, 'hidg0'))).length;
    const toggle = page.getByText('Shortcuts', { exact: true });
    await toggle.click();
    await expectAccessible(page, 'the KVM tab, shortcuts open');
    // Escape closes the menu and gives focus back to its toggle.
    await page.getByRole('button', { name: 'Send Alt+Tab' }).focus();
    await page.keyboard.press('Escape');
    expect(await page.getByRole('button', { name: 'Send Alt+Tab' }).isVisible()).toBe(false);
    expect(await toggle.evaluate((el) => el === document.activeElement)).toBe(true);
    await toggle.click();
    await page.getByRole('button', { name: 'Send Ctrl+Alt+Del' }).click();
    // Ctrl (0x01) | Alt (0x04) with Delete (0x4c), then everything released.
    await expect
      .poll(async () => (await reportsSince(join(dir, 'hidg0'), from, 8)).map(hex), { timeout: 15_000 })
      .toContain('05 00 4c 00 00 00 00 00');
    await expect.poll(async () => (await reportsSince(join(dir, 'hidg0'), from, 8)).map(hex).at(-1), { timeout: 15_000 }).toBe('00 00 00 00 00 00 00 00');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('pastes a text with the chosen layout: done, and hidg0 decodes to the same text', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openKvm(page, d);
    await page.getByRole('status').filter({ hasText: 'Input connected' }).waitFor({ timeout: 30_000 });
    const from = (await fileBytes(join(dir, 'hidg0'))).length;
    await page.getByLabel('Text to type').fill('Hello');
    await page.getByLabel('Target keyboard layout').selectOption('en-US');
    // Progress is drawn from the job's first message on (state typing), however fast the rest comes.
    await page.evaluate(() => {
      const w = window as unknown as { progressSeen: string[] };
      w.progressSeen = [];
      new MutationObserver(() => {
        const p = document.querySelector<HTMLProgressElement>('progress[aria-label="Typing progress"]');
        if (p) w.progressSeen.push(`${p.value}/${p.max} ${p.parentElement?.textContent ?? ''}`);
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.getByRole('button', { name: 'Type', exact: true }).click();
    await page.getByText('Typed all 5 characters (en-US).').waitFor({ timeout: 30_000 });
    const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
    expect(seen.length, 'no progress was shown').toBeGreaterThan(0);
    expect(seen[0]).toMatch(/^\d\/5 Typing… \d of 5 characters$/);
    expect(decodeUs(await reportsSince(join(dir, 'hidg0'), from, 8))).toBe('Hello');
    await expectAccessible(page, 'the KVM tab after typing a text');
    await screenshot(page, 'kvm-typed');

    // A character the layout cannot type is refused by name, beside the text, and nothing is typed.
    const n = (await fileBytes(join(dir, 'hidg0'))).length;
    await page.getByLabel('Text to type').fill('ab\u{1F600}c');
    await page.getByRole('button', { name: 'Type', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'cannot type “\u{1F600}” (character 3)' }).waitFor({ timeout: 15_000 });
    expect((await fileBytes(join(dir, 'hidg0'))).length).toBe(n);

    // A long text cancelled while it types: it stops where it says, every character before in order.
    const long = 'abcdefghij'.repeat(2000);
    const m = (await fileBytes(join(dir, 'hidg0'))).length;
    await page.getByLabel('Text to type').fill(long);
    await page.getByRole('button', { name: 'Type', exact: true }).click();
    await page.getByRole('button', { name: 'Cancel typing' }).click();
    const outcome = page.getByText(/^Cancelled after \d+ of 20000 characters\.$/);
    await outcome.waitFor({ timeout: 30_000 });
    const typed = Number(/after (\d+) of/.exec((await outcome.textContent())!)![1]);
    expect(typed).toBeLessThan(long.length);
    expect(decodeUs(await reportsSince(join(dir, 'hidg0'), m, 8))).toBe(long.slice(0, typed));

    // The layout chosen is remembered for this device.
    await page.reload();
    await expect.poll(() => page.getByLabel('Target keyboard layout').inputValue()).toBe('en-US');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('shows the Caps Lock light once the target turns it on, and unknown lights as unknown', async () => {
    const { page, foreign, errors } = await openPage(d, { colorScheme: 'dark' });
    await signInAdmin(page, d);
    await openKvm(page, d);
    const lights = page.getByRole('list', { name: 'Keyboard lights of the target' });
    const caps = lights.getByRole('listitem').filter({ hasText: 'Caps' });
    await control(page);
    const was = (await caps.textContent()) ?? '';
    await page.keyboard.press('CapsLock');
    // The simulated target toggles Caps Lock and reports its LEDs back (off, or unknown before, → on).
    await expect.poll(() => caps.textContent(), { timeout: 15_000 }).toContain(was.includes(': on') ? 'Caps Lock: off' : 'Caps Lock: on');
    await page.keyboard.press('CapsLock');
    await expect.poll(() => caps.textContent(), { timeout: 15_000 }).toContain(was.includes(': on') ? 'Caps Lock: on' : 'Caps Lock: off');
    await screenshot(page, 'kvm-1280-dark');
    await expectAccessible(page, 'the KVM tab in dark, with its lights');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('says there is no video signal, and shows the picture again once there is', async () => {
    const flag = join(dir, 'no-signal');
    await writeFile(flag, '');
    const { page, foreign, errors } = await openPage(d, { width: 390, height: 844 });
    try {
      await signInAdmin(page, d);
      await openKvm(page, d);
      await page.getByRole('heading', { name: 'No video signal from the target — check the HDMI cable' }).waitFor({ timeout: 30_000 });
      expect(await liveView(page).count()).toBe(0);
      await screenshot(page, 'kvm-no-signal-390');
      await expectAccessible(page, 'the KVM tab without signal');
      // Without signal there is no screenshot to save, and the page says so.
      await page.getByRole('button', { name: 'Screenshot' }).click();
      await page.getByText('No video signal: there is no picture to save.').waitFor({ timeout: 15_000 });
      await rm(flag);
      await page.getByRole('button', { name: 'Check again' }).click();
      await waitLoaded(page);
    } finally {
      await rm(flag, { force: true });
    }
    // At 360 px the picture scales and the toolbar wraps: no sideways scroll.
    await page.setViewportSize({ width: 360, height: 844 });
    const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth!);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('downloads a screenshot as a timestamped PNG', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openKvm(page, d);
    await waitLoaded(page);
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Screenshot' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^demo-pi-screenshot-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.png$/);
    const bytes = await readFile((await file.path())!);
    expect(hex(bytes.subarray(0, 8))).toBe('89 50 4e 47 0d 0a 1a 0a');
    await page.getByText('Screenshot saved.').waitFor();
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('lets a user with screen:read but not hid:write watch, and says input is not theirs to send', async () => {
    const role = await d.api('/api/v1/roles', { json: { name: 'Screen watcher', permissions: ['dashboard:view', 'devices:read', 'screen:read'] } });
    expect(role.status, JSON.stringify(role.body)).toBe(201);
    const watcher = await createUser(d, 'kvm-watcher', [role.body.id]);
    const team = (await d.api(`/api/v1/devices/${d.deviceId}`)).body.team_id;
    const joined = await d.api(`/api/v1/teams/${team}/members`, { json: { username: watcher.username, role: 'member' } });
    expect(joined.status, JSON.stringify(joined.body)).toBe(201);
    const { page, foreign, errors } = await openPage(d);
    await signIn(page, d.origin, watcher.username, watcher.password, `/device/${d.deviceId}/kvm`);
    await page.getByRole('heading', { name: 'Remote screen', level: 2 }).waitFor();
    await waitLoaded(page);
    await page.getByText(/needs the hid:write permission/).waitFor();
    expect(await surfaceOf(page).count()).toBe(0);
    expect(await page.getByText('Shortcuts', { exact: true }).count()).toBe(0);
    expect(await page.getByLabel('Text to type').count()).toBe(0);
    const from = (await fileBytes(join(dir, 'hidg1'))).length;
    await liveView(page).click();
    await page.keyboard.press('a');
    expect((await fileBytes(join(dir, 'hidg1'))).length).toBe(from);
    await expectAccessible(page, 'the KVM tab, view only');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('says when the device is offline, and controls it again once it is back', async () => {
    const { page, foreign, errors } = await openPage(d);
    await signInAdmin(page, d);
    await openKvm(page, d);
    await page.getByRole('status').filter({ hasText: 'Input connected' }).waitFor({ timeout: 30_000 });
    await d.env.stopAgent(d.deviceId);
    await page.getByText('The screen, keyboard and mouse are reached through the device, which must be online.').waitFor({ timeout: 30_000 });
    await expectAccessible(page, 'the KVM tab, device offline');
    d.env.startAgent(d.deviceId);
    await waitLoaded(page);
    const from = (await fileBytes(join(dir, 'hidg0'))).length;
    await control(page);
    await page.keyboard.press('q');
    await expect.poll(async () => (await reportsSince(join(dir, 'hidg0'), from, 8)).map(hex), { timeout: 15_000 }).toEqual(['00 00 14 00 00 00 00 00', '00 00 00 00 00 00 00 00']);
    expect(foreign).toEqual([]);
    // While the device is away the input socket fails and the live view's retries are answered 503
    // DEVICE_OFFLINE, which Chromium logs by itself; the page shows the offline notice for them.
    expect(errors.filter((e) => !/WebSocket connection to .*\/hid' failed|Failed to load resource: the server responded with a status of 503/.test(e))).toEqual([]);
    await page.context().close();
  });
});
