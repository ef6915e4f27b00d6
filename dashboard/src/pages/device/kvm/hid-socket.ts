// The KVM tab's live input: one WebSocket to GET …/hid per open tab (same origin, the session
// cookie goes along). It dials again by itself after a drop, with backoff, and never queues input
// while it is down: a key press or click from before a drop is stale by the time it could arrive,
// and the relay released everything this viewer held when the old socket closed. So send() says
// whether the message went out, and the caller forgets what it thought was held.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { HidInput, HidOutput } from '../../../../../shared/api/kvm.ts';
import { get, redialDelay, socketUrl } from '../../../api.ts';
import { devicePath } from '../shared.ts';

export type HidConnection = 'off' | 'connecting' | 'open' | 'reconnecting';

/** What the socket hands the tab: each message from the device, and every (re)open and drop. */
export interface HidHandlers {
  onMessage: (m: HidOutput) => void;
  onOpen?: () => void;
  onDrop?: () => void;
}

export interface HidSocket {
  connection: HidConnection;
  /** Sends one input message; false (and nothing queued) while the socket is not open. */
  send: (m: HidInput) => boolean;
}

/** The live input socket for `deviceId` while `enabled` (the user may write and the device is online). */
export function useHidSocket(deviceId: string, enabled: boolean, handlers: HidHandlers): HidSocket {
  const [connection, setConnection] = useState<HidConnection>('off');
  const ws = useRef<WebSocket | null>(null);
  const h = useRef(handlers);
  h.current = handlers;

  useEffect(() => {
    if (!enabled) {
      setConnection('off');
      return;
    }
    let stopped = false;
    let retry = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = () => {
      setConnection(retry ? 'reconnecting' : 'connecting');
      const s = new WebSocket(socketUrl(devicePath(deviceId, '/hid')));
      ws.current = s;
      let opened = false;
      s.onopen = () => {
        opened = true;
        retry = 0;
        setConnection('open');
        h.current.onOpen?.();
      };
      s.onmessage = (e) => {
        let m: HidOutput;
        try {
          m = JSON.parse(String(e.data));
        } catch {
          return;
        }
        if (m && typeof m === 'object' && typeof m.t === 'string') h.current.onMessage(m);
      };
      s.onclose = () => {
        if (ws.current === s) ws.current = null;
        if (stopped) return;
        setConnection('reconnecting');
        h.current.onDrop?.();
        const again = () => {
          if (stopped) return;
          timer = setTimeout(connect, redialDelay(retry++, 500, 15_000));
        };
        // A refused upgrade shows only as a socket that never opened: ask who we are first, so an
        // ended session shows the "session expired" page instead of a socket dialling forever.
        if (!opened) get('/api/v1/auth/me').then(again, again);
        else again();
      };
    };
    connect();
    // The network coming back dials at once instead of waiting out the backoff.
    const online = () => {
      if (!ws.current && !stopped) {
        clearTimeout(timer);
        connect();
      }
    };
    addEventListener('online', online);
    return () => {
      stopped = true;
      clearTimeout(timer);
      removeEventListener('online', online);
      // Closing releases every key and button this viewer holds, on the device.
      ws.current?.close(1000);
      ws.current = null;
      setConnection('off');
    };
  }, [deviceId, enabled]);

  // Stable across renders, so a capture made once keeps sending on whichever socket is current.
  const send = useCallback((m: HidInput) => {
    const s = ws.current;
    if (!s || s.readyState !== WebSocket.OPEN) return false;
    s.send(JSON.stringify(m));
    return true;
  }, []);
  return { connection, send };
}
