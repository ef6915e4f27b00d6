// The hub's metrics store on a clock the test controls (inside a real DeviceHub's SQLite): rollup
// arithmetic (a 1h bucket equals the one built from its 5m buckets and from its raw points,
// exactly), late points merged into closed buckets and picked up by open ones, a point sent twice
// stored once, retention per resolution in bounded steps (and from env), history and export
// pages, and the rows a sample writes.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { hub } from './metrics-helpers.ts';
import { addPoint, addStats, GRACE_MS, MetricsStore, PRUNE_STEP, quantized, retentionOf, type Retention, type Stats } from '../../durable-objects/capabilities/metrics-store.ts';
import { METRICS_ROLLUP, type MetricsCapability } from '../../durable-objects/capabilities/metrics.ts';
import type { HubContext } from '../../durable-objects/capabilities/types.ts';
import { DEFAULT_RETENTION_MS, type Series } from '../../shared/api/series.ts';

const H = Date.parse('2026-11-30T10:00:00Z');
const MIN = 60_000;
const HOUR = 3_600_000;

/** Runs `fn` with a fresh hub's store. */
const withStore = <T>(fn: (store: MetricsStore, state: DurableObjectState) => T) =>
  runInDurableObject(hub(`store-${crypto.randomUUID()}`), (_i, state) => fn(new MetricsStore(state.storage), state));

/** A deterministic point: values with two (and some with three) decimals, `gpu` only on some points. */
function point(i: number): Series {
  const s: Series = { cpu: ((i * 37) % 10_000) / 100, memory: 40 + ((i * 13) % 700) / 100, net_rx: (i * 7919) % 100_000, load1: ((i * 3) % 1000) / 1000 };
  if (i % 3 === 0) s.gpu = (i % 97) + 0.25;
  return s;
}

/** The stats of these points, folded straight from raw (the reference). */
function fold(points: Series[]): Stats {
  const stats: Stats = {};
  for (const p of points) addPoint(stats, quantized(p));
  return stats;
}

describe('rollups', () => {
  it('a 1h bucket equals the one built from its 5m buckets and from its raw points, exactly; every 1m and 5m bucket too', async () => {
    await withStore((store) => {
      const points: { ts: number; s: Series }[] = [];
      // Every 5 s for 1 h 2 min, each received 300 ms after it was taken.
      for (let i = 0; i * 5000 < HOUR + 2 * MIN; i++) points.push({ ts: H + i * 5000, s: point(i) });
      for (const p of points) expect(store.store(p.ts, p.s, p.ts + 300)).toBe(true);
      const inHour = points.filter((p) => p.ts < H + HOUR);
      const fromRaw = fold(inHour.map((p) => p.s));
      const oneHour = store.rollup('1h', H);
      expect(oneHour).toEqual(fromRaw);
      // Its 5m buckets, folded, give the same; and each 5m bucket equals its 1m buckets and its raw points.
      const fiveMinutes: Stats = {};
      for (let b = H; b < H + HOUR; b += 5 * MIN) {
        const five = store.rollup('5m', b)!;
        addStats(fiveMinutes, five);
        const ones: Stats = {};
        for (let m = b; m < b + 5 * MIN; m += MIN) {
          const one = store.rollup('1m', m)!;
          expect(one).toEqual(fold(points.filter((p) => p.ts >= m && p.ts < m + MIN).map((p) => p.s)));
          addStats(ones, one);
        }
        expect(five).toEqual(ones);
        expect(five).toEqual(fold(points.filter((p) => p.ts >= b && p.ts < b + 5 * MIN).map((p) => p.s)));
      }
      expect(fiveMinutes).toEqual(oneHour);
      // Integers of hundredths: the counts are the points', a series absent from some points counts only where present.
      expect(oneHour!.cpu![1]).toBe(720);
      expect(oneHour!.gpu![1]).toBe(240);
      expect(Object.values(oneHour!).every((s) => s.every(Number.isInteger))).toBe(true);
      // The open hour is not built yet.
      expect(store.rollup('1h', H + HOUR)).toBeNull();
      // History's avg/min/max come from the sums: the hour's cpu average is sum / count in the series' unit.
      const [row] = store.rows('1h', H, H, 10);
      const [sum, count, min, max] = oneHour!.cpu!;
      expect(row!.series.cpu).toEqual({ avg: Math.round((sum * 100) / count) / 10_000, min: min / 100, max: max / 100 });
    });
  });

  it('merges a late point (a backlog, at its own timestamp) into its closed buckets with the same arithmetic; an open bucket picks it up when it closes', async () => {
    await withStore((store) => {
      const live: { ts: number; s: Series }[] = [];
      for (let i = 0; i < 12 * 60; i++) live.push({ ts: H + i * 5000, s: point(i) }); // the hour, every 5 s, less one gap
      const gap = (ts: number) => ts >= H + 20 * MIN && ts < H + 23 * MIN;
      // Live up to 10:23 with nothing from 10:20 to 10:23 (the device was offline).
      for (const p of live.filter((p) => !gap(p.ts) && p.ts < H + 23 * MIN)) store.store(p.ts, p.s, p.ts + 100);
      // Buckets close by the hub's clock as samples come: the last one (10:19:55) closed up to 10:19.
      expect(store.closed()).toEqual({ '1m': H + 19 * MIN, '5m': H + 15 * MIN, '1h': H });
      expect(store.rollup('1m', H + 20 * MIN)).toBeNull();
      // At 10:23:05 the gap's points arrive (a backlog): their minutes are closed by then, the 5m bucket 10:20 and the hour are not.
      const late = live.filter((p) => gap(p.ts));
      const now = H + 23 * MIN + GRACE_MS;
      for (const p of late) expect(store.store(p.ts, p.s, now)).toBe(true);
      for (let m = 20; m < 23; m++) expect(store.rollup('1m', H + m * MIN)).toEqual(fold(late.filter((p) => p.ts >= H + m * MIN && p.ts < H + (m + 1) * MIN).map((p) => p.s)));
      expect(store.rollup('5m', H + 20 * MIN)).toBeNull();
      // The rest of the hour live; the 5m bucket and the hour pick the late points up from the 1m buckets when they close.
      for (const p of live.filter((p) => p.ts >= H + 23 * MIN)) store.store(p.ts, p.s, p.ts + 100);
      store.closeDue(H + HOUR + 10 * MIN);
      expect(store.rollup('5m', H + 20 * MIN)).toEqual(fold(live.filter((p) => p.ts >= H + 20 * MIN && p.ts < H + 25 * MIN).map((p) => p.s)));
      expect(store.rollup('1h', H)).toEqual(fold(live.map((p) => p.s)));
      // A late point for the closed hour is merged into its 1m, 5m and 1h buckets alike.
      const extra = { ts: H + 42 * MIN + 2500, s: { cpu: 77.77, memory: 1 } };
      expect(store.store(extra.ts, extra.s, H + HOUR + 11 * MIN)).toBe(true);
      const withExtra = [...live, extra];
      expect(store.rollup('1m', H + 42 * MIN)).toEqual(fold(withExtra.filter((p) => p.ts >= H + 42 * MIN && p.ts < H + 43 * MIN).map((p) => p.s)));
      expect(store.rollup('5m', H + 40 * MIN)).toEqual(fold(withExtra.filter((p) => p.ts >= H + 40 * MIN && p.ts < H + 45 * MIN).map((p) => p.s)));
      expect(store.rollup('1h', H)).toEqual(fold(withExtra.map((p) => p.s)));

      // A point of a bucket closed at every resolution (yesterday's, say) lands in all three.
      const old = H - 86_400_000 + 90_000;
      const hourBefore = store.rollup('1h', H - 86_400_000);
      expect(hourBefore).toBeNull();
      expect(store.store(old, { cpu: 50.5 }, H + HOUR + 10 * MIN)).toBe(true);
      expect(store.rollup('1m', old - 30_000)).toEqual({ cpu: [5050, 1, 5050, 5050] });
      expect(store.rollup('5m', H - 86_400_000)).toEqual({ cpu: [5050, 1, 5050, 5050] });
      expect(store.rollup('1h', H - 86_400_000)).toEqual({ cpu: [5050, 1, 5050, 5050] });
      expect(store.store(old + 1000, { cpu: 10 }, H + HOUR + 10 * MIN)).toBe(true);
      expect(store.rollup('1h', H - 86_400_000)).toEqual({ cpu: [6050, 2, 1000, 5050] });
    });
  });

  it('stores a point sent twice once, in raw and in its rollups, whether its bucket was open or closed', async () => {
    await withStore((store, state) => {
      expect(store.store(H + 1000, { cpu: 10 }, H + 1100)).toBe(true);
      expect(store.store(H + 1000, { cpu: 99 }, H + 1200)).toBe(false);
      store.closeDue(H + 2 * MIN);
      expect(store.rollup('1m', H)).toEqual({ cpu: [1000, 1, 1000, 1000] });
      // Sent again after its bucket closed (a backlog resent after a lost ack): still once.
      expect(store.store(H + 1000, { cpu: 10 }, H + 3 * MIN)).toBe(false);
      expect(store.rollup('1m', H)).toEqual({ cpu: [1000, 1, 1000, 1000] });
      expect(state.storage.sql.exec('SELECT COUNT(*) AS n FROM metrics_raw').one().n).toBe(1);
    });
  });

  it('keeps series names that are Object.prototype properties as plain series, and a series named timestamp never reaches a history point', async () => {
    await withStore((store) => {
      store.store(H, { constructor: 1, toString: 2, timestamp: 3, cpu: 4 }, H);
      store.store(H + 1000, { constructor: 5, cpu: 4 }, H + 1000);
      store.closeDue(H + 2 * MIN);
      expect(store.rollup('1m', H)).toEqual({ constructor: [600, 2, 100, 500], toString: [200, 1, 200, 200], cpu: [800, 2, 400, 400] });
      expect(store.rows('raw', H, H, 10)[0]!.series).toEqual({ constructor: { avg: 1, min: 1, max: 1 }, toString: { avg: 2, min: 2, max: 2 }, cpu: { avg: 4, min: 4, max: 4 } });
    });
  });
});

describe('retention', () => {
  const short: Retention = { raw: 10 * MIN, '1m': HOUR, '5m': 6 * HOUR, '1h': 48 * HOUR };

  it('deletes each resolution past its own retention (raw by when it was received), in steps of at most PRUNE_STEP rows', async () => {
    await withStore((store, state) => {
      const count = (sql: string) => state.storage.sql.exec<{ n: number }>(sql).one().n;
      // A day of points every 30 s, each received as taken.
      for (let ts = H; ts < H + 24 * HOUR; ts += 30_000) store.store(ts, { cpu: (ts / 30_000) % 100 }, ts);
      const now = H + 24 * HOUR;
      store.closeDue(now);
      // A late point from 20 h ago, received now, is kept as long as a live one received now.
      store.store(now - 20 * HOUR + 15_000, { cpu: 1 }, now);
      const raw = count('SELECT COUNT(*) AS n FROM metrics_raw');
      expect(raw).toBe(2880 + 1);
      expect(store.prune(short, now)).toBe(true); // raw: 2,860 rows due, more than one step
      expect(count('SELECT COUNT(*) AS n FROM metrics_raw')).toBe(raw - PRUNE_STEP);
      while (store.prune(short, now));
      const kept = state.storage.sql.exec<{ ts: number }>('SELECT ts FROM metrics_raw ORDER BY ts').toArray().map((r) => r.ts);
      expect(kept[0]).toBe(now - 20 * HOUR + 15_000);
      expect(kept.slice(1).every((ts) => ts >= now - short.raw)).toBe(true);
      const buckets = (r: string) => state.storage.sql.exec<{ b: number }>('SELECT bucket AS b FROM metrics_rollup WHERE resolution = ? ORDER BY bucket', r).toArray().map((x) => x.b);
      // A bucket goes once all of it is past its retention.
      expect(buckets('1m')[0]).toBe(now - short['1m'] - MIN);
      expect(buckets('5m')[0]).toBe(now - short['5m'] - 5 * MIN);
      // Every closed hour is within 48 h (the last one is still open).
      expect(buckets('1h')[0]).toBe(H);
      expect(buckets('1h')).toHaveLength(23);
    });
  });

  it('reads METRICS_RETENTION_<RAW|1M|5M|1H>_MS from env, a missing or nonsensical value leaving the default', () => {
    expect(retentionOf({ METRICS_RETENTION_RAW_MS: '60000', METRICS_RETENTION_1H_MS: 'x', METRICS_RETENTION_5M_MS: '-5' } as unknown as Env)).toEqual({
      ...DEFAULT_RETENTION_MS,
      raw: 60_000,
    });
    expect(retentionOf(env)).toEqual(DEFAULT_RETENTION_MS);
  });

  it('the METRICS_ROLLUP deadline closes and prunes with no sample arriving, and sets itself to the next work', async () => {
    const id = `store-${crypto.randomUUID()}`;
    await runInDurableObject(hub(id), async (instance, state) => {
      const { caps, hub: ctx } = instance as unknown as { caps: { metrics: MetricsCapability }; hub: HubContext };
      const store = new MetricsStore(state.storage);
      const t0 = Date.now() - 3 * HOUR;
      for (let i = 0; i < 100; i++) store.store(t0 + i * 1000, { cpu: i }, t0 + i * 1000);
      const now = Date.now();
      await caps.metrics.rollup(ctx, now);
      expect(state.storage.sql.exec('SELECT COUNT(*) AS n FROM metrics_raw').one().n).toBe(0); // past the default hour
      expect(store.rollup('1m', Math.floor(t0 / MIN) * MIN)).not.toBeNull();
      // Next: the oldest 1m bucket's retention (7 days) plus the slack, the only work left.
      const next = await ctx.when(METRICS_ROLLUP);
      expect(next).toBe(store.nextDue(retentionOf(env)));
      expect(next).toBeGreaterThan(now + DEFAULT_RETENTION_MS['1m'] - 4 * HOUR);
    });
  });
});

describe('history rows and export pages', () => {
  it('raw points have avg = min = max; the series filter; [from, to] inclusive; a bounded limit', async () => {
    await withStore((store) => {
      for (let i = 0; i < 10; i++) store.store(H + i * 1000, { cpu: i + 0.5, memory: 50, 'disk:/': 20 }, H + i * 1000);
      const rows = store.rows('raw', H + 2000, H + 4000, 100, new Set(['cpu', 'disk:/']));
      expect(rows).toEqual([2, 3, 4].map((i) => ({ timestamp: H + i * 1000, series: { cpu: { avg: i + 0.5, min: i + 0.5, max: i + 0.5 }, 'disk:/': { avg: 20, min: 20, max: 20 } } })));
      expect(store.rows('raw', H, H + HOUR, 3)).toHaveLength(3);
      // The minute and the hour are still open: their buckets come from the raw points as they stand.
      const open = { cpu: { avg: 5, min: 0.5, max: 9.5 } };
      expect(store.rows('1m', H, H, 10, new Set(['cpu']))).toEqual([{ timestamp: H, series: open }]);
      expect(store.rows('1h', H, H, 10, new Set(['cpu']))).toEqual([{ timestamp: H, series: open }]);
      // Once the minute closed, its 1m bucket is stored and the open hour is made of it and the next minute's points.
      store.store(H + MIN + 1000, { cpu: 20 }, H + MIN + GRACE_MS + 1000);
      expect(store.rollup('1m', H)).not.toBeNull();
      expect(store.rows('1h', H, H, 10, new Set(['cpu']))).toEqual([{ timestamp: H, series: { cpu: { avg: 6.3636, min: 0.5, max: 20 } } }]);
      expect(store.rows('1m', H, H + MIN, 10, new Set(['cpu'])).map((r) => r.timestamp)).toEqual([H, H + MIN]);
    });
  });

  it('export pages: rows in time order, at most the limit, and where the next page starts', async () => {
    const id = `store-${crypto.randomUUID()}`;
    await runInDurableObject(hub(id), (instance, state) => {
      const { caps, hub: ctx } = instance as unknown as { caps: { metrics: MetricsCapability }; hub: HubContext };
      const store = new MetricsStore(state.storage);
      for (let i = 0; i < 5; i++) store.store(H + i * 1000, { cpu: i }, H + i * 1000);
      const first = caps.metrics.exportPage(ctx, 'raw', H, H + 10_000, 2);
      expect(first.rows.map((r) => r.timestamp)).toEqual([H, H + 1000]);
      expect(first.next).toBe(H + 2000);
      const last = caps.metrics.exportPage(ctx, 'raw', H + 4000, H + 10_000, 2);
      expect(last).toEqual({ rows: [{ timestamp: H + 4000, series: { cpu: { avg: 4, min: 4, max: 4 } } }], next: null });
      // A limit out of bounds is bounded (at least one row, at most 1,000).
      expect(caps.metrics.exportPage(ctx, 'raw', H, H + 10_000, 0).rows).toHaveLength(1);
    });
  });
});

describe('rows written', () => {
  it('counts the hub SQLite rows a sample writes, at 5 s and at 1 s (the README figures)', async () => {
    for (const interval of [5000, 1000]) {
      await withStore((store) => {
        let written = 0;
        let samples = 0;
        // Two hours of samples with a prune step every five minutes (as the deadline's slack runs it); the second hour is the steady state.
        for (let ts = H; ts < H + 2 * HOUR; ts += interval) {
          store.store(ts, { cpu: 1, 'cpu.0': 1, 'cpu.1': 1, memory: 2, load1: 1, load5: 1, load15: 1, disk: 3, 'disk:/': 3, net_rx: 4, net_tx: 4, temperature: 5, connections: 6, processes: 7 }, ts);
          if (ts >= H + HOUR) {
            written += store.rowsWritten;
            samples++;
          }
          if ((ts - H) % (5 * MIN) === 0) {
            store.prune(DEFAULT_RETENTION_MS, ts);
            if (ts >= H + HOUR) written += store.rowsWritten;
          }
        }
        const perSample = written / samples;
        const perDay = Math.round((perSample * 86_400_000) / interval);
        console.log(`metrics store at ${interval / 1000} s: ${written} rows for ${samples} samples in an hour (${perSample.toFixed(3)} a sample, ${perDay} a day)`);
        // One raw row, its later prune, the 1m/5m/1h rows and the watermark: about two rows a sample, never three.
        expect(perSample).toBeGreaterThan(1.9);
        expect(perSample).toBeLessThan(interval === 5000 ? 2.4 : 2.1);
      });
    }
  });
});
