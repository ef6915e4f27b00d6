// Variables through the native API at the three levels: create, update, list and delete; who may
// read and write each level (an outsider does not see a team or device at all); the name rule and
// the size bound in bytes; secrets sealed in D1 and "***" in every answer; the precedence of the
// merged view (device over team over user) and effectiveVariables behind it; the key rotation;
// and an audit log that names variables but never holds a value.
import { env } from 'cloudflare:test';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { currentKeyId, open, seal, sealedKeyId } from '../../worker/auth/secret-box.ts';
import { ApiError } from '../../worker/errors.ts';
import { effectiveVariables } from '../../worker/variables/queries.ts';
import { RESEAL_BATCH } from '../../worker/variables/reseal.ts';
import { SECRET_MASK, VARIABLE_VALUE_MAX_BYTES, type Variable } from '../../shared/api/variables.ts';
import { api, joinTeam, TEST_TEAM, userWithKey } from './helpers.ts';
import { expectError, withEnv } from './auth-helpers.ts';
import { insertDevice } from './device-helpers.ts';

const OTHER_TEAM = 'vars-other-team';
const KEY_A = env.VARIABLES_KEY!;
const KEY_B = 'b0'.repeat(32);

interface User {
  userId: string;
  key: string;
}
let instanceAdmin: User;
let teamAdmin: User;
let member: User;
let viewer: User;
let outsider: User;
let device: string;
let otherDevice: string;

async function team(id: string, require2fa = false) {
  await env.DB.prepare('INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?1, ?2, 0, 0)').bind(id, require2fa ? 1 : 0).run();
}

beforeAll(async () => {
  await team(OTHER_TEAM);
  instanceAdmin = await userWithKey(['admin']);
  teamAdmin = await userWithKey(['operator']);
  await joinTeam(teamAdmin.userId, ['operator'], TEST_TEAM, 'admin');
  member = await userWithKey(['operator']);
  viewer = await userWithKey(['viewer']);
  outsider = await userWithKey(['operator'], undefined, OTHER_TEAM);
  await joinTeam(outsider.userId, ['operator'], OTHER_TEAM, 'owner');
  device = await insertDevice();
  otherDevice = await insertDevice({ team: OTHER_TEAM });
});

const unique = (base: string) => `${base}_${randomId(3).toUpperCase()}`;
const put = (path: string, key: string, body: unknown) => api(path, { key, method: 'PUT', json: body });
const del = (path: string, key: string) => api(path, { key, method: 'DELETE' });
const list = async (path: string, key: string) => {
  const res = await api(path, { key });
  expect(res.status).toBe(200);
  return ((await res.json()) as { variables: Variable[] }).variables;
};
const rowOf = (name: string) => env.DB.prepare('SELECT * FROM variables WHERE name = ?1').bind(name).all<Record<string, unknown>>();

const account = '/api/v1/account/variables';
const teamVars = (id = TEST_TEAM) => `/api/v1/teams/${id}/variables`;
const deviceVars = (id = device) => `/api/v1/devices/${id}/variables`;
const effective = (id = device) => `/api/v1/devices/${id}/variables/effective`;

describe('CRUD at each level', () => {
  const levels = [
    { level: 'user', path: () => account, key: () => member.key },
    { level: 'team', path: () => teamVars(), key: () => teamAdmin.key },
    { level: 'device', path: () => deviceVars(), key: () => member.key },
  ] as const;

  for (const l of levels) {
    it(`${l.level}: PUT creates (201) then updates (200), GET lists by name, DELETE removes (204, then 404)`, async () => {
      const name = unique('CRUD');
      const created = await put(`${l.path()}/${name}`, l.key(), { value: 'one' });
      expect(created.status).toBe(201);
      const v = (await created.json()) as Variable;
      expect(Object.keys(v).sort()).toEqual(['created_at', 'level', 'name', 'secret', 'updated_at', 'value']);
      expect(v).toMatchObject({ name, value: 'one', secret: false, level: l.level });
      expect(v.updated_at).toBe(v.created_at);

      const updated = await put(`${l.path()}/${name}`, l.key(), { value: 'two' });
      expect(updated.status).toBe(200);
      expect(await updated.json()).toMatchObject({ name, value: 'two', secret: false, level: l.level, created_at: v.created_at });

      await put(`${l.path()}/A${name}`, l.key(), { value: 'first by name' });
      const names = (await list(l.path(), l.key())).map((x) => x.name);
      expect(names).toContain(name);
      expect(names.indexOf(`A${name}`)).toBeLessThan(names.indexOf(name));

      expect((await del(`${l.path()}/${name}`, l.key())).status).toBe(204);
      expect((await list(l.path(), l.key())).map((x) => x.name)).not.toContain(name);
      await expectError(await del(`${l.path()}/${name}`, l.key()), 404, 'NOT_FOUND');
      expect((await rowOf(name)).results).toEqual([]);
    });
  }

  it("the account level is the caller's own: another user neither sees nor deletes it", async () => {
    const name = unique('MINE');
    expect((await put(`${account}/${name}`, member.key, { value: 'mine' })).status).toBe(201);
    expect((await list(account, teamAdmin.key)).map((x) => x.name)).not.toContain(name);
    await expectError(await del(`${account}/${name}`, teamAdmin.key), 404, 'NOT_FOUND');
    // The same name at another user's account is another variable.
    expect((await put(`${account}/${name}`, teamAdmin.key, { value: 'theirs' })).status).toBe(201);
    expect((await list(account, member.key)).find((x) => x.name === name)?.value).toBe('mine');
  });

  it('concurrent PUTs of one new name make one variable: one 201, the rest 200', async () => {
    const name = unique('RACE');
    const statuses = (await Promise.all(['a', 'b', 'c'].map((value) => put(`${deviceVars()}/${name}`, member.key, { value })))).map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 200, 201]);
    expect((await rowOf(name)).results).toHaveLength(1);
  });

  it('a new value racing {secret: true} ends as either order would: secret, with the new value (never plain, never the old one)', async () => {
    for (let round = 0; round < 5; round++) {
      const name = unique('SEALRACE');
      const path = `${deviceVars()}/${name}`;
      expect((await put(path, member.key, { value: 'old' })).status).toBe(201);
      const [a, b] = await Promise.all([put(path, member.key, { value: 'new' }), put(path, member.key, { secret: true })]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect((await rowOf(name)).results[0]).toMatchObject({ secret: 1, value: null });
      expect((await effectiveVariables(env, { userId: member.userId, deviceId: device })).get(name)).toEqual({ value: 'new', secret: true, level: 'device' });
    }
  });
});

describe('who may touch which level', () => {
  it('a member reads team variables but may not write them (403 TEAM_ROLE_REQUIRED); a team admin may', async () => {
    const name = unique('TEAMVAR');
    const refused = await expectError(await put(`${teamVars()}/${name}`, member.key, { value: 'x' }), 403, 'TEAM_ROLE_REQUIRED');
    expect(refused.details).toMatchObject({ team_id: TEST_TEAM, role: 'member', required: 'admin' });
    expect((await put(`${teamVars()}/${name}`, teamAdmin.key, { value: 'x' })).status).toBe(201);
    expect((await list(teamVars(), member.key)).map((x) => x.name)).toContain(name);
    await expectError(await del(`${teamVars()}/${name}`, member.key), 403, 'TEAM_ROLE_REQUIRED');
    expect((await rowOf(name)).results).toHaveLength(1);
  });

  it('an outsider gets 404 for a team and a device not theirs, reading or writing', async () => {
    const name = unique('HIDDEN');
    expect((await put(`${teamVars()}/${name}`, teamAdmin.key, { value: 'team' })).status).toBe(201);
    expect((await put(`${deviceVars()}/${name}`, member.key, { value: 'device' })).status).toBe(201);
    for (const res of [
      await api(teamVars(), { key: outsider.key }),
      await put(`${teamVars()}/${name}`, outsider.key, { value: 'overwritten' }),
      await del(`${teamVars()}/${name}`, outsider.key),
    ]) {
      const body = await expectError(res, 404, 'NOT_FOUND');
      expect(body.error).toBe('Team not found');
    }
    for (const res of [
      await api(deviceVars(), { key: outsider.key }),
      await put(`${deviceVars()}/${name}`, outsider.key, { value: 'overwritten' }),
      await del(`${deviceVars()}/${name}`, outsider.key),
      await api(effective(), { key: outsider.key }),
    ]) {
      const body = await expectError(res, 404, 'NOT_FOUND');
      expect(body.error).toBe('Device not found');
    }
    // Nothing changed.
    const rows = (await rowOf(name)).results;
    expect(rows.map((r) => r.value).sort()).toEqual(['device', 'team']);
    // And the other way round: the outsider's own team and device are theirs, not ours.
    expect((await put(`${deviceVars(otherDevice)}/${name}`, outsider.key, { value: 'other' })).status).toBe(201);
    await expectError(await api(deviceVars(otherDevice), { key: member.key }), 404, 'NOT_FOUND');
    await expectError(await api(teamVars(OTHER_TEAM), { key: teamAdmin.key }), 404, 'NOT_FOUND');
  });

  it('an instance admin acts in any team; an unknown team or device is 404 even for them', async () => {
    const name = unique('ADMIN');
    expect((await put(`${teamVars(OTHER_TEAM)}/${name}`, instanceAdmin.key, { value: 'x' })).status).toBe(201);
    await list(deviceVars(otherDevice), instanceAdmin.key);
    await expectError(await put(`${teamVars('no-such-team')}/${name}`, instanceAdmin.key, { value: 'x' }), 404, 'NOT_FOUND');
    await expectError(await api(teamVars('no-such-team'), { key: instanceAdmin.key }), 404, 'NOT_FOUND');
    await expectError(await put(`${deviceVars('f'.repeat(40))}/${name}`, instanceAdmin.key, { value: 'x' }), 404, 'NOT_FOUND');
  });

  it('a team that requires two-factor login keeps out a member without it (403 TWO_FACTOR_REQUIRED)', async () => {
    const vault = `vars-vault-${randomId(3)}`;
    await team(vault, true);
    const u = await userWithKey(['operator'], undefined, vault);
    await expectError(await api(teamVars(vault), { key: u.key }), 403, 'TWO_FACTOR_REQUIRED');
  });

  it('global permissions stay the ceiling: a viewer reads but cannot write (403 FORBIDDEN)', async () => {
    const name = unique('VIEW');
    expect((await put(`${deviceVars()}/${name}`, member.key, { value: 'x' })).status).toBe(201);
    expect((await list(deviceVars(), viewer.key)).map((x) => x.name)).toContain(name);
    for (const path of [`${account}/${name}`, `${deviceVars()}/${name}`]) {
      const body = await expectError(await put(path, viewer.key, { value: 'y' }), 403, 'FORBIDDEN');
      expect(body.details.required).toEqual(['variables:write']);
    }
    await expectError(await del(`${deviceVars()}/${name}`, viewer.key), 403, 'FORBIDDEN');
    const nobody = await userWithKey([]);
    await expectError(await api(account, { key: nobody.key }), 403, 'FORBIDDEN');
    await expectError(await api(account), 401, 'UNAUTHORIZED');
  });
});

describe('names and values', () => {
  async function issues(res: Response) {
    const body = await expectError(res, 400, 'VALIDATION_ERROR');
    return (body.details.issues as { path: string; message: string }[]).map((i) => `${i.path}: ${i.message}`);
  }

  it('refuses a name that is not a shell identifier, or longer than 128, saying why (400)', async () => {
    for (const bad of ['lower', 'Mixed_Case', '1ABC', 'A-B', 'A.B', 'ÄB', '%24HOME', 'A%20B', `A${'B'.repeat(128)}`]) {
      const found = await issues(await put(`${account}/${bad}`, member.key, { value: 'x' }));
      expect(found.join('\n')).toMatch(/^name: a variable name /);
      await issues(await del(`${account}/${bad}`, member.key));
    }
    for (const good of ['_', 'A', '_PRIVATE', 'A1_B2', 'X'.repeat(128)]) {
      expect((await put(`${account}/${good}`, member.key, { value: 'x' })).status).toBe(201);
    }
  });

  it('bounds a value in UTF-8 bytes: exactly 16 KiB is taken, one byte more is refused, whatever its length in characters', async () => {
    const name = unique('BIG');
    const exact = 'é'.repeat(VARIABLE_VALUE_MAX_BYTES / 2); // 2 bytes each: 16384 bytes, 8192 characters
    const res = await put(`${deviceVars()}/${name}`, member.key, { value: exact });
    expect(res.status).toBe(201);
    expect(((await res.json()) as Variable).value).toBe(exact);
    for (const over of [`${exact}a`, `${'€'.repeat(5461)}ab`, `${'🔑'.repeat(4095)}abcde`]) {
      expect(new TextEncoder().encode(over).length).toBe(VARIABLE_VALUE_MAX_BYTES + 1);
      expect(over.length).toBeLessThan(VARIABLE_VALUE_MAX_BYTES);
      expect(await issues(await put(`${deviceVars()}/${name}`, member.key, { value: over, secret: true }))).toEqual([
        `value: a value is at most ${VARIABLE_VALUE_MAX_BYTES} bytes of UTF-8`,
      ]);
    }
    // Refused means unchanged.
    expect((await rowOf(name)).results[0]).toMatchObject({ value: exact, secret: 0 });
    // Exactly the bound as a secret too.
    expect((await put(`${deviceVars()}/${unique('BIGSECRET')}`, member.key, { value: exact, secret: true })).status).toBe(201);
  });

  it('refuses a body that is not {value?, secret?} with at least one of them (400), and a new variable without a value (422)', async () => {
    const name = unique('BODY');
    for (const body of [{}, { value: 5 }, { value: null }, { secret: 'yes' }, []]) {
      await expectError(await put(`${account}/${name}`, member.key, body), 400, 'VALIDATION_ERROR');
    }
    await expectError(await put(`${account}/${name}`, member.key, { secret: true }), 422, 'VARIABLE_VALUE_REQUIRED');
    await expectError(await put(`${account}/${name}`, member.key, { secret: false }), 422, 'VARIABLE_VALUE_REQUIRED');
    expect((await rowOf(name)).results).toEqual([]);
  });
});

describe('secrets', () => {
  const SECRET = 'sk_live_0123456789abcdefSECRET';

  /** Every string in the row, and the row as JSON, lacks `plaintext`. */
  async function assertSealed(name: string, plaintext: string) {
    const rows = (await rowOf(name)).results;
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.secret).toBe(1);
    expect(row.value).toBeNull();
    expect(typeof row.sealed).toBe('string');
    expect(sealedKeyId(row.sealed as string)).toBe(await currentKeyId(env));
    for (const [column, v] of Object.entries(row)) expect({ column, has: String(v).includes(plaintext) }).toEqual({ column, has: false });
    expect(JSON.stringify(row)).not.toContain(plaintext);
    return row;
  }

  it('the D1 row of a secret holds no plaintext, and every answer shows "***"', async () => {
    const name = unique('TOKEN');
    const res = await put(`${deviceVars()}/${name}`, member.key, { value: SECRET, secret: true });
    expect(res.status).toBe(201);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(JSON.parse(text)).toMatchObject({ name, value: SECRET_MASK, secret: true, level: 'device' });
    const row = await assertSealed(name, SECRET);
    // It opens at its own row only.
    expect(await open(env, row.sealed as string, `variable:${row.id}`)).toBe(SECRET);

    const updated = await put(`${deviceVars()}/${name}`, member.key, { value: `${SECRET}-2` });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ value: SECRET_MASK, secret: true });
    await assertSealed(name, SECRET);

    for (const path of [deviceVars(), effective()]) {
      const raw = await (await api(path, { key: member.key })).text();
      expect(raw).not.toContain(SECRET);
      expect((JSON.parse(raw) as { variables: Variable[] }).variables.find((v) => v.name === name)).toMatchObject({ value: SECRET_MASK, secret: true });
    }
  });

  it('"***" at the account and team levels too', async () => {
    const name = unique('PW');
    for (const [path, key] of [
      [account, member.key],
      [teamVars(), teamAdmin.key],
    ] as const) {
      const res = await put(`${path}/${name}`, key, { value: SECRET, secret: true });
      expect(await res.json()).toMatchObject({ value: SECRET_MASK, secret: true });
      expect((await list(path, key)).find((v) => v.name === name)).toMatchObject({ value: SECRET_MASK, secret: true });
    }
    const merged = await (await api(effective(), { key: member.key })).text();
    expect(merged).not.toContain(SECRET);
  });

  it('plain → secret seals the current value; secret → plain needs a new value (422)', async () => {
    const name = unique('FLIP');
    const path = `${deviceVars()}/${name}`;
    expect((await put(path, member.key, { value: 'was-plain-value' })).status).toBe(201);
    const sealedRes = await put(path, member.key, { secret: true });
    expect(sealedRes.status).toBe(200);
    expect(await sealedRes.json()).toMatchObject({ value: SECRET_MASK, secret: true });
    await assertSealed(name, 'was-plain-value');
    expect((await effectiveVariables(env, { userId: member.userId, deviceId: device })).get(name)).toEqual({ value: 'was-plain-value', secret: true, level: 'device' });

    // {secret: true} again changes nothing; {secret: false} alone would need the secret read back.
    expect((await put(path, member.key, { secret: true })).status).toBe(200);
    await expectError(await put(path, member.key, { secret: false }), 422, 'VARIABLE_VALUE_REQUIRED');
    await assertSealed(name, 'was-plain-value');

    const plain = await put(path, member.key, { value: 'now plain', secret: false });
    expect(plain.status).toBe(200);
    expect(await plain.json()).toMatchObject({ value: 'now plain', secret: false });
    expect((await rowOf(name)).results[0]).toMatchObject({ value: 'now plain', sealed: null, secret: 0 });
  });

  it('a secret cannot be set on a relay without VARIABLES_KEY (503), and nothing logs the value', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m));
    const name = unique('NOKEY');
    const res = await withEnv({ VARIABLES_KEY: undefined }, `${account}/${name}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${member.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: SECRET, secret: true }),
    });
    const text = await res.text();
    expect(res.status).toBe(503);
    expect(JSON.parse(text).code).toBe('SECRETS_UNAVAILABLE');
    expect(text).not.toContain(SECRET);
    for (const spy of spies) for (const call of spy.mock.calls) expect(JSON.stringify(call.map(String))).not.toContain(SECRET);
    expect((await rowOf(name)).results).toEqual([]);
  });

  afterEach(() => vi.restoreAllMocks());
});

describe('precedence: device over team over user', () => {
  it('the effective view merges the three levels for the caller, each with its level', async () => {
    const [all, teamUser, userOnly, deviceUser] = [unique('ALL'), unique('TU'), unique('UO'), unique('DU')];
    const setAccount = (n: string, value: string, key = member.key) => put(`${account}/${n}`, key, { value });
    for (const [n, value] of [
      [all, 'from user'],
      [teamUser, 'from user'],
      [userOnly, 'from user'],
      [deviceUser, 'from user'],
    ]) {
      expect((await setAccount(n!, value!)).status).toBe(201);
    }
    await put(`${teamVars()}/${all}`, teamAdmin.key, { value: 'from team' });
    await put(`${teamVars()}/${teamUser}`, teamAdmin.key, { value: 'from team', secret: true });
    await put(`${deviceVars()}/${all}`, member.key, { value: 'from device' });
    await put(`${deviceVars()}/${deviceUser}`, member.key, { value: 'from device' });
    // Another user's account variables are theirs, not part of the caller's view.
    const theirs = unique('THEIRS');
    await setAccount(theirs, 'someone else', teamAdmin.key);
    // Another team's and another device's are not either.
    await put(`${teamVars(OTHER_TEAM)}/${userOnly}`, outsider.key, { value: 'other team' });
    await put(`${deviceVars(otherDevice)}/${userOnly}`, outsider.key, { value: 'other device' });

    const merged = new Map((await list(effective(), member.key)).map((v) => [v.name, v]));
    expect(merged.get(all)).toMatchObject({ value: 'from device', level: 'device', secret: false });
    expect(merged.get(teamUser)).toMatchObject({ value: SECRET_MASK, level: 'team', secret: true });
    expect(merged.get(userOnly)).toMatchObject({ value: 'from user', level: 'user' });
    expect(merged.get(deviceUser)).toMatchObject({ value: 'from device', level: 'device' });
    expect(merged.has(theirs)).toBe(false);
    const names = [...merged.keys()];
    expect(names).toEqual([...names].sort());

    // effectiveVariables is the same set with secrets opened, for the run that needs them.
    const opened = await effectiveVariables(env, { userId: member.userId, deviceId: device });
    expect(opened.get(all)).toEqual({ value: 'from device', secret: false, level: 'device' });
    expect(opened.get(teamUser)).toEqual({ value: 'from team', secret: true, level: 'team' });
    expect(opened.get(userOnly)).toEqual({ value: 'from user', secret: false, level: 'user' });
    expect(opened.get(deviceUser)).toEqual({ value: 'from device', secret: false, level: 'device' });
    expect(opened.has(theirs)).toBe(false);
    expect([...opened.keys()]).toEqual(names);

    // The other user sees their own account variable instead, over the same device and team.
    const forThem = await effectiveVariables(env, { userId: teamAdmin.userId, deviceId: device });
    expect(forThem.get(theirs)).toEqual({ value: 'someone else', secret: false, level: 'user' });
    expect(forThem.get(all)?.level).toBe('device');
    expect(forThem.has(userOnly)).toBe(false);

    // Deleting the device's variable lets the team's show through.
    await del(`${deviceVars()}/${all}`, member.key);
    expect((await list(effective(), member.key)).find((v) => v.name === all)).toMatchObject({ value: 'from team', level: 'team' });
  });
});

describe('key rotation', () => {
  const resealWith = async (keys: { VARIABLES_KEY?: string; VARIABLES_KEY_PREVIOUS?: string }, key = instanceAdmin.key) =>
    withEnv({ VARIABLES_KEY_PREVIOUS: undefined, ...keys }, '/api/v1/admin/reseal', { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  const keyId = (k: string) => currentKeyId({ VARIABLES_KEY: k });
  const sealedUnder = async () => {
    const { results } = await env.DB.prepare(
      'SELECT substr(sealed, 1, 8) AS k FROM variables WHERE sealed IS NOT NULL UNION ALL SELECT substr(totp_secret, 1, 8) FROM users WHERE totp_secret IS NOT NULL',
    ).all<{ k: string }>();
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.k] = (counts[r.k] ?? 0) + 1;
    return counts;
  };

  it('only an instance admin may reseal', async () => {
    await expectError(await resealWith({ VARIABLES_KEY: KEY_A }, teamAdmin.key), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/admin/reseal', { key: member.key, method: 'POST' }), 403, 'FORBIDDEN');
  });

  it('moves every secret (variables and TOTP secrets) to the new key in batches; values still open', async () => {
    const [a, b] = [await keyId(KEY_A), await keyId(KEY_B)];
    const name = unique('ROTATE');
    expect((await put(`${deviceVars()}/${name}`, member.key, { value: 'rotated secret', secret: true })).status).toBe(201);
    // More than one batch's worth, written straight to D1 (sealed as the API would).
    const bulkDevice = await insertDevice();
    const stmts: D1PreparedStatement[] = [];
    for (let i = 0; i < RESEAL_BATCH; i++) {
      const id = `bulk${i}`;
      stmts.push(
        env.DB.prepare("INSERT INTO variables (id, level, device_id, name, secret, value, sealed, created_at, updated_at) VALUES (?1, 'device', ?2, ?3, 1, NULL, ?4, 0, 0)").bind(
          id,
          bulkDevice,
          `BULK_${i}`,
          await seal(env, `bulk value ${i}`, `variable:${id}`),
        ),
      );
    }
    await env.DB.batch(stmts);
    const totpUser = await userWithKey(['viewer']);
    await env.DB.prepare('UPDATE users SET totp_secret = ?1 WHERE id = ?2').bind(await seal(env, 'JBSWY3DPEHPK3PXP', `totp:${totpUser.userId}`), totpUser.userId).run();

    const before = await sealedUnder();
    const total = before[a]!;
    expect(total).toBeGreaterThan(RESEAL_BATCH);
    expect(before[b]).toBeUndefined();

    const rotating = { VARIABLES_KEY: KEY_B, VARIABLES_KEY_PREVIOUS: KEY_A };
    const first = await resealWith(rotating);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ resealed: RESEAL_BATCH, remaining: total - RESEAL_BATCH, failed: 0 });
    const second = await resealWith(rotating);
    expect(await second.json()).toEqual({ resealed: total - RESEAL_BATCH, remaining: 0, failed: 0 });
    expect(await (await resealWith(rotating)).json()).toEqual({ resealed: 0, remaining: 0, failed: 0 });
    expect(await sealedUnder()).toEqual({ [b]: total });

    // With only the new key, everything still opens.
    const onlyB = { ...env, VARIABLES_KEY: KEY_B, VARIABLES_KEY_PREVIOUS: undefined };
    expect((await effectiveVariables(onlyB, { userId: member.userId, deviceId: device })).get(name)).toEqual({ value: 'rotated secret', secret: true, level: 'device' });
    expect((await effectiveVariables(onlyB, { userId: member.userId, deviceId: bulkDevice })).get(`BULK_${RESEAL_BATCH - 1}`)?.value).toBe(`bulk value ${RESEAL_BATCH - 1}`);
    const totp = await env.DB.prepare('SELECT totp_secret FROM users WHERE id = ?1').bind(totpUser.userId).first<string>('totp_secret');
    expect(await open(onlyB, totp!, `totp:${totpUser.userId}`)).toBe('JBSWY3DPEHPK3PXP');

    // A value still under A when A is gone: counted as failed, not a 500, and left as it is.
    const stale = unique('STALE');
    expect((await put(`${deviceVars()}/${stale}`, member.key, { value: 'under A', secret: true })).status).toBe(201);
    const staleRow = (await rowOf(stale)).results[0]!;
    const lost = await resealWith({ VARIABLES_KEY: KEY_B });
    expect(lost.status).toBe(200);
    expect(await lost.json()).toEqual({ resealed: 0, remaining: 0, failed: 1 });
    expect((await rowOf(stale)).results[0]!.sealed).toBe(staleRow.sealed);
    const refused = await effectiveVariables(onlyB, { userId: member.userId, deviceId: device }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(ApiError);
    expect({ status: (refused as ApiError).status, code: (refused as ApiError).code }).toEqual({ status: 503, code: 'SECRETS_UNAVAILABLE' });
    expect((refused as ApiError).message).not.toContain('under A');
    // The API never opens a secret, so listing still works under B alone.
    const listed = await withEnv({ VARIABLES_KEY: KEY_B }, effective(), { headers: { authorization: `Bearer ${member.key}` } });
    expect(listed.status).toBe(200);

    // Rotating back to A, so the rest of the file's secrets open under the test env's key again.
    // One value under B was tampered with: it is reported as failed on every call and left as it
    // is; the one under A (stale) is already under the current key.
    await env.DB.prepare("UPDATE variables SET sealed = substr(sealed, 1, length(sealed) - 4) || 'AAAA' WHERE id = 'bulk0'").run();
    const back = { VARIABLES_KEY: KEY_A, VARIABLES_KEY_PREVIOUS: KEY_B };
    let moved = 0;
    let last = { resealed: 0, remaining: 1, failed: 0 };
    for (let call = 0; call < 4 && last.remaining > 0; call++) {
      const res = await resealWith(back);
      expect(res.status).toBe(200);
      last = (await res.json()) as typeof last;
      expect(last.failed).toBe(1);
      moved += last.resealed;
    }
    expect({ moved, remaining: last.remaining }).toEqual({ moved: total - 1, remaining: 0 });
    // total - 1 moved back, and stale; bulk0 stays under B.
    expect(await sealedUnder()).toEqual({ [a]: total, [b]: 1 });
    expect((await effectiveVariables(env, { userId: member.userId, deviceId: device })).get(stale)?.value).toBe('under A');
    await expect(effectiveVariables(env, { userId: member.userId, deviceId: bulkDevice })).rejects.toThrow(ApiError);
  });

  it('without VARIABLES_KEY, reseal says so (503 SECRETS_UNAVAILABLE)', async () => {
    await expectError(await resealWith({ VARIABLES_KEY: undefined }), 503, 'SECRETS_UNAVAILABLE');
  });
});

describe('audit', () => {
  it('records variable.create, update and delete by name, level and secret, with the team, and never a value', async () => {
    const name = unique('AUDITED');
    const values = ['audit-plain-value-1', 'audit-secret-value-2', 'audit-team-value-3', 'audit-user-value-4'];
    await put(`${deviceVars()}/${name}`, member.key, { value: values[0] });
    await put(`${deviceVars()}/${name}`, member.key, { value: values[1], secret: true });
    await del(`${deviceVars()}/${name}`, member.key);
    await put(`${teamVars()}/${name}`, teamAdmin.key, { value: values[2], secret: true });
    await put(`${account}/${name}`, member.key, { value: values[3] });
    // A refused write is no change: not recorded.
    await put(`${teamVars()}/${name}`, member.key, { value: 'refused' });

    const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE action LIKE 'variable.%' AND details LIKE ?1 ORDER BY id")
      .bind(`%${name}%`)
      .all<Record<string, unknown>>();
    expect(
      results.map((r) => ({ action: r.action, actor: r.actor_id, team: r.team_id, type: r.target_type, details: JSON.parse(r.details as string) })),
    ).toEqual([
      { action: 'variable.create', actor: member.userId, team: TEST_TEAM, type: 'variable', details: { name, level: 'device', secret: false } },
      { action: 'variable.update', actor: member.userId, team: TEST_TEAM, type: 'variable', details: { name, level: 'device', secret: true } },
      { action: 'variable.delete', actor: member.userId, team: TEST_TEAM, type: 'variable', details: { name, level: 'device', secret: true } },
      { action: 'variable.create', actor: teamAdmin.userId, team: TEST_TEAM, type: 'variable', details: { name, level: 'team', secret: true } },
      { action: 'variable.create', actor: member.userId, team: null, type: 'variable', details: { name, level: 'user', secret: false } },
    ]);
    const everything = JSON.stringify((await env.DB.prepare('SELECT * FROM audit_log').all()).results);
    for (const v of [...values, 'rotated secret', 'sk_live_0123456789abcdefSECRET', 'bulk value']) expect(everything).not.toContain(v);
  });

  it('records variables.reseal with its counts', async () => {
    const res = await withEnv({ VARIABLES_KEY_PREVIOUS: undefined }, '/api/v1/admin/reseal', { method: 'POST', headers: { authorization: `Bearer ${instanceAdmin.key}` } });
    const counts = await res.json();
    const entry = await env.DB.prepare("SELECT * FROM audit_log WHERE action = 'variables.reseal' ORDER BY id DESC LIMIT 1").first<Record<string, unknown>>();
    expect(entry).toMatchObject({ actor_id: instanceAdmin.userId, team_id: null });
    expect(JSON.parse(entry!.details as string)).toEqual(counts);
  });
});
