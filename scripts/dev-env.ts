// Brings up a local pirelay the way `npm start` does, as a library: the relay in workerd, a first
// admin and API key, and demo devices with real agent processes (--simulate). `npm start`, the
// benchmarks and end-to-end tests all use it, so they exercise exactly what a developer runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRelay, type Relay, type RelayOptions } from './relay.ts';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
export const BUN = join(ROOT, 'node_modules/.bin/bun');
export const AGENT_MAIN = join(ROOT, 'agent/main.ts');

export interface DevState {
  url: string;
  adminUser: string;
  adminPassword: string;
  apiKey: string;
  devices: { id: string; name: string }[];
}

export interface DevEnv {
  relay: Relay;
  state: DevState;
  agents: Map<string, ChildProcess>;
  dir: string;
  /** Where demo device `deviceId` writes its HID reports: DIR/hidg0 (keyboard), DIR/hidg1 (mouse). */
  hidDir(deviceId: string): string;
  /** The file demo device `deviceId` follows as its log (source_name "demo"): append a line, search for it. */
  logFile(deviceId: string): string;
  startAgent(deviceId: string): ChildProcess;
  stopAgent(deviceId: string, signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface DevEnvOptions {
  dir?: string;
  port?: number;
  vars?: Record<string, string>;
  demoDevices?: string[];
  /** Pipe agent logs to this process' stderr with a prefix (npm start) or drop them (bench). */
  agentLogs?: 'inherit' | 'ignore';
  agentArgs?: string[];
  log?: (msg: string) => void;
  inspectorPort?: number;
  /** How to run the relay: startRelay (workerd through Miniflare's API) unless told otherwise. */
  startRelay?: (opts: RelayOptions) => Promise<Relay>;
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function writePrivate(path: string, value: unknown) {
  await writeFile(path, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  await chmod(path, 0o600);
}

async function call(url: string, path: string, init: { method?: string; key?: string; json?: unknown; bearer?: string } = {}) {
  const headers: Record<string, string> = {};
  const auth = init.key ?? init.bearer;
  if (auth) headers.authorization = `Bearer ${auth}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, { method: init.method ?? (init.json ? 'POST' : 'GET'), headers, body: init.json ? JSON.stringify(init.json) : undefined });
  const text = await res.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

export function runBun(args: string[], opts: { logs?: 'inherit' | 'ignore' | 'pipe'; prefix?: string } = {}): ChildProcess {
  // PIRELAY_BUN_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the agents.
  const flags = process.env.PIRELAY_BUN_FLAGS?.split(' ').filter(Boolean) ?? [];
  return spawnLogged(BUN, [...flags, ...args], opts);
}

function spawnLogged(command: string, args: string[], opts: { logs?: 'inherit' | 'ignore' | 'pipe'; prefix?: string }): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', opts.logs === 'ignore' ? 'ignore' : 'pipe', opts.logs === 'ignore' ? 'ignore' : 'pipe'] });
  if (opts.logs === 'inherit') {
    const prefix = opts.prefix ?? '';
    for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => process.stderr.write(d.toString().replace(/^(?=.)/gm, prefix)));
  }
  return child;
}

/** Runs a Bun command to completion and collects its output. */
export async function runBunToEnd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = runBun(args, { logs: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? 1)));
  return { code, stdout, stderr };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const v = await fn().catch(() => null);
    if (v) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface DevSecrets {
  SESSION_SECRET: string;
  BOOTSTRAP_TOKEN: string;
  /** AES-256 key sealing variable and TOTP secrets (worker/auth/secret-box.ts). */
  VARIABLES_KEY: string;
}

/** Fresh secrets for a local relay. */
export function newSecrets(): DevSecrets {
  return {
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    BOOTSTRAP_TOKEN: randomBytes(24).toString('base64url'),
    VARIABLES_KEY: randomBytes(32).toString('base64url'),
  };
}

export async function startDevEnv(opts: DevEnvOptions = {}): Promise<DevEnv> {
  const dir = resolve(opts.dir ?? join(ROOT, '.pirelay'));
  const log = opts.log ?? (() => {});
  await mkdir(join(dir, 'agents'), { recursive: true, mode: 0o700 });

  const secretsPath = join(dir, 'secrets.json');
  const found = await readJson<Partial<DevSecrets>>(secretsPath);
  const secrets = { ...newSecrets(), ...found };
  // A state directory from before a secret existed gains it (VARIABLES_KEY came with teams).
  if (!found || Object.keys(secrets).some((k) => !(k in found))) await writePrivate(secretsPath, secrets);

  const relay = await (opts.startRelay ?? startRelay)({ port: opts.port ?? 8787, stateDir: join(dir, 'state'), vars: { ...secrets, ...(opts.vars ?? {}) }, inspectorPort: opts.inspectorPort });
  const url = relay.url;
  const statePath = join(dir, 'dev.json');
  let state = await readJson<DevState>(statePath);

  const keyWorks = state ? (await call(url, '/api/v1/auth/me', { key: state.apiKey })).status === 200 : false;
  if (!state || !keyWorks) {
    const adminUser = 'admin';
    const adminPassword = randomBytes(12).toString('base64url');
    const boot = await call(url, '/api/v1/bootstrap', { bearer: secrets.BOOTSTRAP_TOKEN, json: { username: adminUser, password: adminPassword } });
    if (boot.status !== 201) {
      await relay.stop();
      throw new Error(`could not create the first admin (${boot.status} ${JSON.stringify(boot.body)}); if ${dir} holds state from elsewhere, remove it and start again`);
    }
    state = { url, adminUser, adminPassword, apiKey: boot.body.api_key.key ?? boot.body.api_key, devices: [] };
    log(`created admin user "${adminUser}" and an admin API key`);
  }
  state.url = url;

  for (const name of opts.demoDevices ?? ['demo-pi']) {
    const configPath = join(dir, 'agents', `${name}.json`);
    const known = state.devices.find((d) => d.name === name);
    if (known && existsSync(configPath)) continue;
    const tok = await call(url, '/api/v1/enrollment-tokens', { key: state.apiKey, json: { name: `demo ${name}`, auto_approve: false, max_uses: 1 } });
    if (tok.status !== 201) throw new Error(`could not make an enrollment token: ${tok.status} ${JSON.stringify(tok.body)}`);
    const enrolled = await runBunToEnd([AGENT_MAIN, 'enroll', '--relay', url, '--token', tok.body.token, '--name', name, '--config', configPath, '--force']);
    if (enrolled.code !== 0) throw new Error(`agent enroll failed: ${enrolled.stderr || enrolled.stdout}`);
    const { device_id } = JSON.parse(enrolled.stdout.trim().split('\n').pop()!);
    const approved = await call(url, `/api/v1/devices/${device_id}/approve`, { key: state.apiKey, method: 'POST' });
    if (approved.status !== 200) throw new Error(`could not approve ${device_id}: ${approved.status} ${JSON.stringify(approved.body)}`);
    state.devices = [...state.devices.filter((d) => d.name !== name), { id: device_id, name }];
    log(`enrolled and approved demo device ${name} (${device_id})`);
  }
  await writePrivate(statePath, state);

  const agents = new Map<string, ChildProcess>();
  const device = (deviceId: string) => {
    const dev = state!.devices.find((d) => d.id === deviceId);
    if (!dev) throw new Error(`unknown demo device ${deviceId}`);
    return dev;
  };
  // Each demo device is a keyboard and mouse into files of its own, never /dev/hidg*.
  const hidDir = (deviceId: string) => join(dir, 'hid', device(deviceId).name);
  // … and follows a log file of its own, DIR/logs/NAME.log, made empty if it is not there.
  const logFile = (deviceId: string) => join(dir, 'logs', `${device(deviceId).name}.log`);
  const startAgent = (deviceId: string) => {
    const dev = device(deviceId);
    mkdirSync(join(dir, 'logs'), { recursive: true, mode: 0o700 });
    appendFileSync(logFile(deviceId), '');
    const args = ['run', '--simulate', '--hid-dir', hidDir(deviceId), '--log-file', `${logFile(deviceId)}=demo`, '--no-journal', '--config', join(dir, 'agents', `${dev.name}.json`)];
    // PIRELAY_AGENT_BIN runs a compiled agent (`npm run build:agent`) instead of the source, so
    // the benchmark can measure what a device runs.
    const logging = { logs: opts.agentLogs ?? 'ignore', prefix: `[agent ${dev.name}] ` } as const;
    const child = process.env.PIRELAY_AGENT_BIN
      ? spawnLogged(resolve(process.env.PIRELAY_AGENT_BIN), [...args, ...(opts.agentArgs ?? [])], logging)
      : runBun([AGENT_MAIN, ...args, ...(opts.agentArgs ?? [])], logging);
    agents.set(deviceId, child);
    return child;
  };
  const stopAgent = async (deviceId: string, signal: NodeJS.Signals = 'SIGTERM') => {
    const child = agents.get(deviceId);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
    agents.delete(deviceId);
  };
  for (const d of state.devices) startAgent(d.id);

  const devEnv: DevEnv = {
    relay,
    state,
    agents,
    dir,
    hidDir,
    logFile,
    startAgent,
    stopAgent,
    async stop() {
      await Promise.all([...agents.keys()].map((id) => stopAgent(id)));
      // Tests may have restarted the relay: stop whichever one is current.
      await devEnv.relay.stop();
    },
  };
  return devEnv;
}

/** Resolves once every demo device shows online in the API. */
export async function waitOnline(env: DevEnv, timeoutMs = 20_000) {
  for (const d of env.state.devices) {
    await waitFor(`${d.name} online`, async () => {
      const r = await call(env.state.url, `/api/v1/devices/${d.id}`, { key: env.state.apiKey });
      return r.status === 200 && r.body.online === true;
    }, timeoutMs);
  }
}
