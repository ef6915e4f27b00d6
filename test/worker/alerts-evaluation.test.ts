// Alert evaluation in a device hub, sample by sample (AlertsCapability on a real DeviceHub's
// SQLite and the real D1, with a fake hub context that records notifications): the hold (fires
// only once the window is covered, and not on one spike), no flapping on a series that crosses
// the threshold back and forth, escalation, the recovery hold, presence rules (a process or
// container missing), offline, the cause and the sentence, and rules that change under it.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { insertDevice } from './device-helpers.ts';
import { ALERT_OFFLINE, alertRows, insertRule, withBench } from './alerts-helpers.ts';
import { TEST_TEAM } from './helpers.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';
import { MAX_BUCKETS } from '../../durable-objects/capabilities/alert-state.ts';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const at = (s: number) => T0 + s * 1000;
const hello = { t: 'hello' as const, protocol: PROTOCOL_VERSION, agent_version: 't', capabilities: [] };

async function device(name = 'web-1') {
  return insertDevice({ name });
}

describe('threshold rules', () => {
  it('fire once the hold is covered, not before, and a single spike does not fire', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 60, deviceId: dev });
    await withBench(dev, async (b) => {
      // One spike of 100 % among 10 % samples: its 60 s average never reaches 90.
      for (let s = 0; s <= 120; s += 5) await b.feed(at(s), { cpu: s === 30 ? 100 : 10 });
      expect(b.notified).toEqual([]);
      // Sustained 95 % from 125 s on: the window is covered from the start, but the average reaches 90 only when the window is nearly all high.
      const firedAt: number[] = [];
      for (let s = 125; s <= 250; s += 5) {
        await b.feed(at(s), { cpu: 95 });
        if (b.notified.length && !firedAt.length) firedAt.push(s);
      }
      // Average over [t-60, t] of 5 s samples (13 points): ≥ 90 needs all 13 at 95 (12 give 88.5) → t - 60 ≥ 125.
      expect(firedAt).toEqual([185]);
      expect(b.notified.map((n) => n.event)).toEqual(['fired']);
    });
    const [row] = await alertRows(dev);
    expect(row).toMatchObject({ state: 'firing', level: 'warning', threshold: 90, team_id: TEST_TEAM });
  });

  it('do not fire before hold_seconds of data exist, even when every sample is over', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 60, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 0; s < 60; s += 5) await b.feed(at(s), { cpu: 99 });
      expect(b.notified).toEqual([]);
      await b.feed(at(60), { cpu: 99 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired']);
      expect(b.notified[0]!.alert.value).toBe(99);
    });
  });

  it("a device clock that goes back starts the window again, without the points of the 'future'", async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 60, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 100; s <= 155; s += 5) await b.feed(at(s), { cpu: 10 });
      for (let s = 0; s < 60; s += 5) await b.feed(at(s), { cpu: 95 });
      expect(b.notified).toEqual([]);
      await b.feed(at(60), { cpu: 95 });
      expect(b.notified.map((n) => [n.event, n.alert.value])).toEqual([['fired', 95]]);
    });
  });

  it('state and windows survive a restart of the hub (hibernation): the hold goes on, a firing alert resolves rather than fires again', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 60, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 0; s < 30; s += 5) await b.feed(at(s), { cpu: 95 });
      b.restart();
      for (let s = 30; s < 60; s += 5) await b.feed(at(s), { cpu: 95 });
      expect(b.notified).toEqual([]);
      await b.feed(at(60), { cpu: 95 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired']);
      b.restart();
      for (let s = 65; s <= 130; s += 5) await b.feed(at(s), { cpu: 10 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'resolved']);
    });
    expect(await alertRows(dev)).toHaveLength(1);
  });

  it('a sample costs one storage write however many rules there are', async () => {
    const dev = await device();
    for (const metric of ['cpu', 'memory', 'disk', 'load']) await insertRule({ metric, warning: 1000, hold: 300, deviceId: dev });
    await insertRule({ metric: 'process', target: 'nginx', hold: 300, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 0; s < 100; s += 5) await b.feed(at(s), { watched: { processes: { nginx: 1 }, containers: {} } });
      expect(b.writes.value).toBe(20);
    });
  });

  it('a one-hour hold keeps a bounded ring and fires once the hour is covered', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 3600, deviceId: dev });
    await withBench(dev, async (b) => {
      let firedAt: number | null = null;
      for (let s = 0; s <= 3700; s += 5) {
        await b.feed(at(s), { cpu: 95 });
        if (firedAt === null && b.notified.length) firedAt = s;
      }
      expect(firedAt).toBe(3600);
      const stored = b.ctx.state.storage.kv.get<Record<string, { ring: unknown[] }>>('alerts:state')!;
      expect(Object.values(stored)[0]!.ring.length).toBeLessThanOrEqual(MAX_BUCKETS + 2);
    });
  });

  it('hold 0 fires on the sample itself', async () => {
    const dev = await device();
    await insertRule({ metric: 'memory', critical: 80, hold: 0, deviceId: dev });
    await withBench(dev, async (b) => {
      await b.feed(at(0), { memory: 50 });
      expect(b.notified).toEqual([]);
      await b.feed(at(5) + 123, { memory: 85 }); // a sample's time has milliseconds
      expect(b.notified.map((n) => [n.event, n.alert.level])).toEqual([['fired', 'critical']]);
    });
  });

  it('a series crossing the threshold back and forth fires once and resolves once', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 30, recovery: 30, deviceId: dev });
    await withBench(dev, async (b) => {
      const values: number[] = [];
      // Phase 1: 85/97 alternating (average 91): half the samples are under 90.
      for (let i = 0; i < 30; i++) values.push(i % 2 ? 97 : 85);
      // Phase 2: 80/93 alternating (average 86.5): half the samples are over 90.
      for (let i = 0; i < 30; i++) values.push(i % 2 ? 93 : 80);
      // Phase 3: 85/97 again, briefly (shorter than the hold can cover on its own).
      for (let i = 0; i < 3; i++) values.push(i % 2 ? 97 : 85);
      for (let i = 0; i < 20; i++) values.push(20);
      let crossings = 0;
      for (let i = 0; i < values.length; i++) {
        if (i && values[i]! >= 90 !== values[i - 1]! >= 90) crossings++;
        await b.feed(at(i * 5), { cpu: values[i] });
      }
      expect(crossings).toBeGreaterThan(40); // the raw series flaps…
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'resolved']); // …the alert does not
    });
    const rows = await alertRows(dev);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'resolved' });
    expect(rows[0]!.resolvedAt).not.toBeNull();
  });

  it('a firing warning whose average reaches critical escalates: the same alert, level critical', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 80, critical: 95, hold: 10, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 0; s <= 10; s += 5) await b.feed(at(s), { cpu: 85 });
      expect(b.notified.map((n) => [n.event, n.alert.level])).toEqual([['fired', 'warning']]);
      for (let s = 15; s <= 30; s += 5) await b.feed(at(s), { cpu: 99 });
      expect(b.notified.map((n) => [n.event, n.alert.level])).toEqual([
        ['fired', 'warning'],
        ['escalated', 'critical'],
      ]);
      expect(b.notified[1]!.alert.id).toBe(b.notified[0]!.alert.id);
      expect(b.notified[1]!.alert.threshold).toBe(95);
      // Falling under critical but staying over warning does not resolve it (it resolves under the threshold it fired at).
      for (let s = 35; s <= 80; s += 5) await b.feed(at(s), { cpu: 85 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'escalated']);
      for (let s = 85; s <= 110; s += 5) await b.feed(at(s), { cpu: 10 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'escalated', 'resolved']);
    });
    const rows = await alertRows(dev);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ level: 'critical', state: 'resolved', threshold: 95 });
  });

  it('a sustained critical fires critical at once, not warning then critical', async () => {
    const dev = await device();
    await insertRule({ metric: 'temperature', warning: 70, critical: 85, hold: 10, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 0; s <= 10; s += 5) await b.feed(at(s), { temperature: 90 });
      expect(b.notified.map((n) => [n.event, n.alert.level])).toEqual([['fired', 'critical']]);
    });
  });

  it('resolve only after the recovery hold of low values', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 10, recovery: 60, deviceId: dev });
    await withBench(dev, async (b) => {
      for (let s = 0; s <= 10; s += 5) await b.feed(at(s), { cpu: 95 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired']);
      // The average falls under 90 with the first low sample, but the recovery window counts
      // samples since the alert fired (at 10 s) and must cover 60 s of them: 70 s.
      let resolvedAt: number | null = null;
      for (let s = 15; s <= 120; s += 5) {
        await b.feed(at(s), { cpu: 10 });
        if (resolvedAt === null && b.notified.length === 2) resolvedAt = s;
      }
      expect(resolvedAt).toBe(70);
      // A spike after it resolved does not fire again (the hold is 10 s of average ≥ 90).
      await b.feed(at(125), { cpu: 100 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'resolved']);
    });
  });

  it('a disk rule with a mount point reads that mount; the device not measuring a series never fires', async () => {
    const dev = await device();
    await insertRule({ metric: 'disk', target: '/home', warning: 90, hold: 0, deviceId: dev });
    await insertRule({ metric: 'temperature', warning: 1, hold: 0, deviceId: dev });
    await withBench(dev, async (b) => {
      await b.feed(at(0), { disks: [{ mountpoint: '/', percent: 95 }, { mountpoint: '/home', percent: 50 }] });
      expect(b.notified).toEqual([]);
      await b.feed(at(5), { disks: [{ mountpoint: '/', percent: 10 }, { mountpoint: '/home', percent: 92 }] });
      expect(b.notified.map((n) => n.alert.message)).toEqual(['Disk /home 92.0 % ≥ 90 % (warning) on web-1']);
    });
  });
});

describe('the alert names its cause', () => {
  it('a cpu alert: the top processes by CPU, in the message and in cause', async () => {
    const dev = await device('web-1');
    await insertRule({ metric: 'cpu', critical: 90, hold: 300, deviceId: dev });
    const top = [
      { pid: 33, name: 'nginx', cpu: 2.5, memory: 50_000_000 },
      { pid: 812, name: 'stress-ng', cpu: 97, memory: 10_000_000 },
    ];
    await withBench(dev, async (b) => {
      for (let s = 0; s <= 300; s += 30) await b.feed(at(s), { cpu: 93.2, topByCpu: top });
      expect(b.notified).toHaveLength(1);
      const a = b.notified[0]!.alert;
      expect(a.message).toBe('CPU 93.2 % over 5 min ≥ 90 % (critical) on web-1; top: stress-ng (pid 812) 97 %, nginx (pid 33) 3 %');
      expect(a.cause.processes!.map((p) => p.name)).toEqual(['stress-ng', 'nginx']);
      expect(a).toMatchObject({ type: 'cpu', level: 'critical', value: 93.2, threshold: 90, agent_id: dev, state: 'firing', acknowledged: false });
    });
    const [row] = await alertRows(dev);
    expect(row!.cause.processes![0]!.name).toBe('stress-ng');
  });

  it('a memory alert: the top processes by memory', async () => {
    const dev = await device('db-1');
    await insertRule({ metric: 'memory', warning: 80, hold: 0, deviceId: dev });
    const byMem = [{ pid: 99, name: 'postgres', cpu: 1, memory: 3 * 1024 ** 3 }];
    await withBench(dev, async (b) => {
      await b.feed(at(0), { memory: 85, topByMemory: byMem, topByCpu: [{ pid: 1, name: 'init', cpu: 50, memory: 1 }] });
      expect(b.notified[0]!.alert.message).toBe('Memory 85.0 % ≥ 80 % (warning) on db-1; top: postgres (pid 99) 3.0 GiB');
      expect(b.notified[0]!.alert.cause.processes!.map((p) => p.name)).toEqual(['postgres']);
    });
  });
});

describe('presence rules', () => {
  it('a process missing for the hold fires, with the level of the rule; back for the recovery hold resolves', async () => {
    const dev = await device('web-1');
    await insertRule({ metric: 'process', target: 'nginx', level: 'critical', hold: 20, recovery: 10, deviceId: dev });
    await withBench(dev, async (b) => {
      const running = { processes: { nginx: 2 }, containers: {} };
      const gone = { processes: { nginx: 0 }, containers: {} };
      await b.feed(at(0), { watched: running });
      // Missing at 5 and 10, back at 15: the hold never passes.
      await b.feed(at(5), { watched: gone });
      await b.feed(at(10), { watched: { processes: {}, containers: {} } });
      await b.feed(at(15), { watched: running });
      // A sample that says nothing of watched names (an agent not told yet) changes nothing.
      await b.feed(at(20));
      expect(b.notified).toEqual([]);
      for (let s = 25; s < 45; s += 5) await b.feed(at(s), { watched: gone });
      expect(b.notified).toEqual([]); // missing since 25 s: 15 s so far
      await b.feed(at(45), { watched: gone });
      expect(b.notified.map((n) => [n.event, n.alert.level])).toEqual([['fired', 'critical']]);
      expect(b.notified[0]!.alert.message).toBe('Process nginx not running for 20 s (critical) on web-1');
      await b.feed(at(50), { watched: running });
      await b.feed(at(55), { watched: gone });
      await b.feed(at(60), { watched: running });
      await b.feed(at(65), { watched: running });
      expect(b.notified).toHaveLength(1);
      await b.feed(at(70), { watched: running });
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'resolved']);
    });
  });

  it('a container not running fires, naming the containers', async () => {
    const dev = await device('web-1');
    await insertRule({ metric: 'container', target: 'db', hold: 0, deviceId: dev });
    const containers = [
      { id: 'a1', name: 'web', status: 'running', cpu: 1, memory: 1 },
      { id: 'b2', name: 'db', status: 'exited', cpu: 0, memory: 0 },
    ];
    await withBench(dev, async (b) => {
      await b.feed(at(0), { containers, watched: { processes: {}, containers: { db: 'running' } } });
      expect(b.notified).toEqual([]);
      await b.feed(at(5), { containers, watched: { processes: {}, containers: { db: 'exited' } } });
      const a = b.notified[0]!.alert;
      expect(a.message).toBe('Container db not running (exited) (warning) on web-1; containers: db (exited), web (running)');
      expect(a.cause.containers!.map((c) => c.name)).toEqual(['db', 'web']);
    });
  });

  it('watched names the process and container targets of the rules that reach the device', async () => {
    const dev = await device();
    await insertRule({ metric: 'process', target: 'nginx', deviceId: dev });
    await insertRule({ metric: 'process', target: 'sshd', teamId: TEST_TEAM });
    await insertRule({ metric: 'container', target: 'db', teamId: null });
    await insertRule({ metric: 'process', target: 'disabled', deviceId: dev, enabled: false });
    await insertRule({ metric: 'process', target: 'elsewhere', deviceId: await device('other') });
    await withBench(dev, async (b) => {
      expect(await b.cap.watched(b.ctx)).toEqual({ processes: ['nginx', 'sshd'], containers: ['db'] });
    });
  });
});

describe('offline rules', () => {
  it('fire at gone + hold if the agent is still away, and resolve on hello', async () => {
    const dev = await device('pi-7');
    await insertRule({ metric: 'offline', level: 'critical', hold: 120, deviceId: dev });
    await withBench(dev, async (b) => {
      b.online.value = false;
      b.goneAt.value = at(0);
      await b.cap.onGone(b.ctx);
      expect(b.deadlines.get(ALERT_OFFLINE)).toBe(at(120));
      await b.cap.offline(b.ctx, at(60));
      expect(b.notified).toEqual([]);
      expect(b.deadlines.get(ALERT_OFFLINE)).toBe(at(120));
      await b.cap.offline(b.ctx, at(120));
      expect(b.notified.map((n) => [n.event, n.alert.level, n.alert.message])).toEqual([['fired', 'critical', 'pi-7 offline for 2 min (critical)']]);
      // The deadline again (a retry of the alarm) does not fire twice.
      await b.cap.offline(b.ctx, at(130));
      expect(b.notified).toHaveLength(1);
      b.online.value = true;
      await b.cap.onHello(b.ctx, hello);
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'resolved']);
    });
  });

  it('do not fire when the agent came back within the hold', async () => {
    const dev = await device();
    await insertRule({ metric: 'offline', hold: 120, deviceId: dev });
    await withBench(dev, async (b) => {
      b.online.value = false;
      b.goneAt.value = at(0);
      await b.cap.onGone(b.ctx);
      b.online.value = true;
      await b.cap.onHello(b.ctx, hello);
      await b.cap.offline(b.ctx, at(120));
      expect(b.notified).toEqual([]);
      // Gone again later: the hold starts from the new departure.
      b.online.value = false;
      b.goneAt.value = at(500);
      await b.cap.onGone(b.ctx);
      await b.cap.offline(b.ctx, at(560));
      expect(b.notified).toEqual([]);
      await b.cap.offline(b.ctx, at(620));
      expect(b.notified.map((n) => n.event)).toEqual(['fired']);
    });
  });
});

describe('rules that change', () => {
  it('a disabled rule resolves its alert; a rule of another team or device never reaches this one', async () => {
    const dev = await device();
    await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES ('other-team', 'Other', 0, 0, 0)").run();
    const rule = await insertRule({ metric: 'cpu', warning: 50, hold: 0, teamId: TEST_TEAM });
    await insertRule({ metric: 'cpu', warning: 1, hold: 0, teamId: 'other-team' });
    await insertRule({ metric: 'cpu', warning: 1, hold: 0, deviceId: await device('other-device') });
    await withBench(dev, async (b) => {
      await b.feed(at(0), { cpu: 60 });
      expect(b.notified.map((n) => [n.event, n.alert.rule_id])).toEqual([['fired', rule]]);
      await env.DB.prepare('UPDATE alert_rules SET enabled = 0 WHERE id = ?1').bind(rule).run();
      await b.cap.rulesChanged(b.ctx);
      expect(b.notified.map((n) => n.event)).toEqual(['fired', 'resolved']);
      await b.feed(at(5), { cpu: 60 });
      expect(b.notified).toHaveLength(2);
    });
  });

  it('a new rule is seen after rulesChanged (the cache is dropped), and a deleted one is forgotten', async () => {
    const dev = await device();
    await withBench(dev, async (b) => {
      await b.feed(at(0), { cpu: 99 });
      const rule = await insertRule({ metric: 'cpu', warning: 90, hold: 0, deviceId: dev });
      await b.feed(at(5), { cpu: 99 });
      expect(b.notified).toEqual([]); // still the cached (empty) rules
      await b.cap.rulesChanged(b.ctx);
      await b.feed(at(10), { cpu: 99 });
      expect(b.notified.map((n) => n.event)).toEqual(['fired']);
      await env.DB.prepare('DELETE FROM alert_rules WHERE id = ?1').bind(rule).run();
      await b.cap.rulesChanged(b.ctx);
      expect(b.notified).toHaveLength(1);
      expect(await alertRows(dev)).toEqual([]); // deleted with its rule
      expect(b.ctx.state.storage.kv.get('alerts:state')).toEqual({});
    });
  });

  it('two samples evaluated at once still fire one alert', async () => {
    const dev = await device();
    await insertRule({ metric: 'cpu', warning: 90, hold: 0, deviceId: dev });
    await withBench(dev, async (b) => {
      await Promise.all([b.feed(at(0), { cpu: 99 }), b.feed(at(1), { cpu: 99 }), b.feed(at(2), { cpu: 99 })]);
      expect(b.notified).toHaveLength(1);
      expect(await alertRows(dev)).toHaveLength(1);
    });
  });
});
