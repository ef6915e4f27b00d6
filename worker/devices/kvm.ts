// The Worker's side of a device's screen and live input: the hub requests of hub/contract.ts for
// them, shared by the native KVM routes, TinyPilot's API and PiTunnel's /screenshot so that each
// is only its own request and answer shapes.
import { INTERNAL, type ScreenRequest } from '../../durable-objects/hub/contract.ts';
import { hubFor } from './hub.ts';

/**
 * The device's answer to a screen request, as the hub passes it on: 200 with the image (or the
 * MJPEG stream), 204 when there is no video signal, or an error `{error, code, details}` (503
 * DEVICE_OFFLINE, 503 NO_SCREEN, 504 DEVICE_TIMEOUT, …).
 */
export function screenRequest(env: Env, deviceId: string, screen: ScreenRequest, signal?: AbortSignal): Promise<Response> {
  return hubFor(env, deviceId).fetch('https://device-hub/screen', { headers: { [INTERNAL.kind]: 'screen', [INTERNAL.screen]: JSON.stringify(screen) }, signal });
}

/** Hands a viewer's WebSocket upgrade (already authorized) to the device's hub. */
export function hidSocket(env: Env, deviceId: string, request: Request): Promise<Response> {
  return hubFor(env, deviceId).fetch('https://device-hub/hid', { headers: { [INTERNAL.kind]: 'hid', upgrade: 'websocket' }, signal: request.signal });
}
