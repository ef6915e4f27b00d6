// The logs store and its query routes: a fake agent's batches acknowledged, stored once and
// searchable; every filter of Tyto's GET /api/v1/logs and the native route; the write cost; bad
// and hostile queries; teams and permissions.
import { runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { makeTeam, userWithPermissions } from './kvm-helpers.ts';
import { hub, line, logDevice, storeLines } from './logs-helpers.ts';
import { LogStore, PRUNE_STEP } from '../../durable-objects/capabilities/logs-store.ts';
import type { LogEntry, LogPage } from '../../shared/api/logs.ts';
import type { LogLine } from '../../shared/protocol/logs.ts';

let admin: string;
let viewer: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
  viewer = (await userWithKey(['viewer'])).key;
});

const page = async (path: string, key = admin): Promise<LogPage> => {
  const res = await api(path, { key });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as LogPage;
};
const messages = (p: LogPage) => p.entries.map((e) => e.message);
const T = (iso: string) => Date.parse(iso);
const token = () => `tok${crypto.randomUUID().replaceAll('-', '').slice(0, 10)}`;

describe('a batch from the agent', () => {
  it('is acknowledged, stored with ids <device>:<seq> increasing, and found by a word', async () => {
    const dev = await logDevice(admin);
    await dev.send([line({ message: 'first boot', ts: T('2026-12-01T10:00:00Z') }), line({ message: 'usb device connected', ts: T('2026-12-01T10:00:01Z'), level: 'notice' })]);
    await dev.send([line({ message: 'disk almost full', ts: T('2026-12-01T10:00:02Z'), level: 'warning', fields: { _PID: '42' } })]);
    const all = await page(`/api/v1/devices/${dev.deviceId}/logs`);
    expect(all.total).toBe(3);
    expect(messages(all)).toEqual(['disk almost full', 'usb device connected', 'first boot']);
    const seqs = all.entries.map((e) => Number(e.id.split(':')[1]));
    expect(all.entries.every((e) => e.id.startsWith(`${dev.deviceId}:`) && e.agent_id === dev.deviceId)).toBe(true);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(all.entries[0]).toMatchObject({ timestamp: '2026-12-01T10:00:02.000Z', level: 'warning', source: 'journal', source_name: 'sshd.service', fields: { _PID: '42' } });
    expect(all.entries[1]!.fields).toEqual({});
    expect(messages(await page(`/api/v1/devices/${dev.deviceId}/logs?q=usb`))).toEqual(['usb device connected']);
  });

  it('sent again (its ack was lost) is acknowledged again and stored once; an older seq of the spool too', async () => {
    const dev = await logDevice(admin);
    await dev.send([line({ message: 'once' })], { seq: 1 });
    await dev.send([line({ message: 'twice' })], { seq: 2 });
    expect(await dev.send([line({ message: 'once' })], { seq: 1 })).toBe(2);
    expect(await dev.send([line({ message: 'twice' })], { seq: 2 })).toBe(2);
    const p = await page(`/api/v1/devices/${dev.deviceId}/logs`);
    expect(p.total).toBe(2);
    // A new spool (a new boot) starts at 1 again and is stored.
    await dev.send([line({ message: 'new spool' })], { boot: 'another-boot', seq: 1 });
    expect((await page(`/api/v1/devices/${dev.deviceId}/logs`)).total).toBe(3);
  });

  it('that says the spool dropped lines leaves a warning line saying how many, which a search finds', async () => {
    const dev = await logDevice(admin);
    await dev.send([line({ message: 'after the gap', ts: T('2026-12-01T11:00:00Z') })], { dropped: 42 });
    const p = await page(`/api/v1/devices/${dev.deviceId}/logs?level=warning`);
    expect(p.entries).toHaveLength(1);
    expect(p.entries[0]).toMatchObject({ level: 'warning', message: '42 log lines were dropped on the device (spool full)', fields: { dropped: '42' }, timestamp: '2026-12-01T11:00:00.000Z' });
    expect((await page(`/api/v1/devices/${dev.deviceId}/logs?q=dropped%20spool`)).total).toBe(1);
  });

  it('is bounded where its schema is not: at most 16 fields a line, a time past what a Date holds clamped', async () => {
    const dev = await logDevice(admin);
    const fields = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`F${i}`, 'v']));
    await dev.send([line({ message: 'many fields', fields }), line({ message: 'from the far future', ts: 8.7e15 })]);
    const p = await page(`/api/v1/devices/${dev.deviceId}/logs`);
    expect(p.entries.find((e) => e.message === 'many fields')!.fields).toSatisfy((f: Record<string, string>) => Object.keys(f).length === 16);
    expect(p.entries.find((e) => e.message === 'from the far future')!.timestamp).toBe(new Date(8.64e15).toISOString());
  });
});

describe('GET /api/v1/logs filters', () => {
  let dev: string;
  const lines: LogLine[] = [
    line({ ts: T('2026-12-01T10:00:00Z'), source: 'journal', source_name: 'sshd.service', level: 'info', message: 'Accepted publickey for pi from 10.0.0.2' }),
    line({ ts: T('2026-12-01T10:01:00Z'), source: 'journal', source_name: 'kernel', level: 'error', message: 'usb 1-1: device descriptor read error' }),
    line({ ts: T('2026-12-01T10:02:00Z'), source: 'file', source_name: 'app.log', level: 'warning', message: 'Disk usage above ninety percent' }),
    line({ ts: T('2026-12-01T10:03:00Z'), source: 'file', source_name: 'app.log', level: 'debug', message: 'cache warmed in 12ms' }),
    line({ ts: T('2026-12-01T10:04:00Z'), source: 'journal', source_name: 'kernel', level: 'critical', message: 'Under-voltage detected! Café' }),
  ];
  beforeAll(async () => {
    dev = await insertDevice();
    await storeLines(dev, lines);
  });
  const q = (query: string) => page(`/api/v1/logs?agent_id=${dev}&${query}`);

  it('agent_id alone: every line, newest first, total', async () => {
    const p = await q('');
    expect(p.total).toBe(5);
    expect(p.entries.map((e) => e.timestamp)).toEqual(['10:04', '10:03', '10:02', '10:01', '10:00'].map((t) => `2026-12-01T${t}:00.000Z`));
  });
  it('source, source_name, and a level list', async () => {
    expect((await q('source=file')).total).toBe(2);
    expect(messages(await q('source_name=kernel'))).toEqual(['Under-voltage detected! Café', 'usb 1-1: device descriptor read error']);
    expect(messages(await q('level=error,critical'))).toEqual(['Under-voltage detected! Café', 'usb 1-1: device descriptor read error']);
    expect(messages(await q('level=WARNING'))).toEqual(['Disk usage above ninety percent']);
    expect((await q('source=file&level=debug')).total).toBe(1);
  });
  it('q: words ANDed, a phrase, a prefix, case and accents ignored, operators as plain words', async () => {
    expect(messages(await q('q=descriptor%20usb'))).toEqual(['usb 1-1: device descriptor read error']);
    expect((await q('q=descriptor%20publickey')).total).toBe(0);
    expect(messages(await q(`q=${encodeURIComponent('"read error"')}`))).toHaveLength(1);
    expect((await q(`q=${encodeURIComponent('"error read"')}`)).total).toBe(0);
    expect(messages(await q('q=publi*'))).toEqual(['Accepted publickey for pi from 10.0.0.2']);
    expect((await q('q=publi')).total).toBe(0);
    expect(messages(await q('q=DISK'))).toEqual(['Disk usage above ninety percent']);
    expect(messages(await q('q=cafe'))).toEqual(['Under-voltage detected! Café']);
    expect(messages(await q(`q=${encodeURIComponent('voltage OR ninety')}`))).toEqual([]);
  });
  it('from and to (inclusive), limit, offset, and total counting all matches', async () => {
    expect(messages(await q('from=2026-12-01T10:01:00Z&to=2026-12-01T10:02:00Z'))).toEqual(['Disk usage above ninety percent', 'usb 1-1: device descriptor read error']);
    expect((await q('from=2026-12-01T11:01:00%2B01:00')).total).toBe(4);
    const p = await q('limit=2&offset=1');
    expect(p.total).toBe(5);
    expect(messages(p)).toEqual(['cache warmed in 12ms', 'Disk usage above ninety percent']);
    expect((await q('offset=5')).entries).toEqual([]);
    expect((await page(`/api/v1/devices/${dev}/logs?source=journal&limit=1`)).total).toBe(3);
  });
});

describe('bad and hostile queries', () => {
  let dev: string;
  beforeAll(async () => {
    dev = await insertDevice();
    await storeLines(dev, [line({ message: 'near usb port "quoted" (paren) star* col:value' })]);
  });
  const bad = async (query: string, param: string) => {
    const res = await api(`/api/v1/logs?agent_id=${dev}&${query}`, { key: admin });
    expect(res.status, query).toBe(400);
    const body = (await res.json()) as { code: string; details: { issues: { path: string }[] } };
    expect(body.code).toBe('VALIDATION_ERROR');
    expect(body.details.issues.map((i) => i.path), query).toContain(param);
  };
  it('a bad time, level or range is a 400 naming the parameter', async () => {
    await bad('from=yesterday', 'from');
    await bad('to=2026-13-01T00:00:00Z', 'to');
    await bad('level=loud', 'level');
    await bad('level=error,loud', 'level');
    await bad('from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z', 'from');
    await bad('limit=0', 'limit');
    await bad('limit=1001', 'limit');
    await bad('offset=999999', 'offset');
    await bad('offset=9500&limit=1000', 'offset');
    await bad('offset=-1', 'offset');
    await bad('source=syslog', 'source');
  });
  it('a q with no word is a 400 naming q; hostile q strings are words or nothing, never a 500', async () => {
    for (const s of ['"', '*', '""', ') (', '(', '^', ':', '-', '"*"']) await bad(`q=${encodeURIComponent(s)}`, 'q');
    await bad(`q=${'a'.repeat(257)}`, 'q');
    const found: Record<string, number> = {};
    for (const s of [') OR (', 'NEAR(', 'NEAR(usb', 'usb) OR (port', 'usb) (port', 'a" OR "b', 'col:value', '^near', 'star*', '"quoted', 'paren)', 'NOT usb', '"near usb" AND', 'x'.repeat(256), 'usb*port', '\u0000usb', "port'; DROP TABLE log_lines; --", 'usb"*"port']) {
      const res = await api(`/api/v1/logs?agent_id=${dev}&q=${encodeURIComponent(s)}`, { key: admin });
      expect(res.status, s).toBe(200);
      found[s] = ((await res.json()) as LogPage).total;
    }
    expect(found).toMatchObject({ ') OR (': 0, 'NEAR(usb': 1, 'usb) OR (port': 0, 'usb) (port': 1, 'col:value': 1, '^near': 1, 'star*': 1, '"quoted': 1, 'paren)': 1, '"near usb" AND': 0, 'NEAR(': 1 });
    expect(found["port'; DROP TABLE log_lines; --"]).toBe(0);
    expect((await page(`/api/v1/logs?agent_id=${dev}`)).total).toBe(1);
  });
});

describe('teams and permissions', () => {
  let mine: string;
  let theirs: string;
  const word = token();
  beforeAll(async () => {
    await makeTeam('other-team');
    mine = await insertDevice();
    theirs = await insertDevice({ team: 'other-team' });
    await storeLines(mine, [line({ message: `${word} mine` })]);
    await storeLines(theirs, [line({ message: `${word} theirs` })]);
  });

  it("another team's device is 404 by agent_id and the native route, and absent from the fleet-wide results", async () => {
    expect((await api(`/api/v1/logs?agent_id=${theirs}`, { key: viewer })).status).toBe(404);
    expect((await api(`/api/v1/devices/${theirs}/logs`, { key: viewer })).status).toBe(404);
    const res = await api(`/api/v1/logs?q=${word}`, { key: viewer });
    expect(res.status).toBe(200);
    const p = (await res.json()) as LogPage;
    expect(p.entries.map((e) => e.agent_id)).toEqual([mine]);
    expect(p.total).toBe(1);
    // An instance admin sees both teams.
    expect((await page(`/api/v1/logs?q=${word}`)).entries.map((e) => e.agent_id).sort()).toEqual([mine, theirs].sort());
  });

  it('a viewer may read (logs:read); a user without logs:read is 403', async () => {
    expect((await api(`/api/v1/devices/${mine}/logs`, { key: viewer })).status).toBe(200);
    const noLogs = (await userWithPermissions(['devices:read'])).key;
    for (const path of [`/api/v1/devices/${mine}/logs`, `/api/v1/logs?agent_id=${mine}`, '/api/v1/logs', '/api/v1/logs/stream']) {
      expect((await api(path, { key: noLogs })).status, path).toBe(403);
    }
    expect((await api('/api/v1/logs')).status).toBe(401);
  });
});

describe('fleet-wide', () => {
  it('merges the devices newest first, slices with offset and limit, and sums the totals', async () => {
    const word = token();
    const a = await insertDevice();
    const b = await insertDevice();
    const at = (m: number) => T('2026-12-01T12:00:00Z') + m * 60_000;
    await storeLines(a, [0, 2, 4, 6].map((m) => line({ ts: at(m), message: `${word} a${m}` })));
    await storeLines(b, [1, 3, 5].map((m) => line({ ts: at(m), message: `${word} b${m}` })));
    const res = await api(`/api/v1/logs?q=${word}&limit=3&offset=2`, { key: viewer });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-pirelay-log-devices')).toMatch(/^\d+\/\d+$/);
    const p = (await res.json()) as LogPage;
    expect(p.total).toBe(7);
    expect(messages(p).map((m) => m.split(' ')[1])).toEqual(['a4', 'b3', 'a2']);
    const all = await page(`/api/v1/logs?q=${word}&limit=10`, viewer);
    expect(all.entries.map((e: LogEntry) => e.message.split(' ')[1])).toEqual(['a6', 'b5', 'a4', 'b3', 'a2', 'b1', 'a0']);
  });
});

describe('retention and write cost', () => {
  it('prunes by count and by age in bounded steps, the FTS index with the lines', async () => {
    const id = `retention-${token()}`;
    await runInDurableObject(hub(id), (_i, state) => {
      const store = new LogStore(state.storage, id);
      const old = Date.now() - 10 * 86_400_000;
      const mk = (n: number, word: string) => Array.from({ length: n }, (_, i) => line({ message: `${word} line ${i}` }));
      store.store({ t: 'logs', boot: 'b', seq: 1, lines: mk(500, 'ancient') }, old);
      store.store({ t: 'logs', boot: 'b', seq: 2, lines: mk(500, 'ancient') }, old);
      store.store({ t: 'logs', boot: 'b', seq: 3, lines: mk(300, 'recent') }, Date.now());
      const query = (q?: string) => store.query({ q, limit: 1, offset: 0 }).total;
      expect(query()).toBe(1300);
      // By count: keep 1200; one step deletes 100.
      expect(store.prune({ retentionMs: 30 * 86_400_000, maxLines: 1200 }, Date.now())).toMatchObject({ deleted: 100, more: false });
      expect(query()).toBe(1200);
      // By age: 900 ancient lines left, more than a step: two steps.
      const week = { retentionMs: 7 * 86_400_000, maxLines: 1_000_000 };
      expect(store.prune(week, Date.now())).toMatchObject({ deleted: 900, more: false });
      expect(query('ancient')).toBe(0);
      expect(query('recent')).toBe(300);
      expect(store.prune(week, Date.now())).toMatchObject({ deleted: 0, more: false });
      // The index holds exactly the lines kept.
      state.storage.sql.exec(`INSERT INTO log_fts (log_fts, rank) VALUES ('integrity-check', 1)`);
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM log_fts WHERE log_fts MATCH 'line'").one().n).toBe(300);
    });
  });

  it("the hub's log-retention deadline prunes what is past LOG_RETENTION_DAYS (7) and comes back daily; a stored batch sets it", async () => {
    const id = await insertDevice();
    await storeLines(id, [line({ message: 'ten days old' })], Date.now() - 10 * 86_400_000);
    await storeLines(id, [line({ message: 'fresh' })]);
    await runInDurableObject(hub(id), async (instance, state) => {
      await state.storage.put('scheduler:deadlines', { 'log-retention': 0 });
      await instance.alarm();
      const due = (await state.storage.get<Record<string, number>>('scheduler:deadlines'))!['log-retention']!;
      expect(due).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    });
    expect(messages(await page(`/api/v1/devices/${id}/logs`))).toEqual(['fresh']);
    const dev = await logDevice(admin);
    await dev.send([line()]);
    await runInDurableObject(hub(dev.deviceId), async (_i, state) => {
      expect(Object.keys((await state.storage.get<Record<string, number>>('scheduler:deadlines'))!)).toContain('log-retention');
    });
  });

  it('a prune step deletes at most PRUNE_STEP lines and says more is due', async () => {
    const id = `retention-${token()}`;
    await runInDurableObject(hub(id), (_i, state) => {
      const store = new LogStore(state.storage, id);
      for (let s = 1; s <= 5; s++) store.store({ t: 'logs', boot: 'b', seq: s, lines: Array.from({ length: 500 }, () => line()) }, 0);
      const limits = { retentionMs: 86_400_000, maxLines: 100 };
      const step = store.prune(limits, Date.now());
      expect(step).toMatchObject({ deleted: PRUNE_STEP, more: true });
      console.log(`hub SQLite rows written to prune ${PRUNE_STEP} log lines: ${step.rowsWritten}`);
      expect(store.prune(limits, Date.now())).toMatchObject({ deleted: PRUNE_STEP, more: true });
      expect(store.prune(limits, Date.now())).toMatchObject({ deleted: 500, more: false });
      // Seqs are never reused, even after every line went.
      expect(store.store({ t: 'logs', boot: 'b', seq: 6, lines: [line()] }, Date.now()).entries[0]!.id).toBe(`${id}:2501`);
    });
  });

  it('writes about three SQLite rows per line (the line, its index entry, the ts index)', async () => {
    const id = `cost-${token()}`;
    const written = await runInDurableObject(hub(id), (_i, state) => {
      const store = new LogStore(state.storage, id);
      let rows = 0;
      for (let s = 1; s <= 2; s++) {
        const lines = Array.from({ length: 500 }, (_, i) => line({ message: `kernel: usb 1-${i % 4}: new high-speed USB device number ${i} using dwc_otg` }));
        rows += store.store({ t: 'logs', boot: 'b', seq: s, lines }, Date.now()).rowsWritten;
      }
      return rows;
    });
    console.log(`hub SQLite rows written per 1,000 log lines (2 batches of 500): ${written}`);
    expect(written).toBeGreaterThanOrEqual(2000);
    expect(written).toBeLessThanOrEqual(3100);
  });
});
