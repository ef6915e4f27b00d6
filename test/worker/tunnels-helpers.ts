// Test helpers for tunnels: create them through the API and visit them by Host, the way a
// browser reaches `<name>.localhost`.
import { SELF } from 'cloudflare:test';
import { expect } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { api } from './helpers.ts';
import { agentJwt, connectRequest, waitFor } from './device-helpers.ts';
import { FRAME_BATCH_FEATURE, FrameBatcher } from '../../shared/protocol/batch.ts';
import { StreamMux, type MuxStream } from '../../shared/protocol/mux.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';
import { HEARTBEAT_PING } from '../../shared/protocol/envelope.ts';

export interface TunnelView {
  id: string;
  device_id: string;
  name: string;
  kind: 'http' | 'tcp';
  target: string;
  target_host: string;
  target_port: number;
  access: { mode: string; username?: string; token_prefix?: string };
  rate_limit_per_minute: number | null;
  enabled: boolean;
  connected: boolean;
  allow_clientless: boolean;
  public_url: string;
  created_at: string;
  updated_at: string;
  bearer_token?: string;
}

export const TUNNEL_KEYS = [
  'id', 'device_id', 'name', 'kind', 'target', 'target_host', 'target_port', 'access', 'rate_limit_per_minute',
  'enabled', 'connected', 'allow_clientless', 'public_url', 'created_at', 'updated_at',
].sort();

/** A fresh name no other test uses. */
export const tunnelName = (prefix = 't') => `${prefix}-${randomId(4)}`;

/**
 * Creates a tunnel and returns it. allow_clientless defaults to false here: with it on, the hub
 * holds a visit to an offline device open while it waits for the agent to come back.
 */
export async function makeTunnel(key: string, deviceId: string, body: Record<string, unknown>): Promise<TunnelView> {
  const res = await api(`/api/v1/devices/${deviceId}/tunnels`, { key, json: { target: '127.0.0.1:8080', allow_clientless: false, ...body } });
  const text = await res.text();
  expect(res.status, text).toBe(201);
  return JSON.parse(text) as TunnelView;
}

/** A request to a tunnel's public host, e.g. visit('myapp', '/x'). */
export function visit(name: string, path = '/', init: RequestInit = {}) {
  return SELF.fetch(`http://${name}.localhost${path}`, { redirect: 'manual', ...init });
}

export const basicAuth = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

/**
 * A fake agent on a real DeviceHub socket with its own stream mux. It answers every OPEN with a
 * small 200 unless `onOpen` handles it, and batches its frames when it announced `features`
 * with frame-batch and the hub's hello_ack did too.
 *
 * Beware: in these tests its messages may reach the hub OUT OF ORDER. workerd hands them over in
 * order, but @cloudflare/vitest-pool-workers (0.15.1) wraps the Durable Object and awaits a
 * subrequest to its runner object before each webSocketMessage call, so a message sent close
 * behind another can overtake it (cloudflare/workers-sdk#13433, fixed for WebSocket handlers by
 * #14061). Production and the e2e tests (Miniflare, no wrapper) keep the order. A test that
 * sends bulk DATA must not send CLOSE (or anything order-sensitive) right behind it, and must not
 * check the bytes' order.
 */
export async function fakeTunnelAgent(deviceId: string, privateKey: CryptoKey, opts: { features?: string[]; capabilities?: string[]; onOpen?: (stream: MuxStream) => void } = {}) {
  const { features } = opts;
  const res = await connectRequest(await agentJwt(deviceId, privateKey));
  const ws = res.webSocket!;
  ws.accept();
  ws.binaryType = 'arraybuffer';
  const text: Record<string, unknown>[] = [];
  const binary: Uint8Array[] = [];
  const batcher = new FrameBatcher({ send: (m) => ws.send(m), schedule: (f) => setTimeout(f, 0) });
  const mux = new StreamMux(batcher, {
    side: 'agent',
    onOpen: opts.onOpen ?? ((stream) => stream.accept({ status: 200, headers: [['content-type', 'text/plain']] }, { body: new TextEncoder().encode(`stream ${stream.id}`), fin: true })),
  });
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string') {
      const msg = JSON.parse(e.data) as Record<string, unknown>;
      text.push(msg);
      if (msg.t === 'hello_ack') batcher.enabled = (features ?? []).includes(FRAME_BATCH_FEATURE) && ((msg.features as string[] | undefined) ?? []).includes(FRAME_BATCH_FEATURE);
      return;
    }
    const bytes = new Uint8Array(e.data as ArrayBuffer);
    binary.push(bytes);
    mux.receive(bytes);
  });
  ws.send(JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, agent_version: '0.1.0-test', capabilities: opts.capabilities ?? ['tunnels'], ...(features ? { features } : {}) }));
  // The hub counts only heartbeats as contact, and its test window is three heartbeats of 1 s
  // (HEARTBEAT_INTERVAL_MS in vitest.workers.config.ts): a long test must keep pinging.
  const heartbeat = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) ws.send(HEARTBEAT_PING);
    else clearInterval(heartbeat);
  }, 300);
  await waitFor(() => text.some((m) => m.t === 'tunnels'), 'the tunnel table');
  return { ws, text, binary, batcher, mux };
}
