// The fleet's live events for every page, over one WebSocket per tab: GET /api/v1/stream in its
// WebSocket form (README, "Live events"), authenticated by the session cookie. It resumes from
// the last event it handled after a drop, acknowledges in batches so the relay never holds a
// stalled tab's backlog, and tells pages to re-read what they show when it could not resume
// (a gap, or a reconnect after events may have been missed). It carries both of the stream's
// topics: `status` (a device online or offline) and `metrics` (each device's sample, at the relay's
// refresh interval, for the fleet page's live figures).
import { signal } from '@preact/signals';
import type { MetricsEvent } from '../../shared/api/metrics.ts';
import type { StatusEvent } from '../../shared/api/stream.ts';
import { get, redialDelay, socketUrl } from './api.ts';

export type StreamConnection = 'connecting' | 'live' | 'reconnecting' | 'closed';
export const streamConnection = signal<StreamConnection>('closed');

export interface StreamEvents {
  status: StatusEvent;
  metrics: MetricsEvent;
}
type Listener = { [K in keyof StreamEvents]: (data: StreamEvents[K]) => void };

const listeners = new Map<keyof StreamEvents, Set<(data: never) => void>>();
const resyncs = new Set<() => void>();

/** Calls `fn` with every `event` of this name; returns the unsubscribe. */
export function onStreamEvent<K extends keyof StreamEvents>(event: K, fn: Listener[K]): () => void {
  let set = listeners.get(event);
  if (!set) listeners.set(event, (set = new Set()));
  set.add(fn as (data: never) => void);
  return () => set.delete(fn as (data: never) => void);
}

/** Calls `fn` whenever events may have been missed: re-read what the page shows. */
export function onStreamResync(fn: () => void): () => void {
  resyncs.add(fn);
  return () => resyncs.delete(fn);
}

const ACK_EVERY = 32;
let socket: WebSocket | null = null;
let lastId: string | undefined;
let unacked = 0;
let retry = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
let wanted = false;

function url(): string {
  const u = socketUrl('/api/v1/stream');
  if (lastId) u.searchParams.set('last_event_id', lastId);
  return u.toString();
}

function handle(raw: string) {
  let m: { t?: string; id?: string; event?: keyof StreamEvents; data?: unknown };
  try {
    m = JSON.parse(raw);
  } catch {
    return;
  }
  if (m.t === 'event' && m.event) {
    lastId = m.id;
    for (const fn of listeners.get(m.event) ?? []) fn(m.data as never);
    if (++unacked >= ACK_EVERY) {
      socket?.send(JSON.stringify({ t: 'ack', n: unacked }));
      unacked = 0;
    }
  } else if (m.t === 'gap') {
    lastId = m.id;
    for (const fn of resyncs) fn();
  }
}

function connect() {
  clearTimeout(timer);
  streamConnection.value = retry ? 'reconnecting' : 'connecting';
  const ws = new WebSocket(url());
  socket = ws;
  unacked = 0;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    // A first connection has nothing to catch up on; after a drop without an id to resume from, pages re-read.
    if (retry && !lastId) for (const fn of resyncs) fn();
    retry = 0;
    streamConnection.value = 'live';
  };
  ws.onmessage = (ev) => handle(String(ev.data));
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = null;
    if (!wanted) return;
    streamConnection.value = 'reconnecting';
    const again = () => {
      if (!wanted || socket) return;
      timer = setTimeout(connect, redialDelay(retry++, 250, 10_000));
    };
    // 4001: the session expired; 4003: access changed; a refused upgrade shows only as a socket that
    // never opened. Ask who we are before dialling again: a 401 shows the "session expired" page
    // (which stops the stream), and no doomed upgrade is tried meanwhile.
    if (ev.code === 4001 || ev.code === 4003 || !opened) get('/api/v1/auth/me').then(again, again);
    else again();
  };
}

export function startStream() {
  if (wanted) return;
  wanted = true;
  retry = 0;
  connect();
}

export function stopStream() {
  wanted = false;
  clearTimeout(timer);
  lastId = undefined;
  socket?.close(1000);
  socket = null;
  streamConnection.value = 'closed';
}

// A tab coming back from the background or the network returning reconnects at once.
addEventListener('online', () => {
  if (wanted && !socket) connect();
});
