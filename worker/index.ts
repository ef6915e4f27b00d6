// The Worker entry: wires the runtime to the app built in app.ts and exports the DeviceHub class.
// Requests for `<tunnel>.<TUNNEL_DOMAIN>` are tunnel visits and never reach the API's router.
import { createApp } from './app.ts';
import { tunnelDomain, tunnelNameFromHost, visitTunnel } from './tunnels/ingress.ts';

export { DeviceHub } from '../durable-objects/device-hub.ts';

const app = createApp({ startedAt: Date.now() });

export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    const tunnel = tunnelNameFromHost(url, tunnelDomain(env));
    return tunnel ? visitTunnel(request, env, ctx, tunnel, url) : app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
