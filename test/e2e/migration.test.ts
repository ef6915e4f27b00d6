// Upgrading an install from before teams (migrations 0000–0003) to this version (0004 teams, 0005
// KVM): a real relay's database is left at 0003 and filled as that version would have filled it,
// then a relay of this version starts on the same state and migrates. Everyone keeps what they
// could see, nothing is lost, the database now refuses a device without a team, and the operator
// role gains the KVM's permissions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { startRelay, type Relay } from '../../scripts/relay.ts';
import { hashPassword } from '../../worker/auth/password.ts';
import { freePort, tempDir } from './harness.ts';

const SECRETS = {
  SESSION_SECRET: 'migration-test-session-secret-0123456789abcdef',
  VARIABLES_KEY: '1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100',
};

let relay: Relay;
const now = Date.now();

async function login(username: string, password: string): Promise<string> {
  const res = await fetch(`${relay.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

async function get(path: string, token: string) {
  const res = await fetch(`${relay.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  const stateDir = join(await tempDir('migration'), 'state');
  const old = await startRelay({ port: await freePort(), stateDir, vars: SECRETS, migrateBefore: '0004' });
  const db = await old.mf!.getD1Database('DB');
  const pw = await hashPassword('old-password-1');
  // What 0003 held: a later admin, the first admin, a viewer; two devices with a tunnel and a token.
  await db.batch([
    db.prepare("INSERT INTO users (id, username, password_hash, roles, created_at) VALUES ('u-viewer', 'vera', ?1, '[\"viewer\"]', ?2)").bind(pw, now - 3000),
    db.prepare("INSERT INTO users (id, username, password_hash, roles, created_at) VALUES ('u-first', 'ada', ?1, '[\"admin\"]', ?2)").bind(pw, now - 2000),
    db.prepare("INSERT INTO users (id, username, password_hash, roles, created_at) VALUES ('u-later', 'bob', ?1, '[\"admin\"]', ?2)").bind(pw, now - 1000),
    db.prepare("INSERT INTO enrollment_tokens (id, name, token_hash, prefix, created_at) VALUES ('t1', 'old', 'h1', 'pre_x', ?1)").bind(now),
    db.prepare("INSERT INTO devices (id, name, status, registered_at) VALUES ('d1', 'pi-one', 'approved', ?1)").bind(now),
    db.prepare("INSERT INTO devices (id, name, status, registered_at) VALUES ('d2', 'pi-two', 'pending', ?1)").bind(now),
    db.prepare(
      "INSERT INTO tunnels (id, device_id, name, kind, target_host, target_port, created_at, updated_at) VALUES ('tu1', 'd1', 'web', 'http', '127.0.0.1', 80, ?1, ?1)",
    ).bind(now),
  ]);
  await old.stop();
  relay = await startRelay({ port: await freePort(), stateDir, vars: SECRETS });
}, 120_000);

afterAll(async () => {
  await relay?.stop();
});

describe('migration 0004 on an install from before teams', () => {
  it('puts everything in one team "Default", owned by the first admin, with every user a member', async () => {
    const db = await relay.mf!.getD1Database('DB');
    const teams = (await db.prepare('SELECT id, name FROM teams').all<{ id: string; name: string }>()).results;
    expect(teams.map((t) => t.name)).toEqual(['Default']);
    const team = teams[0]!.id;
    const members = (await db.prepare('SELECT user_id, role FROM team_members WHERE team_id = ?1 ORDER BY user_id').bind(team).all()).results;
    expect(members).toEqual([
      { user_id: 'u-first', role: 'owner' },
      { user_id: 'u-later', role: 'member' },
      { user_id: 'u-viewer', role: 'member' },
    ]);
    const devices = (await db.prepare('SELECT id, team_id FROM devices ORDER BY id').all()).results;
    expect(devices).toEqual([
      { id: 'd1', team_id: team },
      { id: 'd2', team_id: team },
    ]);
    expect((await db.prepare('SELECT team_id FROM enrollment_tokens').first())?.team_id).toBe(team);
    // The tunnel survived (rebuilding the devices table would have cascade-deleted it).
    expect((await db.prepare("SELECT name FROM tunnels WHERE id = 'tu1'").first())?.name).toBe('web');
  });

  it('lets the old users log in and see the same devices as before', async () => {
    const viewer = await login('vera', 'old-password-1');
    const listed = await get('/api/v1/devices', viewer);
    expect(listed.status).toBe(200);
    expect((listed.body.devices as { id: string }[]).map((d) => d.id).sort()).toEqual(['d1', 'd2']);
    const admin = await login('ada', 'old-password-1');
    expect((await get('/api/v1/devices/d1', admin)).status).toBe(200);
  });

  it('refuses, from now on, a device or an enrollment token without a team', async () => {
    const db = await relay.mf!.getD1Database('DB');
    await expect(db.prepare("INSERT INTO devices (id, name, status, registered_at) VALUES ('d3', 'x', 'pending', 1)").run()).rejects.toThrow(/team_id may not be NULL/);
    await expect(db.prepare("UPDATE devices SET team_id = NULL WHERE id = 'd1'").run()).rejects.toThrow(/team_id may not be NULL/);
    await expect(db.prepare("INSERT INTO enrollment_tokens (id, name, token_hash, prefix, created_at) VALUES ('t2', '', 'h2', 'p', 1)").run()).rejects.toThrow(
      /team_id may not be NULL/,
    );
  });

  it('gives the system roles the new permissions, keeping the old ones', async () => {
    const db = await relay.mf!.getD1Database('DB');
    const viewer = JSON.parse((await db.prepare("SELECT permissions FROM roles WHERE id = 'viewer'").first<{ permissions: string }>())!.permissions) as string[];
    expect(viewer).toEqual(expect.arrayContaining(['devices:read', 'tunnels:read', 'teams:read', 'variables:read']));
    expect(viewer).not.toContain('variables:write');
    const operator = JSON.parse((await db.prepare("SELECT permissions FROM roles WHERE id = 'operator'").first<{ permissions: string }>())!.permissions) as string[];
    expect(operator).toEqual(expect.arrayContaining(['tunnels:*', 'devices:control', 'devices:admin', 'teams:write', 'variables:write', 'audit:read']));
  });
});

describe('migration 0005 (KVM)', () => {
  const permissionsOf = async (role: string) => {
    const db = await relay.mf!.getD1Database('DB');
    return JSON.parse((await db.prepare('SELECT permissions FROM roles WHERE id = ?1').bind(role).first<{ permissions: string }>())!.permissions) as string[];
  };

  it('gives the operator hid:write and screen:read, once each, keeping the rest; the viewer neither', async () => {
    const operator = await permissionsOf('operator');
    expect(operator).toEqual(expect.arrayContaining(['hid:write', 'screen:read', 'tunnels:*', 'devices:control', 'audit:read']));
    const viewer = await permissionsOf('viewer');
    expect(viewer).not.toContain('hid:write');
    expect(viewer).not.toContain('screen:read');
    // Its role updates add nothing when run again (an install that gave the operator these by hand).
    const db = await relay.mf!.getD1Database('DB');
    const sql = await readFile(join(import.meta.dirname, '../../migrations/0005_kvm.sql'), 'utf8');
    const updates = sql.split('--> statement-breakpoint').map((s) => s.replace(/^\s*--.*$/gm, '').trim()).filter((s) => s.startsWith('UPDATE'));
    expect(updates.length).toBe(2);
    for (const u of updates) await db.prepare(u).run();
    const again = await permissionsOf('operator');
    expect(again).toEqual(operator);
    expect(again.filter((p) => p === 'hid:write' || p === 'screen:read').length).toBe(2);
  });

  it("adds the TinyPilot tables: a device's keys, and their tokens, go with it", async () => {
    const db = await relay.mf!.getD1Database('DB');
    await db.batch([
      db.prepare("INSERT INTO tinypilot_keys (id, device_id, team_id, name, prefix, key_hash, created_by, created_at) VALUES ('k2', 'd2', (SELECT team_id FROM devices WHERE id = 'd2'), 'old pi', 'ptp_abcdef', 'h-k2', 'u-first', ?1)").bind(now),
      db.prepare("INSERT INTO tinypilot_tokens (token_hash, key_id, created_at, expires_at) VALUES ('h-t2', 'k2', ?1, ?2)").bind(now, now + 1000),
    ]);
    await expect(db.prepare("INSERT INTO tinypilot_keys (id, device_id, team_id, name, prefix, key_hash, created_at) VALUES ('k3', 'd1', (SELECT team_id FROM devices WHERE id = 'd1'), 'dup', 'p', 'h-k2', 1)").run()).rejects.toThrow(/UNIQUE/);
    await db.prepare("DELETE FROM devices WHERE id = 'd2'").run();
    expect((await db.prepare("SELECT COUNT(*) AS n FROM tinypilot_keys WHERE id = 'k2'").first<{ n: number }>())?.n).toBe(0);
    expect((await db.prepare("SELECT COUNT(*) AS n FROM tinypilot_tokens WHERE key_id = 'k2'").first<{ n: number }>())?.n).toBe(0);
  });
});
