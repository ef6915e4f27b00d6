// Test helpers for tunnels: create them through the API and visit them by Host, the way a
// browser reaches `<name>.localhost`.
import { SELF } from 'cloudflare:test';
import { expect } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { api } from './helpers.ts';

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
