// Test helpers for the hub's metrics: a valid sample (Tyto's structure), a fake agent on a real
// DeviceHub socket (tunnels-helpers.ts's, heartbeats included) that sends `metrics` and
// `metrics_backlog` messages one at a time and waits for their `metrics_ack`, and a watcher of the
// device hub's `metrics` topic as the Worker would open one.
import { env, runInDurableObject } from 'cloudflare:test';
import { api, TEST_TEAM } from './helpers.ts';
import { createToken, facts, keyPair, waitFor } from './device-helpers.ts';
import { fakeTunnelAgent } from './tunnels-helpers.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { MetricsStore } from '../../durable-objects/capabilities/metrics-store.ts';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import type { BacklogPoint } from '../../shared/protocol/metrics.ts';
import type { HubCounters } from '../../durable-objects/device-hub.ts';

export const hub = (deviceId: string) => env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName(deviceId));

/** A sample of a small two-core Pi at `at`, with `cpu` total usage. */
export function sample(at: number, cpu = 12.5, over: Partial<MetricsSample> = {}): MetricsSample {
  return {
    timestamp: new Date(at).toISOString(),
    system: { hostname: 'pi-metrics', kernel: '6.6.0', uptime: 1234, architecture: 'aarch64' },
    cpu: {
      model: 'Cortex-A76',
      cores: [
        { id: 0, usage: cpu, frequency: 2400 },
        { id: 1, usage: cpu / 2, frequency: 2400 },
      ],
      totalUsage: cpu,
      loadAverage: { one: 0.5, five: 0.25, fifteen: 0.1 },
    },
    memory: { total: 4000, used: 1000, free: 3000, available: 3000, buffers: 0, cached: 0, swapTotal: 0, swapUsed: 0 },
    disk: { mounts: [{ device: '/dev/mmcblk0p2', mountpoint: '/', fstype: 'ext4', total: 1000, used: 250, free: 750 }], io: [] },
    network: { interfaces: [{ name: 'eth0', rxBytes: 10, txBytes: 20, rxRate: 100, txRate: 50 }], connectionCount: 3 },
    processes: { topByCpu: [{ pid: 42, name: 'python3', cpu: 9, memory: 1000 }], topByMemory: [], total: 120 },
    temperature: { sensors: [{ name: 'cpu_thermal', value: 48.3 }] },
    gpu: { available: false, gpus: [] },
    docker: { available: false, containers: [] },
    systemd: { available: false, services: [] },
    ...over,
  };
}

type Msg = Record<string, unknown>;

/** An approved device of TEST_TEAM with a fake agent; `send` waits for the ack of what it sends. */
export async function metricsDevice(adminKey: string) {
  const token = await createToken(adminKey, { auto_approve: true, team_id: TEST_TEAM });
  const keys = await keyPair();
  const res = await api('/api/v1/enroll', { json: { token, public_key: keys.publicJwk, facts: facts(), agent_version: '0.1.0' } });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${await res.text()}`);
  const deviceId = ((await res.json()) as { device_id: string }).device_id;
  const agent = await fakeTunnelAgent(deviceId, keys.privateKey, { capabilities: ['tunnels', 'metrics'] });
  const boot = `boot-${crypto.randomUUID().slice(0, 8)}`;
  let seq = 0;
  const acks = (s: number, b = boot) => agent.text.filter((m) => m.t === 'metrics_ack' && m.boot === b && m.seq === s).length;
  /** Sends a message as it is and waits for the ack of (boot, seq). */
  const sendRaw = async (msg: Msg, ackSeq: number, ackBoot = boot) => {
    const before = acks(ackSeq, ackBoot);
    agent.ws.send(JSON.stringify(msg));
    await waitFor(() => acks(ackSeq, ackBoot) > before, `the ack of ${ackSeq}`);
  };
  /** Sends one sample (the next seq) and waits for its ack; returns the seq. */
  const send = async (s: MetricsSample) => {
    const n = ++seq;
    await sendRaw({ t: 'metrics', boot, seq: n, sample: s }, n);
    return n;
  };
  /** Sends a backlog chunk of these points (their seqs are the next ones) and waits for the chunk's ack. */
  const backlog = async (points: Omit<BacklogPoint, 'seq'>[], dropped?: number) => {
    const withSeq = points.map((p) => ({ ...p, seq: ++seq }));
    await sendRaw({ t: 'metrics_backlog', boot, points: withSeq, ...(dropped ? { dropped } : {}) }, seq);
  };
  const configs = () => agent.text.filter((m) => m.t === 'metrics_config') as { interval_ms: number; watch: unknown }[];
  const counters = () => hub(deviceId).counters() as Promise<HubCounters>;
  return { deviceId, privateKey: keys.privateKey, agent, boot, send, sendRaw, backlog, configs, counters, nextSeq: () => ++seq };
}

/** A watcher of the device hub's `metrics` topic, as the Worker opens one (an instance admin's unless `request` says). */
export async function watchMetrics(deviceId: string, request: Msg = {}) {
  const res = await hub(deviceId).fetch('http://hub/watch', {
    headers: {
      upgrade: 'websocket',
      [INTERNAL.kind]: 'watch',
      [INTERNAL.watch]: JSON.stringify({ topics: ['metrics'], teams: null, user_id: 'admin', credential_id: 'key-admin', expires_at: null, ...request }),
    },
  });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`watch failed: ${res.status} ${await res.text()}`);
  ws.accept();
  const received: Msg[] = [];
  ws.addEventListener('message', (e) => void received.push(JSON.parse(String(e.data)) as Msg));
  ws.addEventListener('close', () => ws.close());
  const events = () => received.filter((m) => m.t === 'event' && m.event === 'metrics').map((m) => m.data as MetricsSample & { agent_id: string; team_id: string | null });
  return { ws, received, events };
}

/** What the hub's store holds, read inside the hub. */
export const inStore = <T>(deviceId: string, read: (store: MetricsStore, state: DurableObjectState) => T) =>
  runInDurableObject(hub(deviceId), (_i, state) => read(new MetricsStore(state.storage), state));

/** The raw points' timestamps the hub stored. */
export const rawTimes = (deviceId: string) => inStore(deviceId, (_s, state) => state.storage.sql.exec<{ ts: number }>('SELECT ts FROM metrics_raw ORDER BY ts').toArray().map((r) => r.ts));
