// The WebSocket form of one device's metrics stream (GET /api/v1/stream?agent_id=…&events=metrics,
// the dashboard's Metrics tab), bridged in the Worker rather than handed to the device hub.
// Revocation (worker/stream/revoke.ts) reaches the FleetHub's watchers only: a logout, a revoked
// API key, a member removed from a team, a deleted team or a moved device closes those with
// ACCESS_CHANGED, and no device hub is asked (a user's or a team's streams could follow any device,
// so that would be a call to every hub). A client socket given straight to the device hub would
// therefore stay open until its credential expired. So, as the SSE form does, the Worker holds two
// watchers: the device hub's (`metrics`), whose messages go to the client as they are and to which
// the client's own messages (its acks) go as they are, so the protocol, the ids and the hub's
// STREAM_WINDOW bound on the client are those of the device hub; and the FleetHub's (`status` of
// that device), which the client never sees (it asked for metrics) and which exists to be closed:
// its close code (ACCESS_CHANGED, CREDENTIAL_EXPIRED) becomes the client's. The bridge acks the
// FleetHub's events itself, so that watcher is never dropped for leaving them unacknowledged.
// Whichever of the three sockets closes first ends the other two: the client reconnects and is
// authorized anew.
import { z } from 'zod';
import type { StreamAck } from '../../shared/api/stream.ts';

/** What the bridge reads of a FleetHub message: its kind. The data of a status event is never looked at. */
const FleetMessageSchema = z.object({ t: z.string() });

/** Codes a close frame may not carry (RFC 6455 §7.4.1: 1005, 1006 and 1015 are reported, never sent). */
const UNSENDABLE = new Set([1005, 1006, 1015]);
/** What the client is told when a hub's socket ended without a code it could be given: the hub went away (a restart, a deploy). */
const GOING_AWAY = { code: 1001, reason: 'the stream went away' };

/**
 * Bridges a client to an opened device-hub watcher, ended by the FleetHub watcher beside it.
 * Both hub sockets are not accepted yet (what they sent meanwhile waits); returns the client's
 * end of the pair, for the 101 response.
 */
export function bridgeDeviceWatcher(device: WebSocket, fleet: WebSocket): WebSocket {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  device.accept();
  fleet.accept();
  let open = true;
  /** Closes the client with `code` (a hub's, when it may be sent on) and the hub sockets normally. */
  const end = (code: number, reason: string) => {
    if (!open) return;
    open = false;
    const given = code >= 1000 && code < 5000 && !UNSENDABLE.has(code) ? { code, reason } : GOING_AWAY;
    closeQuietly(server, given.code, given.reason);
    closeQuietly(device, 1000, 'the stream ended');
    closeQuietly(fleet, 1000, 'the stream ended');
  };

  device.addEventListener('message', (e) => void sendQuietly(server, e.data));
  server.addEventListener('message', (e) => void sendQuietly(device, e.data));
  fleet.addEventListener('message', (e) => {
    let parsed: unknown = null;
    try {
      parsed = typeof e.data === 'string' ? JSON.parse(e.data) : null;
    } catch {
      // logged below
    }
    const m = FleetMessageSchema.safeParse(parsed);
    if (!m.success) return console.warn(`stream: the FleetHub sent an unreadable message: ${String(e.data).slice(0, 200)}`);
    // One device's status events are rare: each is acked as it comes.
    if (m.data.t === 'event') sendQuietly(fleet, JSON.stringify({ t: 'ack', n: 1 } satisfies StreamAck));
  });

  // The device hub's close (DROPPED after its `dropped` message, CREDENTIAL_EXPIRED, a restart) and
  // the FleetHub's (ACCESS_CHANGED, CREDENTIAL_EXPIRED, a restart) are the client's; the client's own ends the watchers.
  device.addEventListener('close', (e) => end(e.code, e.reason));
  fleet.addEventListener('close', (e) => end(e.code, e.reason));
  server.addEventListener('close', (e) => end(e.code, e.reason));
  for (const ws of [device, fleet, server]) ws.addEventListener('error', () => end(GOING_AWAY.code, GOING_AWAY.reason));
  return client;
}

function sendQuietly(ws: WebSocket, data: string | ArrayBuffer): void {
  try {
    ws.send(data);
  } catch {
    // closing: its close event ends the bridge
  }
}

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
