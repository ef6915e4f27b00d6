// STUB (the notify helper's file; its version replaces this one at merge): a rule's channels
// sealed for D1 and the views the API shows of them. This stub seals nothing.
import type { Channel, ChannelView } from '../../shared/api/alerts.ts';

export async function sealChannels(_env: Env, _ruleId: string, channels: Channel[]): Promise<{ sealed: string | null; views: ChannelView[] }> {
  return { sealed: null, views: channels.map((c) => ({ type: c.type, host: new URL(c.type === 'telegram' ? (c.api_url ?? 'https://api.telegram.org') : c.url).host })) };
}
