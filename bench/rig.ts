// The set-up the tunnel profilers share: local services, a relay with one agent, and an http
// tunnel named `p` to the services, reached at http://p.localhost:<port>.
import { startDevEnv, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { freePort, startTargets, tempDir, type Targets } from '../test/e2e/harness.ts';

export interface TunnelRig {
  env: DevEnv;
  targets: Targets;
  /** The tunnel's base URL. */
  tunnelUrl: string;
  stop(): Promise<void>;
}

export async function startTunnelRig(opts: { inspectorPort?: number } = {}): Promise<TunnelRig> {
  const targets = await startTargets();
  const port = await freePort();
  const env = await startDevEnv({ dir: await tempDir('rig'), port, demoDevices: ['p'], inspectorPort: opts.inspectorPort, agentLogs: process.env.RIG_AGENT_LOGS ? 'inherit' : undefined });
  await waitOnline(env);
  const { url, apiKey, devices } = env.state;
  const res = await fetch(`${url}/api/v1/devices/${devices[0]!.id}/tunnels`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'p', kind: 'http', target: `127.0.0.1:${targets.http}`, access: { mode: 'public' } }),
  });
  if (res.status !== 201) throw new Error(`tunnel create: ${res.status} ${await res.text()}`);
  await new Promise((r) => setTimeout(r, 500)); // the agent learns its tunnels over its socket
  return {
    env,
    targets,
    tunnelUrl: `http://p.localhost:${port}`,
    async stop() {
      await env.stop();
      targets.stop();
    },
  };
}
