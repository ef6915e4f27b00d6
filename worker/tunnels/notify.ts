// After any tunnel write: forget this isolate's cached tunnels and tell the device's DeviceHub,
// which reloads the device's tunnels from D1, pushes the new list to the agent and resets the
// streams of tunnels that are gone, disabled or closed.
import { hubFor } from '../devices/hub.ts';
import { forgetTunnels } from './name-cache.ts';

/**
 * The hub call, behind an object so a test can stand in a hub that fails (tunnel-control's
 * "not disconnected" outcome has no other way to happen on demand).
 */
export const hubTunnels = {
  changed: (env: Env, deviceId: string): Promise<void> => hubFor(env, deviceId).tunnelsChanged(),
};

/** Throws if the hub could not be told; the write itself is already in D1. */
export async function tunnelsChanged(env: Env, deviceId: string): Promise<void> {
  forgetTunnels();
  await hubTunnels.changed(env, deviceId);
}

/**
 * For the native API: the write is in D1, so a hub that cannot be reached is logged rather than
 * failing the call (a retry of a create or delete would only meet a 409 or 404). Such a hub keeps
 * its old view of the device's tunnels until the next change or the agent's next connect; the
 * ingress, which reads D1 (cached for seconds), already refuses what was disabled or closed.
 */
export async function tunnelsChangedQuietly(env: Env, deviceId: string): Promise<void> {
  try {
    await tunnelsChanged(env, deviceId);
  } catch (e) {
    console.error('DeviceHub.tunnelsChanged failed', deviceId, e);
  }
}
