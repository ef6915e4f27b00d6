// One device's live samples for its Metrics tab: GET /api/v1/stream?agent_id=<id>&events=metrics
// in its WebSocket form, which the relay bridges to the device's own hub (README, "Live events"), so
// the samples come at the live interval (1 s) while the tab is open, and the device goes back to
// the relay's refresh interval when it closes. Like the fleet stream (fleet-stream.ts), it
// acknowledges in batches (the hub drops a watcher that leaves STREAM_WINDOW events unacknowledged),
// resumes with last_event_id after a drop, and says when samples may have been missed (a gap) so
// the tab can read history again.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MetricsEvent } from '../../../shared/api/metrics.ts';
import { get, redialDelay, socketUrl } from '../api.ts';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

const ACK_EVERY = 32;

export function useMetricsSocket(agentId: string, enabled: boolean, onSample: (e: MetricsEvent) => void, onGap: () => void): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handlers = useRef({ onSample, onGap });
  handlers.current = { onSample, onGap };
  useEffect(() => {
    if (!enabled) return;
    let socket: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastId: string | undefined;
    let attempt = 0;
    let done = false;
    const open = () => {
      const u = socketUrl('/api/v1/stream');
      u.searchParams.set('agent_id', agentId);
      u.searchParams.set('events', 'metrics');
      if (lastId) u.searchParams.set('last_event_id', lastId);
      const ws = (socket = new WebSocket(u));
      let unacked = 0;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        attempt = 0;
        setState('live');
      };
      ws.onmessage = (ev) => {
        let m: { t?: string; id?: string; event?: string; data?: MetricsEvent };
        try {
          m = JSON.parse(String(ev.data));
        } catch {
          return;
        }
        if (m.t === 'event' && m.event === 'metrics' && m.data) {
          lastId = m.id;
          handlers.current.onSample(m.data);
          if (++unacked >= ACK_EVERY) {
            ws.send(JSON.stringify({ t: 'ack', n: unacked }));
            unacked = 0;
          }
        } else if (m.t === 'gap') {
          lastId = m.id;
          handlers.current.onGap();
        }
      };
      ws.onclose = (ev) => {
        if (done || socket !== ws) return;
        socket = null;
        setState('reconnecting');
        const again = () => {
          if (!done) timer = setTimeout(open, redialDelay(attempt++, 500, 15_000));
        };
        // The session's end (4001), changed access (4003) or a refused upgrade: ask who we are
        // first, so a 401 shows the "session expired" page instead of dialling a doomed socket.
        if (ev.code === 4001 || ev.code === 4003 || !opened) get('/api/v1/auth/me').then(again, again);
        else again();
      };
    };
    setState('connecting');
    open();
    return () => {
      done = true;
      clearTimeout(timer);
      socket?.close(1000);
    };
  }, [agentId, enabled]);
  return state;
}
