// The metrics capability through its public interface (messages, onHello, onGone, stop) with a
// stand-in sampler and a fake hub: samples numbered per boot and sent live, the unacknowledged
// buffer (bounded, oldest dropped and counted, acks drop up to their seq), the backlog after an
// outage in chunks of at most MAX_BACKLOG_CHUNK with the dropped count, in seq order before any new
// live sample, the interval and watched names of metrics_config, and configs or acks that are
// malformed or not ours, which change nothing.
import { afterEach, describe, expect, test } from 'bun:test';
import { metricsCapability, type MetricsCapability } from '../../../agent/metrics/index.ts';
import { seriesOf } from '../../../shared/api/series.ts';
import { MAX_BACKLOG_CHUNK } from '../../../shared/protocol/metrics.ts';
import { FakeHub, GatedSampler, quietLogger, validSample, waitFor } from './helpers.ts';

const caps: { cap: MetricsCapability; sampler: GatedSampler }[] = [];
afterEach(async () => {
  // A sample waiting for the test's permission is let go, so stop's wait for it ends.
  for (const { cap, sampler } of caps.splice(0)) {
    sampler.allow(1);
    await cap.stop();
  }
});

function start(opts: { intervalMs?: number; backlogPoints?: number } = {}) {
  const sampler = new GatedSampler();
  const logs: string[] = [];
  const cap = metricsCapability({
    log: quietLogger(logs),
    options: { root: '/', dockerSocket: '/nonexistent.sock', intervalMs: opts.intervalMs ?? 1 },
    createSampler: () => sampler,
    backlogPoints: opts.backlogPoints,
  });
  caps.push({ cap, sampler });
  return { cap, sampler, logs };
}

const ack = (cap: MetricsCapability, seq: number, boot = cap.boot) => cap.messages!.metrics_ack!({ t: 'metrics_ack', boot, seq });
const config = (cap: MetricsCapability, interval_ms: number, processes: string[] = [], containers: string[] = []) =>
  cap.messages!.metrics_config!({ t: 'metrics_config', interval_ms, watch: { processes, containers } });

describe('metrics capability', () => {
  test('sends each sample live, numbered from 1 under one boot, and holds it until acknowledged', async () => {
    const { cap, sampler } = start();
    const hub = new FakeHub();
    cap.onHello!(hub.send);
    sampler.allow(3);
    await waitFor(() => hub.live().length === 3, 5_000, 'three live samples');
    expect(hub.live().map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(new Set(hub.live().map((m) => m.boot))).toEqual(new Set([cap.boot]));
    expect(hub.live()[1]!.sample).toEqual(validSample(2));
    expect(cap.held()).toBe(3);
    ack(cap, 2);
    expect(cap.held()).toBe(1);
    ack(cap, 3);
    expect(cap.held()).toBe(0);
    expect(hub.chunks()).toEqual([]);
  });

  test('offline, keeps sampling into a bounded buffer; the next hello sends it oldest first with the dropped count', async () => {
    const { cap, sampler } = start({ backlogPoints: 5 });
    sampler.allow(8);
    await waitFor(() => sampler.taken === 8 && cap.held() === 5, 5_000, 'eight samples, five held');
    const hub = new FakeHub();
    cap.onHello!(hub.send);
    const [chunk] = hub.chunks();
    expect(hub.sent.length).toBe(1);
    expect(chunk!.boot).toBe(cap.boot);
    expect(chunk!.dropped).toBe(3);
    expect(chunk!.points.map((p) => p.seq)).toEqual([4, 5, 6, 7, 8]);
    // A point is the sample's series at its own timestamp.
    expect(chunk!.points[0]).toEqual({ seq: 4, timestamp: validSample(4).timestamp, series: seriesOf(validSample(4)) });
    // With the backlog out, the next sample goes live; the drop count is not repeated.
    sampler.allow(1);
    await waitFor(() => hub.live().length === 1, 5_000, 'a live sample');
    expect(hub.live()[0]!.seq).toBe(9);
    ack(cap, 9);
    expect(cap.held()).toBe(0);
  });

  test('a long outage goes in chunks of at most MAX_BACKLOG_CHUNK, two in flight, and new samples wait behind them', async () => {
    const total = MAX_BACKLOG_CHUNK * 2 + 50;
    const { cap, sampler } = start();
    sampler.allow(total);
    await waitFor(() => sampler.taken === total, 20_000, 'the outage samples');
    await waitFor(() => cap.held() === total, 5_000, 'all held');
    const hub = new FakeHub();
    cap.onHello!(hub.send);
    expect(hub.chunks().map((c) => c.points.length)).toEqual([MAX_BACKLOG_CHUNK, MAX_BACKLOG_CHUNK]);
    // A sample taken while 50 older points still wait joins them instead of going live ahead of them.
    sampler.allow(1);
    await waitFor(() => sampler.taken === total + 1 && cap.held() === total + 1, 5_000, 'one more sample');
    expect(hub.live()).toEqual([]);
    ack(cap, MAX_BACKLOG_CHUNK);
    expect(hub.chunks().map((c) => c.points.length)).toEqual([MAX_BACKLOG_CHUNK, MAX_BACKLOG_CHUNK, 51]);
    expect(hub.seqs()).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
    expect(hub.chunks().every((c) => c.dropped === undefined)).toBe(true);
    ack(cap, total + 1);
    expect(cap.held()).toBe(0);
    sampler.allow(1);
    await waitFor(() => hub.live().length === 1, 5_000, 'live again');
    expect(hub.live()[0]!.seq).toBe(total + 2);
  });

  test('what was sent but not acknowledged before the socket went is sent again, as backlog, on the next hello', async () => {
    const { cap, sampler } = start();
    const first = new FakeHub();
    cap.onHello!(first.send);
    sampler.allow(3);
    await waitFor(() => first.live().length === 3, 5_000, 'three live samples');
    ack(cap, 1);
    cap.onGone!();
    const second = new FakeHub();
    cap.onHello!(second.send);
    expect(second.chunks().map((c) => c.points.map((p) => p.seq))).toEqual([[2, 3]]);
  });

  test('a send that fails (the socket closed under it) keeps the sample for the next hello', async () => {
    const { cap, sampler } = start();
    const hub = new FakeHub();
    cap.onHello!(hub.send);
    hub.up = false;
    sampler.allow(2);
    await waitFor(() => cap.held() === 2, 5_000, 'two held');
    const next = new FakeHub();
    cap.onHello!(next.send);
    expect(next.seqs()).toEqual([1, 2]);
  });

  test('an ack of another boot, or a malformed one, drops nothing', async () => {
    const { cap, sampler } = start();
    sampler.allow(2);
    await waitFor(() => cap.held() === 2, 5_000, 'two held');
    ack(cap, 2, 'someone-else');
    cap.messages!.metrics_ack!({ t: 'metrics_ack', boot: cap.boot, seq: -1 } as never);
    cap.messages!.metrics_ack!({ t: 'metrics_ack' } as never);
    expect(cap.held()).toBe(2);
  });

  test('metrics_config sets the interval and the watched names; until then options.intervalMs holds', async () => {
    const { cap, sampler } = start({ intervalMs: 3_600_000 });
    sampler.allow(10);
    // The first sample comes at once, the next not for an hour.
    await waitFor(() => sampler.taken === 1, 5_000, 'the first sample');
    expect(cap.intervalMs()).toBe(3_600_000);
    config(cap, 1000, ['nginx'], ['web']);
    expect(cap.intervalMs()).toBe(1000);
    expect(sampler.watches).toEqual([{ processes: ['nginx'], containers: ['web'] }]);
    await waitFor(() => sampler.taken >= 3, 10_000, 'samples at the new interval');
    expect(sampler.intervals.slice(1)).toEqual(sampler.intervals.slice(1).map(() => 1000));
  });

  test('the live interval falls back to the last other interval when the hub goes away', () => {
    const { cap } = start({ intervalMs: 5000 });
    config(cap, 60_000);
    config(cap, 1000);
    expect(cap.intervalMs()).toBe(1000);
    cap.onGone!();
    expect(cap.intervalMs()).toBe(60_000);
  });

  test('a malformed metrics_config is ignored and logged, and sampling goes on', async () => {
    const { cap, sampler, logs } = start({ intervalMs: 1 });
    const bad: unknown[] = [
      {},
      { t: 'metrics_config' },
      { t: 'metrics_config', interval_ms: 0, watch: { processes: [], containers: [] } },
      { t: 'metrics_config', interval_ms: 'fast', watch: { processes: [], containers: [] } },
      { t: 'metrics_config', interval_ms: 1000, watch: null },
      { t: 'metrics_config', interval_ms: 1000, watch: { processes: ['x'.repeat(300)], containers: [] } },
      { t: 'metrics_config', interval_ms: 1000, watch: { processes: Array(65).fill('a'), containers: [] } },
      null,
    ];
    for (const m of bad) expect(() => cap.messages!.metrics_config!(m as never)).not.toThrow();
    expect(cap.intervalMs()).toBe(1);
    expect(sampler.watches).toEqual([]);
    expect(logs.filter((l) => l.includes('malformed metrics_config')).length).toBe(bad.length);
    sampler.allow(2);
    await waitFor(() => sampler.taken === 2, 5_000, 'samples after the bad configs');
  });

  test('stop ends the timer and closes the sampler', async () => {
    const { cap, sampler } = start({ intervalMs: 1 });
    sampler.allow(1);
    await waitFor(() => sampler.taken === 1, 5_000, 'a sample');
    // The next sample is under way (waiting for its permit): stop lets it end, then takes no more.
    sampler.allow(1);
    await cap.stop();
    expect(sampler.closed).toBe(true);
    const taken = sampler.taken;
    sampler.allow(5);
    await new Promise((r) => setTimeout(r, 50));
    expect(sampler.taken).toBe(taken);
  });
});
