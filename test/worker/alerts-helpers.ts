// Test helpers for alerts: a metrics sample with the numbers a test cares about, a rule written
// straight into D1, and an AlertsCapability run inside a real DeviceHub's storage with a fake
// HubContext whose deliveries are recorded (so the evaluation is tested on its own, sample by
// sample, at the times a test chooses).
import { env, runInDurableObject } from 'cloudflare:test';
import { randomId } from '../../worker/auth/crypto.ts';
import { AlertsCapability, ALERT_OFFLINE } from '../../durable-objects/capabilities/alerts.ts';
import type { HubContext } from '../../durable-objects/capabilities/types.ts';
import type { MetricsSample, SampleContainer, SampleProcess } from '../../shared/api/metrics.ts';
import { seriesOf } from '../../shared/api/series.ts';
import type { Alert } from '../../shared/api/alerts.ts';
import type { AlertRow } from '../../shared/db/schema.ts';
import { TEST_TEAM } from './helpers.ts';

export const hub = (deviceId: string) => env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName(deviceId));

export interface SampleOver {
  cpu?: number;
  memory?: number;
  temperature?: number;
  load?: number;
  disks?: { mountpoint: string; percent: number }[];
  topByCpu?: SampleProcess[];
  topByMemory?: SampleProcess[];
  containers?: SampleContainer[];
  watched?: MetricsSample['watched'];
  at?: number;
}

const GiB = 1024 ** 3;

export function sample(o: SampleOver = {}): MetricsSample {
  const total = 8 * GiB;
  const used = Math.round((total * (o.memory ?? 30)) / 100);
  return {
    timestamp: new Date(o.at ?? Date.now()).toISOString(),
    system: { hostname: 'web-1', kernel: '6.1.0', uptime: 1000, architecture: 'x86_64' },
    cpu: { cores: [{ id: 0, usage: o.cpu ?? 10, frequency: 2400 }], totalUsage: o.cpu ?? 10, loadAverage: { one: o.load ?? 0.5, five: 0.4, fifteen: 0.3 } },
    memory: { total, used, free: total - used, available: total - used, buffers: 0, cached: 0, swapTotal: 0, swapUsed: 0 },
    disk: {
      mounts: (o.disks ?? [{ mountpoint: '/', percent: 40 }]).map((d) => ({ device: '/dev/sda1', mountpoint: d.mountpoint, fstype: 'ext4', total: 1000 * GiB, used: d.percent * 10 * GiB, free: (100 - d.percent) * 10 * GiB })),
      io: [],
    },
    network: { interfaces: [], connectionCount: 3 },
    processes: { topByCpu: o.topByCpu ?? [], topByMemory: o.topByMemory ?? [], total: 100 },
    temperature: { sensors: o.temperature === undefined ? [] : [{ name: 'cpu_thermal', value: o.temperature }] },
    gpu: { available: false, gpus: [] },
    docker: { available: !!o.containers, containers: o.containers ?? [] },
    systemd: { available: false, services: [] },
    ...(o.watched ? { watched: o.watched } : {}),
  };
}

export interface RuleOver {
  name?: string;
  metric: string;
  target?: string | null;
  warning?: number | null;
  critical?: number | null;
  level?: string | null;
  hold?: number;
  recovery?: number;
  teamId?: string | null;
  deviceId?: string | null;
  enabled?: boolean;
}

/** A rule row written straight into D1; its id. */
export async function insertRule(r: RuleOver): Promise<string> {
  const id = randomId(8);
  await env.DB.prepare(
    `INSERT INTO alert_rules (id, name, metric, target, warning, critical, level, hold_seconds, recovery_seconds, team_id, device_id, enabled, channels_sealed, channel_views, resend_minutes, resend_cap, quiet_hours, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, '[]', NULL, 5, NULL, ?13)`,
  )
    .bind(id, r.name ?? `${r.metric} rule`, r.metric, r.target ?? null, r.warning ?? null, r.critical ?? null, r.level ?? null, r.hold ?? 0, r.recovery ?? r.hold ?? 0, r.teamId === undefined ? TEST_TEAM : r.teamId, r.deviceId ?? null, r.enabled === false ? 0 : 1, Date.now())
    .run();
  return id;
}

export async function alertRows(deviceId: string): Promise<AlertRow[]> {
  const { results } = await env.DB.prepare('SELECT * FROM alerts WHERE device_id = ?1 ORDER BY created_at').bind(deviceId).all<Record<string, unknown>>();
  return results.map((r) => ({ ...r, cause: JSON.parse(String(r.cause)) }) as unknown as AlertRow);
}

export interface Notified {
  event: 'fired' | 'escalated' | 'resolved';
  alert: Alert;
  deviceName: string;
}

/** The capability under test in the hub of `deviceId`, with a fake context: `online` says whether an agent is there. */
export interface Bench {
  cap: AlertsCapability;
  ctx: HubContext;
  notified: Notified[];
  deadlines: Map<string, number>;
  online: { value: boolean };
  /** When the agent went away (what agentGoneAt says). */
  goneAt: { value: number | null };
  /** Feeds a sample taken at `at`. */
  feed(at: number, o?: SampleOver): Promise<void>;
  /** Writes of the alert state to the hub's storage so far. */
  writes: { value: number };
  /** The same hub with a new capability instance (as after hibernation or a restart): memory gone, storage kept. */
  restart(): AlertsCapability;
}

export async function withBench<T>(deviceId: string, fn: (b: Bench) => Promise<T>): Promise<T> {
  return runInDurableObject(hub(deviceId), async (_instance, state) => {
    // Storage writes of the alerts' own state are counted (what a sample costs the hub).
    const kv = state.storage.kv;
    const counted = {
      get: <V>(key: string) => kv.get<V>(key),
      put: <V>(key: string, value: V) => {
        writes.value++;
        kv.put(key, value);
      },
    };
    const writes = { value: 0 };
    const countingState = { storage: { kv: counted } } as unknown as DurableObjectState;
    const cap = new AlertsCapability();
    const notified: Notified[] = [];
    const record: AlertsCapability['deliveries']['enqueue'] = async (_hub, n) => {
      notified.push({ event: n.event, alert: n.alert, deviceName: n.deviceName });
    };
    cap.deliveries.enqueue = record;
    const deadlines = new Map<string, number>();
    const online = { value: true };
    const goneAt = { value: null as number | null };
    const ctx: HubContext = {
      env,
      state: countingState,
      deviceId,
      readyAgent: () => null,
      agent: () => (online.value ? ({} as WebSocket) : null),
      waitForAgent: async () => null,
      agentGoneAt: () => goneAt.value,
      send: () => false,
      openStream: () => {
        throw new Error('no streams here');
      },
      publish: () => {},
      skip: () => {},
      at: async (name, when) => void deadlines.set(name, when),
      when: async (name) => deadlines.get(name) ?? null,
    };
    const bench: Bench = {
      cap,
      ctx,
      notified,
      deadlines,
      online,
      goneAt,
      writes,
      feed: async (at: number, o: SampleOver = {}) => {
        const s = sample({ ...o, at });
        await bench.cap.onSample(ctx, s, seriesOf(s), at);
      },
      restart: () => {
        bench.cap = new AlertsCapability();
        bench.cap.deliveries.enqueue = record;
        return bench.cap;
      },
    };
    return fn(bench);
  });
}

export { ALERT_OFFLINE };
