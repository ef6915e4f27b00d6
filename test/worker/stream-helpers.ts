// Readers of GET /api/v1/stream for workers tests, through the Worker as a client opens them: the
// SSE form read off the response body, and the WebSocket form as a browser opens it (?api_key=).
// Events go straight to the relay's FleetHub (the call device hubs make), so a test controls
// each event's team; `settle` publishes a marker and waits for it, so that a check that something
// did NOT arrive means something (a stream's events arrive in order).
import { env } from 'cloudflare:test';
import { expect } from 'vitest';
import { api } from './helpers.ts';
import { waitFor } from './device-helpers.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';

export const publish = (agentId: string, teamId: string, status: 'online' | 'offline' = 'online') =>
  fleetHubFor(env).publish({ agent_id: agentId, team_id: teamId, status, timestamp: new Date().toISOString() });

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Opens an SSE route (`path` with its query) and keeps everything it says: the raw text, the
 * named events parsed, whether it ended. Waits until the stream opened (its `retry:` line).
 */
export async function sseAt(path: string, key: string, headers: Record<string, string> = {}) {
  const res = await api(path, { key, headers });
  expect(res.status, await (res.status === 200 ? Promise.resolve('') : res.clone().text())).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ended = false;
  void (async () => {
    for (;;) {
      const r = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (r.done) break;
      text += decoder.decode(r.value, { stream: true });
    }
    ended = true;
  })();
  const events = (): SseEvent[] =>
    text
      .split('\n\n')
      .slice(0, -1)
      .map((block) => {
        const e: SseEvent = { event: 'message', data: '' };
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) e.id = line.slice(4);
          else if (line.startsWith('event: ')) e.event = line.slice(7);
          else if (line.startsWith('data: ')) e.data = line.slice(6);
        }
        return e;
      })
      .filter((e) => e.event !== 'message');
  await waitFor(() => text.startsWith('retry:'), 'the stream to open');
  return { events, text: () => text, ended: () => ended, cancel: () => reader.cancel() };
}

/** Opens the status stream as an SSE reader and keeps everything it says. */
export async function sse(key: string, query = '', headers: Record<string, string> = {}) {
  const r = await sseAt(`/api/v1/stream${query}`, key, headers);
  const statuses = () => r.events().filter((e) => e.event === 'status').map((e) => JSON.parse(e.data) as { agent_id: string; team_id: string });
  return { ...r, statuses };
}
export type SseReader = Awaited<ReturnType<typeof sse>>;

/** Publishes a marker event of `team` and waits for `r` to get it (then whatever the hub sent it before is in). */
export async function settle(r: SseReader, team: string) {
  const id = await publish(`marker-${team}`, team);
  await waitFor(() => r.events().some((e) => e.id === id), `the marker ${id}`);
}

/** The status events `r` got, without the markers. */
export const devicesOf = (r: SseReader) => r.statuses().filter((s) => !s.agent_id.startsWith('marker-')).map((s) => s.agent_id);

/** The WebSocket form, as a browser opens it (?api_key=, which takes a session token too). */
export async function socket(key: string, query = '') {
  const res = await api(`/api/v1/stream?api_key=${encodeURIComponent(key)}${query}`, { headers: { upgrade: 'websocket' } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const got: { t: string; id?: string; data?: { agent_id: string } }[] = [];
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener('message', (e) => void got.push(JSON.parse(String(e.data))));
  ws.addEventListener('close', (e) => {
    closed = { code: e.code, reason: e.reason };
    ws.close();
  });
  return { ws, got, closed: () => closed };
}
export type SocketReader = Awaited<ReturnType<typeof socket>>;
