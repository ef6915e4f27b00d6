// The Worker entry: wires the runtime to the app built in app.ts and exports the Durable Object classes.
// Requests for `<tunnel>.<TUNNEL_DOMAIN>` are tunnel visits and never reach the API's router.
import { createApp } from './app.ts';
import { errorBody } from '../shared/codes.ts';
import { tunnelDomain, tunnelNameFromHost, visitTunnel } from './tunnels/ingress.ts';

export { DeviceHub } from '../durable-objects/device-hub.ts';
export { FleetHub } from '../durable-objects/fleet-hub.ts';

const app = createApp({ startedAt: Date.now() });

export default {
  fetch(request, env, ctx) {
    // workerd builds request.url from the Host header as sent, so a Host such as `a:1:2` or `a b`
    // makes a URL nothing can parse; that is the client's mistake, not ours.
    const url = URL.parse(request.url);
    if (!url) return Response.json(errorBody('BAD_REQUEST', 'The Host header is not a valid host[:port]', { header: 'host' }), { status: 400 });
    const tunnel = tunnelNameFromHost(url, tunnelDomain(env));
    return tunnel ? visitTunnel(request, env, ctx, tunnel, url) : app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
