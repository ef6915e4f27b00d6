#!/usr/bin/env bun
// The agent's command line: `enroll` once, `install-service` to put it under systemd, which then
// runs `run`. `info` and `processes` print what the agent would report, which helps when checking
// a device by hand.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { ENROLL_PATH } from '../shared/constants.ts';
import { readErrorBody } from '../shared/codes.ts';
import type { EnrollRequest } from '../shared/api/enroll.ts';
import { AGENT_VERSION } from '../shared/version.ts';
import { defaultConfigPath, loadConfig, saveConfig } from './config.ts';
import { AgentConnection } from './connection.ts';
import { createLogger, type Logger } from './log.ts';
import { agentCapabilities } from './capabilities.ts';
import { createSystemReader } from './system/reader.ts';
import { kvmOptions } from './kvm/options.ts';
import { DEFAULT_SPOOL_BYTES, logOptions } from './logs/options.ts';
import { terminalOptions } from './terminal/options.ts';
import { DEFAULT_DOCKER_SOCKET, metricsOptions } from './metrics/options.ts';
import { DEFAULT_VIDEO_DEVICE, SCREEN_BACKENDS } from './kvm/screen/types.ts';
import { createTrimmer } from './trim.ts';

const USAGE = `pirelay-agent ${AGENT_VERSION}

Usage:
  pirelay-agent enroll --relay URL --token TOKEN [--name NAME] [--config PATH] [--force]
  pirelay-agent install-service [--config PATH]
  pirelay-agent run [--config PATH] [--simulate] [--max-backoff-ms N]
                    [--hid-dir DIR] [--screen BACKEND] [--video-device PATH]
                    [--terminal-command CMD] [--terminal-user USER] [--terminal-idle-ms N]
                    [--log-file PATH[=NAME]]... [--no-journal] [--log-spool-bytes N]
                    [--docker-socket PATH]
  pirelay-agent info | processes | metrics [--root DIR]
  pirelay-agent version | --version | -v

Options:
  --config PATH        agent config file (default: $PIRELAY_AGENT_CONFIG, /etc/pirelay/agent.json as root,
                       else ~/.config/pirelay/agent.json)
  --simulate           mark this agent as simulated (a test or demo device): hello lists \`simulated\`
  --root DIR           read /proc, /sys and /etc under DIR (for testing on a snapshot)
  --max-backoff-ms N   cap of the reconnect backoff (default 30000)
  --hid-dir DIR        append the keyboard and mouse reports to DIR/hidg0 and DIR/hidg1 instead of
                       writing them to /dev/hidg0 and /dev/hidg1 (with --simulate the default is the
                       hid/ folder beside the config file, so a demo device never touches /dev/hidg*)
  --screen BACKEND     where screenshots come from: ${SCREEN_BACKENDS.join(', ')}
                       (default auto: the first that works here; simulated with --simulate)
  --video-device PATH  the capture card for the v4l2 backend (default ${DEFAULT_VIDEO_DEVICE})
  --terminal-command CMD   what a terminal session runs (a shell command line; default the login
                       shell of the session's account)
  --terminal-user USER the account terminal sessions run as (default the agent's own; another
                       needs the agent to run as root)
  --terminal-idle-ms N how long a session nobody watches keeps running (default 600000: 10 minutes)
  --log-file PATH[=NAME]  follow this file's lines (repeatable; NAME is its source_name, default PATH)
  --no-journal         do not follow the systemd journal (default: follow it when journalctl is here;
                       $PIRELAY_JOURNALCTL names another journalctl)
  --log-spool-bytes N  bound of the on-disk spool of lines not yet stored by the relay (default
                       ${DEFAULT_SPOOL_BYTES}); past it the oldest lines are dropped and counted
  --docker-socket PATH the Docker Engine API socket whose containers the metrics list (default: a
                       unix:// $DOCKER_HOST, else ${DEFAULT_DOCKER_SOCKET}; absent: no containers)

install-service copies this binary to /usr/local/bin/pirelay-agent, writes the systemd unit
/etc/systemd/system/pirelay-agent.service (running \`run --config PATH\`), then runs
\`systemctl daemon-reload\` and \`systemctl enable --now pirelay-agent\`. Elsewhere:
PIRELAY_BIN_DIR, PIRELAY_UNIT_DIR, PIRELAY_SYSTEMCTL (default: systemctl on PATH).
`;

class UsageError extends Error {}

/** The first trim (agent/trim.ts), once start-up, hello and the first samples are behind the agent. */
const TRIM_FIRST_MS = 20_000;
/** Then this often, which releases what a passing burst (a terminal, a KVM session) touched. */
const TRIM_EVERY_MS = 10 * 60_000;

/** Trims the executable's pages on a schedule; PIRELAY_AGENT_TRIM=off leaves them (to compare). */
function startTrimming(log: Logger): { stop(): void } {
  if (process.env.PIRELAY_AGENT_TRIM === 'off') return { stop() {} };
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  void createTrimmer().then(
    (trimmer) => {
      const step = (first: boolean) => {
        if (stopped) return;
        const bytes = trimmer.trim();
        if (first) log.debug('trimmed the executable pages start-up touched', { mappings_mib: Math.round(bytes / 1_048_576) });
        timer = setTimeout(() => step(false), TRIM_EVERY_MS);
      };
      if (!stopped) timer = setTimeout(() => step(true), TRIM_FIRST_MS);
    },
    (e) => log.warn('trimming is off', { error: String(e) }),
  );
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      relay: { type: 'string' },
      token: { type: 'string' },
      name: { type: 'string' },
      config: { type: 'string' },
      force: { type: 'boolean', default: false },
      simulate: { type: 'boolean', default: false },
      root: { type: 'string', default: '/' },
      'max-backoff-ms': { type: 'string' },
      'hid-dir': { type: 'string' },
      screen: { type: 'string' },
      'video-device': { type: 'string' },
      'terminal-command': { type: 'string' },
      'terminal-user': { type: 'string' },
      'terminal-idle-ms': { type: 'string' },
      'log-file': { type: 'string', multiple: true },
      'no-journal': { type: 'boolean', default: false },
      'log-spool-bytes': { type: 'string' },
      'docker-socket': { type: 'string' },
    },
    strict: true,
  });
  const configPath = values.config ?? defaultConfigPath();
  const log = createLogger();

  switch (command) {
    case 'enroll': {
      if (!values.relay || !values.token) throw new UsageError('enroll needs --relay URL and --token TOKEN');
      const relay = new URL(values.relay);
      if (!values.force && (await Bun.file(configPath).exists())) {
        throw new UsageError(`${configPath} already exists; pass --force to enroll again`);
      }
      // Only enrolling needs these: `run` never loads them.
      const [{ EnrollResponseSchema }, { newKeyPair }] = await Promise.all([import('../shared/api/enroll.ts'), import('./identity.ts')]);
      const system = createSystemReader({ root: values.root });
      const facts = await system.facts();
      const { privateJwk, publicJwk } = await newKeyPair();
      const body: EnrollRequest = {
        token: values.token,
        public_key: { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x! },
        facts,
        agent_version: AGENT_VERSION,
        ...(values.name ? { name: values.name } : {}),
      };
      const res = await fetch(new URL(ENROLL_PATH, relay), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await res.json().catch(() => null)) as unknown;
      if (!res.ok) {
        const err = readErrorBody(json);
        console.error(`enrollment failed: ${res.status} ${err?.code ?? ''} ${err?.error ?? ''}`.trim());
        return 1;
      }
      const enrolled = EnrollResponseSchema.parse(json);
      await saveConfig(configPath, {
        relay: relay.toString().replace(/\/$/, ''),
        device_id: enrolled.device_id,
        name: enrolled.name,
        private_key: { ...privateJwk, kty: 'OKP', crv: 'Ed25519', x: publicJwk.x!, d: privateJwk.d },
        public_key: { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x! },
        enrolled_at: new Date().toISOString(),
      });
      console.log(JSON.stringify({ device_id: enrolled.device_id, name: enrolled.name, status: enrolled.status, config: configPath }));
      return 0;
    }
    case 'run': {
      const kvm = kvmOptions({ ...values, simulate: values.simulate }, configPath);
      if (!kvm.ok) throw new UsageError(kvm.message);
      const terminal = terminalOptions(values);
      if (!terminal.ok) throw new UsageError(terminal.message);
      const logs = logOptions(values, configPath);
      if (!logs.ok) throw new UsageError(logs.message);
      const metrics = metricsOptions(values);
      if (!metrics.ok) throw new UsageError(metrics.message);
      const config = await loadConfig(configPath);
      const system = createSystemReader({ root: values.root });
      const ticker = setInterval(() => system.tick(), 1_000);
      const maxBackoff = values['max-backoff-ms'] ? Number(values['max-backoff-ms']) : undefined;
      if (maxBackoff !== undefined && !(maxBackoff >= 100)) throw new UsageError('--max-backoff-ms must be a number ≥ 100');
      const stopping: (() => Promise<void>)[] = [];
      const connection = new AgentConnection({
        relay: config.relay,
        deviceId: config.device_id,
        privateJwk: config.private_key,
        modules: agentCapabilities({ log, system, simulate: values.simulate, kvm: kvm.options, terminal: terminal.options, logs: logs.options, metrics: metrics.options, onStop: (f) => stopping.push(f) }),
        facts: () => system.facts(),
        log,
        maxBackoffMs: maxBackoff,
      });
      log.info('agent starting', { device_id: config.device_id, relay: config.relay, simulate: values.simulate, version: AGENT_VERSION, hid: kvm.options.hidDir ?? 'gadgets', screen: kvm.options.screen });
      connection.start();
      const trimming = startTrimming(log);
      await new Promise<void>((resolve) => {
        const stop = async (signal: string) => {
          log.info('agent stopping', { signal });
          clearInterval(ticker);
          trimming.stop();
          // Terminal sessions end with the agent (their processes killed), not orphaned; the logs
          // module ends its journalctl and closes its spool (what it read is spooled already).
          await Promise.all(stopping.map((f) => f().catch((e) => log.warn('a capability failed to stop', { error: String(e) }))));
          await connection.stop();
          resolve();
        };
        process.once('SIGINT', () => void stop('SIGINT'));
        process.once('SIGTERM', () => void stop('SIGTERM'));
      });
      return 0;
    }
    case 'install-service': {
      const { InstallError, installService, installTargets, SERVICE_NAME } = await import('./install-service.ts');
      // From source, the running executable is Bun itself, which is not what the unit should run.
      if (!Bun.main.startsWith('/$bunfs/')) {
        throw new InstallError('install-service installs the compiled agent (the pirelay-agent file you downloaded, or one from `npm run build:agent`); run it from that file, not from source');
      }
      await installService({ source: process.execPath, config: resolve(configPath), ...installTargets(), say: (line) => console.log(line) });
      console.log(`${SERVICE_NAME} is enabled and started; follow its log with: journalctl -u ${SERVICE_NAME} -f`);
      return 0;
    }
    case 'info':
      console.log(JSON.stringify(await createSystemReader({ root: values.root }).deviceInfo(), null, 2));
      return 0;
    case 'processes':
      console.log(JSON.stringify(await createSystemReader({ root: values.root }).processList(), null, 2));
      return 0;
    case 'metrics': {
      // Two samples a second apart, so the rates (CPU, disk, network) are real; the second is printed.
      const metrics = metricsOptions(values);
      if (!metrics.ok) throw new UsageError(metrics.message);
      const { MetricsSampler } = await import('./metrics/sampler.ts');
      const sampler = new MetricsSampler(metrics.options);
      await sampler.sample(1_000);
      await Bun.sleep(1_000);
      console.log(JSON.stringify(await sampler.sample(1_000), null, 2));
      sampler.close();
      return 0;
    }
    case 'version':
    case '--version':
    case '-v':
      console.log(AGENT_VERSION);
      return 0;
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
