// `npm start`: the relay locally with an online demo device. Ctrl-C, SIGTERM or SIGHUP stops
// everything it started; a second run reuses the state under .pirelay/ (or $PIRELAY_STATE_DIR).
//
// npm does not pass every signal down: on SIGTERM it signals only its shell (which dies and
// leaves us running), and on SIGHUP it just exits. So besides our own signals we watch the
// processes between us and npm, and stop when any of them is gone. And the libraries we load
// answer SIGINT and SIGTERM with an immediate process.exit() (wrangler when imported, Miniflare
// once workerd runs), which skipped our goodbye and left the agents running: we take those over.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startDevEnv, waitOnline } from './dev-env.ts';

const port = Number(process.env.PORT ?? 8787);
const dir = process.env.PIRELAY_STATE_DIR || undefined;
const say = (m: string) => console.log(`[pirelay] ${m}`);

// A local relay may notify a webhook on this machine (alert rules; a deployed relay may not).
const started = startDevEnv({ port, dir, agentLogs: 'inherit', log: say, vars: { ALERT_ALLOW_PRIVATE_TARGETS: 'true' } });
let stopping = false;
const stop = async (why: string) => {
  if (stopping) return;
  stopping = true;
  console.log('');
  say(`${why}: stopping the relay and the agent…`);
  // A signal during startup waits for what is starting, so nothing is left behind.
  const env = await started.catch(() => null);
  await env?.stop().catch((e) => console.error(`[pirelay] ${e instanceof Error ? e.message : String(e)}`));
  say('stopped');
  process.exit(0);
};
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const onSignal = (signal: NodeJS.Signals) => void stop(signal);
function ownSignals() {
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) if (listener !== onSignal) process.off(signal, listener);
    if (!process.listeners(signal).includes(onSignal)) process.on(signal, onSignal);
  }
}
ownSignals();

/** Our ancestors up to npm (when npm runs us), else just our parent (tsx). */
function watchedAncestors(): number[] {
  const chain: number[] = [];
  let pid = process.ppid;
  for (let i = 0; i < 8 && pid > 1; i++) {
    chain.push(pid);
    if (!process.env.npm_lifecycle_event) break;
    let line: string;
    try {
      line = execFileSync('ps', ['-o', 'ppid=,args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    } catch {
      break;
    }
    const [, ppid, args] = /^(\d+)\s+(.*)$/.exec(line) ?? [];
    if (!ppid || /(^|\/)npm(-cli\.js)?( |$)/.test(args!)) break;
    pid = Number(ppid);
  }
  return chain;
}

/** A process that exited but was not reaped yet (a zombie, state Z on Linux) counts as gone. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true; // no /proc (macOS): kill(0) has spoken
  }
};

const ancestors = watchedAncestors();
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent || !ancestors.every(alive)) void stop('the npm process is gone');
}, 500).unref();

const env = await started;
ownSignals();
if (stopping) await new Promise(() => {}); // stop() is under way and exits
await waitOnline(env, 30_000).catch((e) => console.error(`[pirelay] ${e.message}`));
const { url, adminUser, adminPassword, apiKey, devices } = env.state;
console.log(`
  pirelay is running at ${url}

  dashboard     ${url}/   (sign in as ${adminUser})
  API           ${url}/api/v1   (reference: ${url}/docs)
  admin login   ${adminUser} / ${adminPassword}
  API key       ${apiKey}
  devices       ${devices.map((d) => `${d.name} (${d.id})`).join(', ')}
  HID reports   ${devices.map((d) => `${env.hidDir(d.id)}/hidg0 (keyboard), hidg1 (mouse)`).join('; ')}
  device log    ${devices.map((d) => `${env.logFile(d.id)} (source_name demo)`).join('; ')}

  try:  curl ${url}/devices -u ${apiKey}:
        curl ${url}/device_info -u ${apiKey}: -d device_id=${devices[0]?.id}
        curl ${url}/terminal -u ${apiKey}: -d device_id=${devices[0]?.id}
        echo "hello from the device" >> ${devices[0] ? env.logFile(devices[0].id) : ''}; curl "${url}/api/v1/logs?q=hello" -H "authorization: Bearer ${apiKey}"
        curl -N "${url}/api/v1/stream?agent_id=${devices[0]?.id}&events=metrics" -H "authorization: Bearer ${apiKey}"   (live samples, one a second while watched)
        curl "${url}/api/v1/history?agent_id=${devices[0]?.id}&resolution=1m" -H "authorization: Bearer ${apiKey}"

  (also in ${env.dir}/dev.json; Ctrl-C stops the relay and the agent)
`);
