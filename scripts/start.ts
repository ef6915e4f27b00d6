// `npm start`: the relay locally with an online demo device. Ctrl-C stops everything it started;
// a second run reuses the state under .pirelay/.
import { startDevEnv, waitOnline } from './dev-env.ts';

const port = Number(process.env.PORT ?? 8787);
const env = await startDevEnv({ port, agentLogs: 'inherit', log: (m) => console.log(`[pirelay] ${m}`) });
await waitOnline(env, 30_000).catch((e) => console.error(`[pirelay] ${e.message}`));
const { url, adminUser, adminPassword, apiKey, devices } = env.state;
console.log(`
  pirelay is running at ${url}

  admin login   ${adminUser} / ${adminPassword}
  API key       ${apiKey}
  devices       ${devices.map((d) => `${d.name} (${d.id})`).join(', ')}

  try:  curl ${url}/devices -u ${apiKey}:
        curl ${url}/device_info -u ${apiKey}: -d device_id=${devices[0]?.id}

  (also in .pirelay/dev.json; Ctrl-C stops the relay and the agent)
`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\n[pirelay] stopping…');
  await env.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
