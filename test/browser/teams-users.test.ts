// Teams, members, invitations, users and roles through the dashboard, as people use them: an
// admin makes a team and invites someone by user name, who signs in from the link in another
// browser and accepts; the admin changes their role, removes them and deletes the team. A custom role made with the
// permission picker (devices:read only) gives a new user exactly that: no "Users and roles", "Add a
// device" or "Audit log", the API's 403 on a page opened by address, and the demo device only once
// they are in its team. The picker offers only what its user holds, and when the relay refuses
// anyway (their permissions shrank while the page was open) its message is shown at the picker.
// Each page state is scanned by axe-core and nothing may load from another host.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createUser, describeBrowser, expectAccessible, openPage, screenshot, signIn, signInAdmin, startDashboard, type Dashboard, type OpenedPage } from './harness.ts';

/** What the relay answers this page's session for a call, as the page itself would get it. */
async function fromPage(page: Page, path: string, init: { method?: string; json?: unknown } = {}) {
  return page.evaluate(
    async ({ path, init }) => {
      const res = await fetch(path, {
        method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
        headers: init.json === undefined ? {} : { 'content-type': 'application/json' },
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
        credentials: 'same-origin',
      });
      return { status: res.status, body: await res.json() };
    },
    { path, init },
  );
}

/** Page errors, without the console lines a refused call prints by itself (the page shows those refusals). */
const unexpected = (o: OpenedPage) => o.errors.filter((e) => !/status of (403|404)/.test(e));

describeBrowser('teams, users and roles in the dashboard', () => {
  let d: Dashboard;
  let demoTeam: string;
  beforeAll(async () => {
    d = await startDashboard({ prefix: 'teams-users' });
    const device = await d.api(`/api/v1/devices/${d.deviceId}`);
    expect(device.status).toBe(200);
    demoTeam = device.body.team_id;
  });
  afterAll(async () => {
    await d?.close();
  });

  it('creates a team, invites a user by name who accepts from the link, changes their role, removes them, deletes the team', async () => {
    const ann = await createUser(d, 'invitee-ann', ['viewer']);
    const admin = await openPage(d);
    const { page } = admin;
    await signInAdmin(page, d, '/teams');
    await page.getByRole('heading', { name: 'Teams', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Default' }).waitFor();
    await expectAccessible(page, 'teams');

    await page.getByLabel('Team name').fill('Rocket lab');
    await page.getByRole('button', { name: 'Create team' }).click();
    await page.getByRole('heading', { name: 'Rocket lab', level: 1 }).waitFor();
    const teamId = new URL(page.url()).pathname.split('/')[2]!;
    const made = await d.api(`/api/v1/teams/${teamId}`);
    expect(made.body).toMatchObject({ name: 'Rocket lab', members: [{ username: d.env.state.adminUser, role: 'owner' }] });
    await page.getByRole('heading', { name: 'Invitations', level: 2 }).waitFor();
    await page.getByText('No invitations yet.').waitFor();
    await expectAccessible(page, 'new team');

    // The two-factor switch is the team's setting, as the relay holds it.
    const require2fa = page.getByLabel('Require two-factor login');
    await require2fa.check();
    await expect.poll(async () => (await d.api(`/api/v1/teams/${teamId}`)).body.require_2fa).toBe(true);
    await require2fa.uncheck();
    await expect.poll(async () => (await d.api(`/api/v1/teams/${teamId}`)).body.require_2fa).toBe(false);

    await page.getByLabel('E-mail address or user name').fill(ann.username);
    await page.getByRole('button', { name: 'Invite', exact: true }).click();
    const secret = page.locator('.once-secret code[data-secret]');
    await secret.waitFor();
    const link = (await secret.textContent())!;
    expect(link).toMatch(new RegExp(`^${d.origin}/teams\\?invitation=pri_[A-Za-z0-9_-]+$`));
    await page.locator('.once-secret').getByRole('button', { name: 'Copy' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(link);
    await page.getByRole('cell', { name: ann.username, exact: true }).waitFor();
    const pending = await d.api(`/api/v1/teams/${teamId}/invitations`);
    expect(pending.body.invitations).toMatchObject([{ invitee: ann.username, role: 'member', state: 'pending' }]);
    await expectAccessible(page, 'invitation link shown once');
    await screenshot(page, 'team-invited-1280-light');

    // The invitee opens the link in their own browser, signs in, and finds it filled in.
    const guest = await openPage(d);
    await signIn(guest.page, d.origin, ann.username, ann.password, new URL(link).pathname + new URL(link).search);
    const field = guest.page.getByLabel('Invitation link or token');
    await field.waitFor();
    expect(await field.inputValue()).toBe(new URL(link).searchParams.get('invitation'));
    // The token left the address as soon as it was read.
    expect(guest.page.url()).toBe(`${d.origin}/teams`);
    await guest.page.getByRole('heading', { name: 'Invitations to you' }).waitFor();
    await expectAccessible(guest.page, 'invitation to accept');
    await screenshot(guest.page, 'teams-invitation-1280-light');
    await guest.page.getByRole('button', { name: 'Accept the invitation to Rocket lab' }).click();
    await guest.page.getByRole('status').filter({ hasText: 'You joined Rocket lab as member' }).waitFor();
    await guest.page.getByRole('link', { name: 'Rocket lab' }).first().waitFor();
    await guest.page.getByRole('heading', { name: 'Invitations to you' }).waitFor({ state: 'detached' });
    const joined = await d.api(`/api/v1/teams/${teamId}`);
    expect(joined.body.members).toContainEqual(expect.objectContaining({ username: ann.username, role: 'member' }));
    await expectAccessible(guest.page, 'invitation accepted');

    // The admin sees them, makes them a team admin, then removes them.
    await page.reload();
    const role = page.getByLabel(`Team role of ${ann.username}`);
    await role.waitFor();
    // The invitations load beside the members: the accepted one shows once they have.
    await expect.poll(() => page.getByRole('row').filter({ hasText: ann.username }).filter({ hasText: 'accepted' }).count()).toBe(1);
    await role.selectOption('admin');
    await expect.poll(async () => (await d.api(`/api/v1/teams/${teamId}`)).body.members.find((m: { username: string }) => m.username === ann.username)?.role).toBe('admin');
    await page.getByRole('button', { name: `Remove ${ann.username}` }).click();
    const dialog = page.getByRole('dialog', { name: `Remove ${ann.username} from Rocket lab?` });
    await expectAccessible(page, 'remove member dialog');
    await dialog.getByRole('button', { name: 'Remove member' }).click();
    await role.waitFor({ state: 'detached' });
    const after = await d.api(`/api/v1/teams/${teamId}`);
    expect(after.body.members.map((m: { username: string }) => m.username)).toEqual([d.env.state.adminUser]);
    // And the relay agrees with what their page shows: the team is gone from their view.
    expect((await fromPage(guest.page, `/api/v1/teams/${teamId}`)).status).toBe(404);

    // The owner deletes the team, and is back on the list without it.
    await page.getByRole('button', { name: 'Delete team' }).click();
    await page.getByRole('dialog', { name: 'Delete Rocket lab?' }).getByRole('button', { name: 'Delete team' }).click();
    await page.getByRole('heading', { name: 'Teams', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Default' }).waitFor();
    expect(await page.getByRole('link', { name: 'Rocket lab' }).count()).toBe(0);
    expect((await d.api(`/api/v1/teams/${teamId}`)).status).toBe(404);

    expect(admin.foreign).toEqual([]);
    expect(guest.foreign).toEqual([]);
    expect(unexpected(admin)).toEqual([]);
    expect(unexpected(guest)).toEqual([]);
    await admin.context.close();
    await guest.context.close();
  });

  it('a custom role made with the picker gives a new user only what it holds', async () => {
    const admin = await openPage(d);
    const { page } = admin;
    await signInAdmin(page, d, '/users?tab=roles');
    await page.getByRole('heading', { name: 'System roles' }).waitFor();
    const picker = page.getByRole('group', { name: 'Permissions' });
    await picker.getByRole('group', { name: 'devices' }).waitFor();
    await expectAccessible(page, 'roles');
    await page.getByLabel('Role name').fill('Device reader');
    await page.getByLabel('Description').fill('Sees the devices of their teams');
    await picker.getByLabel('devices:read', { exact: true }).check();
    // A wildcard covers its group: ticking "all of devices" ticks and locks devices:read, and back.
    await picker.getByLabel('All of devices (devices:*)').check();
    expect(await picker.getByLabel('devices:read', { exact: true }).isDisabled()).toBe(true);
    await picker.getByLabel('All of devices (devices:*)').uncheck();
    await picker.getByLabel('devices:read', { exact: true }).check();
    await page.getByText('Picked: devices:read').waitFor();
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved the role Device reader' }).waitFor();
    const roles = await d.api('/api/v1/roles');
    const reader = roles.body.roles.find((r: { name: string }) => r.name === 'Device reader');
    expect(reader).toMatchObject({ permissions: ['devices:read'], is_system: false });
    await page.getByRole('button', { name: 'Edit Device reader' }).waitFor();
    await expectAccessible(page, 'custom role made');

    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('heading', { name: 'Create a user' }).waitFor();
    await page.getByLabel('User name').fill('reader-rob');
    await page.getByLabel('Password', { exact: true }).fill('correct-horse-battery-9');
    const roleChecks = page.getByRole('group', { name: 'Roles' });
    await roleChecks.getByLabel('Viewer').uncheck();
    await roleChecks.getByLabel('Device reader').check();
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: 'Created reader-rob' }).waitFor();
    const users = await d.api('/api/v1/users');
    const rob = users.body.users.find((u: { username: string }) => u.username === 'reader-rob');
    expect(rob.roles).toEqual([reader.id]);
    await page.getByRole('button', { name: 'Manage reader-rob' }).click();
    await page.getByRole('heading', { name: 'Manage reader-rob' }).waitFor();
    await expectAccessible(page, 'users, managing one');
    await screenshot(page, 'users-manage-1280-light');

    // Rob signs in: the navigation offers what devices:read allows, and not the rest.
    const user = await openPage(d);
    await signIn(user.page, d.origin, 'reader-rob', 'correct-horse-battery-9');
    const nav = user.page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Fleet' }).waitFor();
    for (const hidden of ['Users and roles', 'Add a device', 'Audit log']) expect(await nav.getByRole('link', { name: hidden }).count(), hidden).toBe(0);
    // In no team yet: the relay shows them no device.
    const before = await fromPage(user.page, '/api/v1/devices');
    expect(before.status).toBe(200);
    expect(before.body.devices.map((x: { id: string }) => x.id)).not.toContain(d.deviceId);

    // A page they open by its address shows the relay's refusal, in words, not a broken page.
    await user.page.goto(`${d.origin}/users`);
    const refusal = await fromPage(user.page, '/api/v1/users');
    expect(refusal.status).toBe(403);
    await user.page.getByRole('alert').filter({ hasText: refusal.body.error }).first().waitFor();
    await user.page.getByRole('heading', { name: 'Users and roles', level: 1 }).waitFor();
    await expectAccessible(user.page, 'users page refused');

    // The admin adds Rob to the demo device's team, on its team page.
    await page.goto(`${d.origin}/teams/${demoTeam}`);
    await page.getByRole('heading', { name: 'Add a member' }).waitFor();
    await page.getByRole('form', { name: 'Add a member' }).getByLabel('User name').fill('reader-rob');
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.getByLabel('Team role of reader-rob').waitFor();
    const team = await d.api(`/api/v1/teams/${demoTeam}`);
    expect(team.body.members).toContainEqual(expect.objectContaining({ username: 'reader-rob', role: 'member' }));
    await expectAccessible(page, 'team with a member added');

    // Now the fleet shows Rob the demo device.
    const now = await fromPage(user.page, '/api/v1/devices');
    expect(now.body.devices.map((x: { id: string }) => x.id)).toContain(d.deviceId);
    await user.page.getByRole('link', { name: 'Fleet' }).click();
    await user.page.getByRole('heading', { name: 'Fleet', level: 1 }).waitFor();
    await user.page.getByRole('main').getByText(d.env.state.devices[0]!.name).first().waitFor();
    await expectAccessible(user.page, 'fleet of a devices:read user');

    expect(admin.foreign).toEqual([]);
    expect(user.foreign).toEqual([]);
    expect(unexpected(admin)).toEqual([]);
    expect(unexpected(user)).toEqual([]);
    await admin.context.close();
    await user.context.close();
  });

  it('the picker offers only what its user holds, and shows the relay refusing the rest beside it', async () => {
    const made = await d.api('/api/v1/roles', { json: { name: 'Role keeper', permissions: ['users:read', 'roles:read', 'roles:write', 'devices:read', 'devices:admin'] } });
    expect(made.status).toBe(201);
    const kim = await createUser(d, 'keeper-kim', [made.body.id]);
    const o = await openPage(d);
    const { page } = o;
    await signIn(page, d.origin, kim.username, kim.password, '/users?tab=roles');
    const picker = page.getByRole('group', { name: 'Permissions' });
    await picker.getByRole('group', { name: 'devices' }).waitFor();
    expect(await picker.getByLabel('devices:admin', { exact: true }).isDisabled()).toBe(false);
    expect(await picker.getByLabel('users:write', { exact: true }).isDisabled()).toBe(true);
    expect(await picker.getByLabel('Everything (*)').isDisabled()).toBe(true);
    expect(await picker.getByLabel('All of devices (devices:*)').isDisabled()).toBe(true);

    // While Kim's page is open, devices:admin is taken from her role.
    const cut = await d.api(`/api/v1/roles/${made.body.id}`, { method: 'PUT', json: { permissions: ['users:read', 'roles:read', 'roles:write', 'devices:read'] } });
    expect(cut.status).toBe(200);
    await page.getByLabel('Role name').fill('Approver');
    await picker.getByLabel('devices:admin', { exact: true }).check();
    await page.getByRole('button', { name: 'Create role' }).click();
    const said = await fromPage(page, '/api/v1/roles', { json: { name: 'Approver', permissions: ['devices:admin'] } });
    expect(said.status).toBe(403);
    await picker.getByRole('alert').filter({ hasText: said.body.error }).waitFor();
    await picker.getByText('Not yours to grant: devices:admin').waitFor();
    expect((await d.api('/api/v1/roles')).body.roles.map((r: { name: string }) => r.name)).not.toContain('Approver');
    await expectAccessible(page, 'picker with the refusal');

    // Loaded again, the page knows: devices:admin can no longer be ticked.
    await page.reload();
    await picker.getByRole('group', { name: 'devices' }).waitFor();
    expect(await picker.getByLabel('devices:admin', { exact: true }).isDisabled()).toBe(true);
    expect(await picker.getByLabel('devices:read', { exact: true }).isDisabled()).toBe(false);
    expect(o.foreign).toEqual([]);
    expect(unexpected(o)).toEqual([]);
    await o.context.close();
  });

  it('each page holds up at 1280 and 390 px, light and dark', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      for (const [width, height] of [
        [1280, 800],
        [390, 844],
      ] as const) {
        const o = await openPage(d, { width, height, colorScheme });
        const { page } = o;
        await signInAdmin(page, d, '/teams');
        for (const [name, path, ready] of [
          ['teams', '/teams', 'Your teams|All teams'],
          ['team', `/teams/${demoTeam}`, 'Invite someone'],
          ['users', '/users', 'Create a user'],
          ['roles', '/users?tab=roles', 'Custom roles'],
        ] as const) {
          await page.goto(d.origin + path);
          await page.getByRole('heading', { name: new RegExp(`^(${ready})$`) }).waitFor();
          await page.getByText(/^Loading/).first().waitFor({ state: 'detached' });
          await expectAccessible(page, `${name} at ${width} px, ${colorScheme}`);
          // Nothing wider than the screen: a wide table scrolls inside its own box.
          expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${width} px`).toBeLessThanOrEqual(width);
          await screenshot(page, `${name}-${width}-${colorScheme}`);
        }
        expect(o.foreign).toEqual([]);
        expect(unexpected(o)).toEqual([]);
        await o.context.close();
      }
    }
  });
});
