// An alert rule's channels at rest: sealed together as one JSON array under VARIABLES_KEY (place
// alert-rule:<id>, so a sealed value copied onto another rule does not open there), with their
// views ({type, host}) beside them — all the API ever shows of a channel. The rules routes seal on
// create and on a channels change; the hub opens them to send (durable-objects/capabilities/
// alert-notify.ts openRuleChannels, over the same shared core). Targets the relay may not send to
// (local and private addresses, unless ALERT_ALLOW_PRIVATE_TARGETS) are refused here, when a rule
// is saved, and again at each attempt.
import type { Channel, ChannelView } from '../../shared/api/alerts.ts';
import { SecretBoxError } from '../../shared/secret-box.ts';
import { allowsPrivateTargets, channelUrl, channelView, openRuleChannels, targetRefusal } from '../../durable-objects/capabilities/alert-notify.ts';
import { ApiError, unprocessable } from '../errors.ts';
import { alertRulePlace, seal } from '../auth/secret-box.ts';

/** 422 CHANNEL_TARGET_REFUSED when a channel points where this relay does not send, naming the channel by index and host only. */
export function assertTargets(env: Env, channels: Channel[]): void {
  for (const [index, channel] of channels.entries()) {
    const why = targetRefusal(channelUrl(channel), allowsPrivateTargets(env));
    if (why) throw unprocessable('CHANNEL_TARGET_REFUSED', `channel ${index} (${channel.type}): ${why}`, { index, host: channelView(channel).host });
  }
}

/** The rule's channels sealed (null for none) and their views; 503 SECRETS_UNAVAILABLE without VARIABLES_KEY. */
export async function sealChannels(env: Env, ruleId: string, channels: Channel[]): Promise<{ sealed: string | null; views: ChannelView[] }> {
  assertTargets(env, channels);
  const views = channels.map(channelView);
  if (!channels.length) return { sealed: null, views };
  return { sealed: await seal(env, JSON.stringify(channels), alertRulePlace(ruleId)), views };
}

/** The rule's channels, opened; 503 SECRETS_UNAVAILABLE when they do not open. */
export async function openChannels(env: Env, ruleId: string, sealed: string | null): Promise<Channel[]> {
  try {
    return await openRuleChannels(env, ruleId, sealed);
  } catch (e) {
    if (e instanceof SecretBoxError) throw new ApiError(503, 'SECRETS_UNAVAILABLE', e.message);
    throw e;
  }
}
