// Test helpers for the logs API: a fake agent (kvm-helpers.ts's, on a real DeviceHub socket,
// heartbeats included) that ships `logs` batches and waits for their `logs_ack`; lines; writing
// lines straight into a hub's store (for devices no agent runs for); and an SSE reader of
// GET /api/v1/logs/stream.
import { env, runInDurableObject } from 'cloudflare:test';
import { api } from './helpers.ts';
import { waitFor } from './device-helpers.ts';
import { kvmDevice } from './kvm-helpers.ts';
import { sseAt } from './stream-helpers.ts';
import { LogStore } from '../../durable-objects/capabilities/logs-store.ts';
import type { LogBatch, LogLine } from '../../shared/protocol/logs.ts';
import type { LogEntry } from '../../shared/api/logs.ts';

export const hub = (deviceId: string) => env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName(deviceId));

export const line = (over: Partial<LogLine> = {}): LogLine => ({ ts: Date.parse('2026-12-01T10:00:00Z'), source: 'journal', source_name: 'sshd.service', level: 'info', message: 'a line', ...over });

/** An approved device of TEST_TEAM whose fake agent sends batches with `send` (resolving with the hub's ack). */
export async function logDevice(adminKey: string) {
  const dev = await kvmDevice(adminKey);
  const acks: { boot: string; seq: number }[] = [];
  dev.agent.ws.addEventListener('message', (e) => {
    if (typeof e.data !== 'string') return;
    const m = JSON.parse(e.data) as { t: string; boot: string; seq: number };
    if (m.t === 'logs_ack') acks.push({ boot: m.boot, seq: m.seq });
  });
  let seq = 0;
  const boot = `boot-${crypto.randomUUID().slice(0, 8)}`;
  /** Sends a batch (the next seq of this agent's spool unless `batch` says) and waits for its ack; returns how many acks of it came so far. */
  const send = async (lines: LogLine[], batch: Partial<LogBatch> = {}) => {
    const msg: LogBatch = { t: 'logs', boot, seq: batch.seq ?? ++seq, lines, ...batch };
    const before = acks.filter((a) => a.boot === msg.boot && a.seq === msg.seq).length;
    dev.agent.ws.send(JSON.stringify(msg));
    await waitFor(() => acks.filter((a) => a.boot === msg.boot && a.seq === msg.seq).length > before, `the ack of batch ${msg.seq}`);
    return before + 1;
  };
  return { ...dev, acks, send, boot };
}

/** Stores lines in a device's hub as a batch would (for devices that have no agent here). */
export async function storeLines(deviceId: string, lines: LogLine[], now = Date.now()) {
  return runInDurableObject(hub(deviceId), (_i, state) => new LogStore(state.storage, deviceId).store({ t: 'logs', boot: `b-${crypto.randomUUID()}`, seq: 1, lines }, now));
}

/** Opens GET /api/v1/logs/stream{query} as an SSE reader and keeps everything it says. */
export async function logStream(key: string, query = '', headers: Record<string, string> = {}) {
  const r = await sseAt(`/api/v1/logs/stream${query}`, key, headers);
  const lines = () => r.events().filter((e) => e.event === 'log').map((e) => ({ ...(JSON.parse(e.data) as LogEntry), sse_id: e.id }));
  return { ...r, lines };
}
