// Notifications of alerts, in each supported format: the request a channel (shared/api/alerts.ts
// ChannelSchema) gets for a notification (a generic webhook's JSON, Slack's and Discord's webhook
// bodies, ntfy's message with its headers, Telegram's sendMessage), and one attempt at sending it,
// with a deadline, reporting the status or the error. Used by the device hubs' alerts capability
// and by the Worker's test-notification route, so both send exactly the same requests.
import type { AlertNotification, Channel } from '../../shared/api/alerts.ts';

export interface ChannelRequest {
  url: string;
  init: RequestInit & { method: 'POST'; headers: Record<string, string>; body: string };
}

/** The request `channel` gets for `n`. */
export function channelRequest(_channel: Channel, _n: AlertNotification): ChannelRequest {
  throw new Error('notification formats are not built yet');
}

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  error: string | null;
}

/** One attempt; never throws. A 2xx is delivered; anything else (or no answer within `timeoutMs`) is a failure to retry. */
export async function attempt(_req: ChannelRequest, _timeoutMs = 10_000): Promise<AttemptResult> {
  return { ok: false, status: null, error: 'notifications are not built yet' };
}
