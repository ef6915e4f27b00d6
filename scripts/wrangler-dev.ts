// The relay under `wrangler dev` (what `npm run dev` runs, with hot reload), as a library with the
// same shape as startRelay: D1 migrations applied with wrangler into the state directory, then
// `wrangler dev` on the port with the given vars. Slower per request than startRelay (two proxies
// in front of workerd) but the very command developers use; an end-to-end test runs through it.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { ROOT } from './dev-env.ts';
import { localClientVars, type Relay, type RelayOptions } from './relay.ts';

const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');

export async function startWranglerDev(opts: RelayOptions): Promise<Relay> {
  const stateDir = resolve(opts.stateDir);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8787;
  const env = { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };
  await promisify(execFile)(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', stateDir], { cwd: ROOT, env });
  // wrangler dev serves through Miniflare's entry worker, which sets CF-Connecting-IP only when the
  // client sent none: the header is not to be trusted here, as under the local relay.
  const vars = Object.entries({ ...localClientVars(host), ...opts.vars }).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  const child = spawn(WRANGLER, ['dev', '--ip', host, '--port', String(port), '--persist-to', stateDir, '--inspector-port', '0', '--show-interactive-dev-session=false', '--log-level', opts.log ? 'info' : 'warn', ...vars], {
    cwd: ROOT,
    env,
    stdio: ['ignore', opts.log ? 'inherit' : 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
  const url = `http://${host}:${port}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`wrangler dev exited (${code}): ${stderr}`))));
  const ready = (async () => {
    for (const started = Date.now(); Date.now() - started < 60_000; ) {
      const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`wrangler dev did not answer /health within 60 s: ${stderr}`);
  })();
  try {
    await Promise.race([ready, exited]);
  } catch (e) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
    throw e;
  }
  exited.catch(() => {});
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      // wrangler runs workerd as a child of its own: end the whole process group.
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // gone already
        }
      }, 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
