// The Worker entry: wires the runtime to the app built in app.ts and exports the DeviceHub class.
import { createApp } from './app.ts';

export { DeviceHub } from '../durable-objects/device-hub.ts';

const app = createApp({ startedAt: Date.now() });

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
