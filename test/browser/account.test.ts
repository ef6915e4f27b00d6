// The account page as its owner uses it: the profile (and what a new e-mail address does to its
// verification), the password (the relay's policy message at the field; other sessions ended, this
// one kept), and two-factor login end to end — the QR code read back off the screen by a real
// decoder (ZXing, WebAssembly, offline) and matched to the otpauth:// URI the relay gave, codes
// computed from the secret as an authenticator app would, recovery codes shown once, and signing in
// with the 2FA step (wrong code, right code, a recovery code once and refused the second time).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { prepareZXingModule, readBarcodes } from 'zxing-wasm/reader';
import { timeStep, totpCode, TOTP_PERIOD_SECONDS } from '../../worker/auth/totp.ts';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, startDashboard, type Dashboard } from './harness.ts';

// The decoder's WebAssembly from the package itself (by default it would fetch it from a CDN).
const wasm = readFileSync(createRequire(import.meta.url).resolve('zxing-wasm/reader/zxing_reader.wasm'));
prepareZXingModule({ overrides: { wasmBinary: wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer } });

/** What a phone's camera would read: the QR code as drawn on the page, decoded from a screenshot. */
async function scanQr(page: Page): Promise<string> {
  const png = await page.getByRole('img', { name: /QR code/ }).screenshot();
  const found = await readBarcodes(new Uint8Array(png), { formats: ['QRCode'], tryHarder: true });
  expect(found.length, 'a QR code is found in the screenshot').toBe(1);
  return found[0]!.text;
}

/**
 * An authenticator app's code, for a time step the relay has not accepted yet: the current one, or
 * the next (the relay takes ±1 step), or — when both are used — the code once the clock gets there.
 */
async function freshCode(secret: string, used: { step: number }): Promise<string> {
  for (;;) {
    const now = timeStep(Date.now());
    const step = Math.max(now, used.step + 1);
    if (step <= now + 1) {
      used.step = step;
      return totpCode(secret, step);
    }
    await new Promise((r) => setTimeout(r, (((step - 1) * TOTP_PERIOD_SECONDS) * 1000 - Date.now()) + 200));
  }
}

/** A six-digit code no step near now has: a wrong code, for certain. */
async function wrongCode(secret: string): Promise<string> {
  const now = timeStep(Date.now());
  const near = await Promise.all([-2, -1, 0, 1, 2].map((d) => totpCode(secret, now + d)));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!near.includes(c)) return c;
  }
}

/** The message shown at a field (its role=alert inside the field's box). */
const fieldError = (page: Page, label: string) => page.locator('.field', { has: page.getByLabel(label, { exact: true }) }).getByRole('alert');

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to pirelay' }).waitFor();
}

/** The password step of signing in, up to the 2FA step. */
async function passwordStep(page: Page, username: string, password: string) {
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('form', { name: 'Two-factor code' }).waitFor();
}

async function secondStep(page: Page, code: string) {
  const form = page.getByRole('form', { name: 'Two-factor code' });
  await form.getByLabel('Code').fill(code);
  await form.getByRole('button', { name: 'Verify' }).click();
}

describeBrowser('the account page', () => {
  let d: Dashboard;
  beforeAll(async () => {
    d = await startDashboard({ prefix: 'account' });
  });
  afterAll(async () => {
    await d?.close();
  });

  it('changes the profile; the change persists, and a new e-mail address is no longer verified', async () => {
    const alice = await createUser(d, 'alice', ['viewer']);
    const { page, context, foreign, errors } = await openPage(d);
    await signIn(page, d.origin, alice.username, alice.password, '/account');
    await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
    await expectAccessible(page, 'account page');
    await page.getByLabel('Name').fill('Alice Liddell');
    await page.getByLabel('E-mail address').fill('alice@example.com');
    await page.getByLabel('Time zone').selectOption('Europe/Paris');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();

    await page.reload();
    await expect.poll(() => page.getByLabel('Name').inputValue()).toBe('Alice Liddell');
    expect(await page.getByLabel('E-mail address').inputValue()).toBe('alice@example.com');
    expect(await page.getByLabel('Time zone').inputValue()).toBe('Europe/Paris');
    const kept = await d.api(`/api/v1/users/${alice.id}`);
    expect(kept.body).toMatchObject({ name: 'Alice Liddell', email: 'alice@example.com', timezone: 'Europe/Paris', email_verified: false });

    // An admin verifies the address; changing it here makes it unverified again, as the page warns.
    expect((await d.api(`/api/v1/users/${alice.id}`, { method: 'PUT', json: { email_verified: true } })).status).toBe(200);
    await page.reload();
    await page.getByText('This address is verified.').waitFor();
    expect(await page.getByText(/Changing it makes it unverified/).count()).toBe(1);
    await page.getByLabel('E-mail address').fill('alice@example.org');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.getByText('This address is not verified.').waitFor();
    expect((await d.api(`/api/v1/users/${alice.id}`)).body).toMatchObject({ email: 'alice@example.org', email_verified: false });

    // What the browser lets through (an address without a top-level domain) and the relay refuses:
    // the relay's own message, at the field.
    await page.getByLabel('E-mail address').fill('alice@localhost');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await expect.poll(() => fieldError(page, 'E-mail address').textContent()).toBe('Invalid email address');
    await expectAccessible(page, 'account page, profile refused');
    await screenshot(page, 'account-profile-refused');
    expect(foreign).toEqual([]);
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([]);
    await context.close();
  });

  it("changes the password: the relay's policy at the field, a typo caught, other sessions signed out and this one kept", async () => {
    const bob = await createUser(d, 'bob', ['viewer']);
    const other = await openPage(d);
    await signIn(other.page, d.origin, bob.username, bob.password, '/account');
    const { page, context, foreign } = await openPage(d);
    await signIn(page, d.origin, bob.username, bob.password, '/account');
    let puts = 0;
    page.on('request', (r) => {
      if (r.method() === 'PUT' && r.url().endsWith('/api/v1/auth/me/password')) puts++;
    });

    await page.getByLabel('Current password').fill(bob.password);
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByLabel('Repeat the new password').fill('short');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => fieldError(page, 'New password').textContent()).toMatch(/at least 8 characters/);
    await expectAccessible(page, 'account page, password refused');
    await screenshot(page, 'account-password-refused');

    // Typed differently twice: the page says so and asks the relay nothing.
    const sent = puts;
    await page.getByLabel('New password', { exact: true }).fill('a-long-new-passphrase');
    await page.getByLabel('Repeat the new password').fill('a-long-new-passphrase!');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => fieldError(page, 'Repeat the new password').textContent()).toMatch(/differ/);
    expect(puts).toBe(sent);

    await page.getByLabel('Current password').fill('not-my-password');
    await page.getByLabel('Repeat the new password').fill('a-long-new-passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => fieldError(page, 'Current password').textContent()).toMatch(/current_password is wrong/);

    await page.getByLabel('Current password').fill(bob.password);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('status').filter({ hasText: 'Password changed.' }).waitFor();
    expect(await page.getByLabel('Current password').inputValue()).toBe('');

    // This session carries on; the other one has ended.
    await page.getByRole('link', { name: 'Teams' }).click();
    await page.getByRole('heading', { name: 'Teams', level: 1 }).waitFor();
    expect(await page.getByRole('heading', { name: 'Your session has ended' }).count()).toBe(0);
    await other.page.getByRole('link', { name: 'Teams' }).click();
    await other.page.getByRole('heading', { name: 'Your session has ended' }).waitFor();
    await other.context.close();

    // The old password no longer signs in; the new one does.
    await signOut(page);
    await page.getByLabel('User name').fill(bob.username);
    await page.getByLabel('Password').fill(bob.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/Invalid username or password/);
    await signIn(page, d.origin, bob.username, 'a-long-new-passphrase', '/account');
    await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
    expect(foreign).toEqual([]);
    await context.close();
  });

  it('enrols two-factor login from a scannable QR code, shows the recovery codes once, and signs in with codes', { timeout: 240_000 }, async () => {
    const carol = await createUser(d, 'carol', ['viewer']);
    const { page, context, foreign, errors } = await openPage(d);
    await signIn(page, d.origin, carol.username, carol.password, '/account');
    const section = page.getByRole('region', { name: 'Two-factor login' });
    await section.getByText('Off', { exact: true }).waitFor();

    // Enrolment: what the relay answered is what the QR code on the screen says.
    const answered = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/2fa/enrol'));
    await page.getByRole('button', { name: 'Set up two-factor login' }).click();
    const enrolment = (await (await answered).json()) as { secret: string; otpauth_uri: string };
    expect(enrolment.otpauth_uri).toMatch(/^otpauth:\/\/totp\/pirelay:carol\?/);
    expect(await scanQr(page)).toBe(enrolment.otpauth_uri);
    // The text alternative: the same secret, in groups of four, to type by hand.
    const typed = (await page.locator('.totp-secret').textContent())!;
    expect(typed).toMatch(/^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/);
    expect(typed.replace(/ /g, '')).toBe(enrolment.secret);
    await expectAccessible(page, 'two-factor enrolment with its QR code');
    await screenshot(page, 'account-enrolment');

    // A wrong code is refused with the relay's message at the field; the app's code turns it on.
    const confirmForm = page.getByRole('form', { name: 'Confirm two-factor login' });
    await confirmForm.getByLabel('Code from the app').fill(await wrongCode(enrolment.secret));
    await confirmForm.getByRole('button', { name: 'Turn on two-factor login' }).click();
    await expect.poll(() => fieldError(page, 'Code from the app').textContent()).toBe('The code is wrong, or was already used');
    const used = { step: 0 };
    await confirmForm.getByLabel('Code from the app').fill(await freshCode(enrolment.secret, used));
    await confirmForm.getByRole('button', { name: 'Turn on two-factor login' }).click();
    const list = page.getByRole('list', { name: 'Recovery codes' });
    await list.waitFor();
    const codes = (await list.getByRole('listitem').allTextContents()).map((c) => c.trim());
    expect(codes).toHaveLength(10);
    for (const c of codes) expect(c).toMatch(/^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
    await section.getByText('On', { exact: true }).waitFor();
    await expectAccessible(page, 'recovery codes shown once');
    await screenshot(page, 'account-recovery-codes');

    // Copy all, and the .txt download (a blob: URL), each carry all ten.
    await page.getByRole('button', { name: 'Copy all' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(codes.join('\n'));
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download as .txt' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe('pirelay-recovery-codes.txt');
    const saved = await readFile((await file.path())!, 'utf8');
    for (const c of codes) expect(saved).toContain(c);

    // Shown once: a reload does not bring them back (nothing kept them).
    await page.reload();
    await section.getByText('On', { exact: true }).waitFor();
    expect(await page.getByRole('list', { name: 'Recovery codes' }).count()).toBe(0);
    expect(await page.content()).not.toContain(codes[0]);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    expect(stored).not.toContain(codes[0]);
    expect(stored).not.toContain(enrolment.secret);

    // Signing in now takes the second step: a wrong code gets the relay's message, the app's code works.
    await signOut(page);
    await passwordStep(page, carol.username, carol.password);
    await expectAccessible(page, 'the 2FA step of signing in');
    await screenshot(page, 'account-sign-in-2fa-step');
    await secondStep(page, await wrongCode(enrolment.secret));
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/The code is wrong, or was already used/);
    await screenshot(page, 'account-sign-in-2fa-wrong-code');
    await page.getByText('4 more tries with this sign-in').waitFor();
    await secondStep(page, await freshCode(enrolment.secret, used));
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    // A recovery code works once; the second time it is refused.
    await signOut(page);
    await passwordStep(page, carol.username, carol.password);
    await secondStep(page, codes[0]!);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await signOut(page);
    await passwordStep(page, carol.username, carol.password);
    await secondStep(page, codes[0]!);
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/The code is wrong, or was already used/);
    // Typed as people type it (upper case, no dashes), another one still works.
    await secondStep(page, codes[1]!.replace(/-/g, '').toUpperCase());
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    // New recovery codes (for a recovery code) void the old ones.
    await page.goto(d.origin + '/account');
    const renew = page.getByRole('form', { name: 'Make new recovery codes' });
    await renew.getByLabel('Code from your app, or a recovery code').fill(codes[2]!);
    await renew.getByRole('button', { name: 'Make new recovery codes' }).click();
    await list.waitFor();
    const fresh = (await list.getByRole('listitem').allTextContents()).map((c) => c.trim());
    expect(fresh).toHaveLength(10);
    expect(fresh.some((c) => codes.includes(c))).toBe(false);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    expect(await list.count()).toBe(0);

    // Turning it off takes a current code: an old recovery code is refused at the field, the app's code works.
    const off = page.getByRole('form', { name: 'Turn off two-factor login' });
    await off.getByLabel('Code from your app, or a recovery code').fill(codes[3]!);
    await off.getByRole('button', { name: 'Turn off two-factor login' }).click();
    await expect.poll(() => off.getByRole('alert').textContent()).toBe('The code is wrong, or was already used');
    await off.getByLabel('Code from your app, or a recovery code').fill(await freshCode(enrolment.secret, used));
    await off.getByRole('button', { name: 'Turn off two-factor login' }).click();
    await section.getByText('Off', { exact: true }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Two-factor login is off' }).waitFor();

    // And the password alone signs in again.
    await signOut(page);
    await signIn(page, d.origin, carol.username, carol.password, '/account');
    expect(foreign).toEqual([]);
    expect(errors.filter((e) => !/status of (401|403)/.test(e))).toEqual([]);
    await context.close();
  });

  it('sends the 2FA step back to the password, saying why, when its challenge stops working', async () => {
    const erin = await createUser(d, 'erin', ['viewer']);
    // Two-factor login turned on through the API with erin's own session token.
    const token = (await d.api('/api/v1/auth/login', { json: { username: erin.username, password: erin.password } })).body.token as string;
    const { secret } = (await d.api('/api/v1/auth/2fa/enrol', { method: 'POST', key: token })).body as { secret: string };
    const used = { step: 0 };
    expect((await d.api('/api/v1/auth/2fa/confirm', { key: token, json: { code: await freshCode(secret, used) } })).status).toBe(200);

    const { page, context, foreign } = await openPage(d);
    await page.goto(d.origin + '/');
    await passwordStep(page, erin.username, erin.password);
    // Meanwhile an admin resets erin's two-factor login (a lost phone): the challenge is void.
    expect((await d.api(`/api/v1/users/${erin.id}/2fa`, { method: 'DELETE' })).status).toBe(204);
    await secondStep(page, await freshCode(secret, used));
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/log in with your password again/);
    await expectAccessible(page, 'sign-in after a void challenge');
    // And the password alone now signs in.
    await page.getByLabel('User name').fill(erin.username);
    await page.getByLabel('Password').fill(erin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    expect(foreign).toEqual([]);
    await context.close();
  });

  it('holds at 1280 and 390 px, light and dark, with a QR code that scans in both themes', async () => {
    const dave = await createUser(d, 'dave', ['viewer']);
    for (const width of [1280, 390]) {
      for (const colorScheme of ['light', 'dark'] as const) {
        const { page, context, foreign } = await openPage(d, { width, height: width === 1280 ? 800 : 844, colorScheme });
        await signIn(page, d.origin, dave.username, dave.password, '/account');
        await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
        await expectAccessible(page, `account page at ${width} px, ${colorScheme}`);
        await screenshot(page, `account-${width}-${colorScheme}`);
        const answered = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/2fa/enrol'));
        await page.getByRole('button', { name: 'Set up two-factor login' }).click();
        const { otpauth_uri } = (await (await answered).json()) as { otpauth_uri: string };
        expect(await scanQr(page)).toBe(otpauth_uri);
        await expectAccessible(page, `enrolment at ${width} px, ${colorScheme}`);
        // Nothing wider than the window: the page itself never scrolls sideways.
        expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
        await screenshot(page, `account-enrolment-${width}-${colorScheme}`);
        expect(foreign).toEqual([]);
        await context.close();
      }
    }
  });
});
