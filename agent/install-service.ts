// `pirelay-agent install-service`: the third of the three commands that set up a device (download,
// enroll, install-service). It copies the running agent binary to where the systemd unit runs it
// from, writes that unit, and starts it, so nobody has to fetch a unit file from the repository.
// The unit's text lives here, inside the binary; deploy/pirelay-agent.service is the same text
// with the default paths (test/agent/install-service.test.ts keeps the two equal).
// Overrides, for tests and for systems laid out differently: PIRELAY_BIN_DIR (default
// /usr/local/bin), PIRELAY_UNIT_DIR (default /etc/systemd/system), PIRELAY_SYSTEMCTL (default:
// systemctl on PATH), and the config path `run` is given (--config / PIRELAY_AGENT_CONFIG).
import { chmod, copyFile, mkdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SERVICE_NAME = 'pirelay-agent';
export const DEFAULT_BIN_DIR = '/usr/local/bin';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

/** One ExecStart argument: quoted when it holds anything but plain path characters; systemd's own `%` and `$` escaped. */
function unitArg(s: string): string {
  if (/^[A-Za-z0-9_./@:+-]+$/.test(s)) return s;
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

/** The systemd unit that runs `binary run --config config`. */
export function systemdUnit({ binary, config }: { binary: string; config: string }): string {
  return `# systemd unit for the pirelay agent on a Raspberry Pi (or any Linux box).
# \`sudo pirelay-agent install-service\` installs the running agent binary and this unit, with the
# paths it was run with, then starts it. By hand: copy the binary to /usr/local/bin/pirelay-agent,
# enroll once with
#   sudo pirelay-agent enroll --relay https://relay.example.com --token pre_…
# then: sudo cp pirelay-agent.service /etc/systemd/system/ && sudo systemctl enable --now pirelay-agent
# (The text comes from agent/install-service.ts, which deploy/pirelay-agent.service must equal.)
[Unit]
Description=pirelay agent (device side of the pirelay relay)
Documentation=https://github.com/pirelay/pirelay
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${unitArg(binary)} run --config ${unitArg(config)}
Restart=always
RestartSec=3
# The agent reconnects by itself; systemd only restarts it if the process dies.
# It needs root for /dev/hidg* (keyboard/mouse gadget) and for signalling other users' processes.
User=root
Environment=PIRELAY_LOG_LEVEL=info
NoNewPrivileges=true
ProtectHome=read-only
PrivateTmp=true
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
`;
}

/** A step that could not be done, said so that the person at the terminal knows what to do. */
export class InstallError extends Error {}

export interface InstallOptions {
  /** The agent binary to install: the running one. */
  source: string;
  binDir: string;
  unitDir: string;
  /** The config `enroll` wrote, which the unit's `run` is given. */
  config: string;
  /** systemctl to run, or null when there is none. */
  systemctl: string | null;
  /** Progress, one line per step done. */
  say: (line: string) => void;
}

/** Where to install, from the environment (PIRELAY_BIN_DIR, PIRELAY_UNIT_DIR, PIRELAY_SYSTEMCTL) or the defaults. */
export function installTargets(env: Record<string, string | undefined> = process.env): Pick<InstallOptions, 'binDir' | 'unitDir' | 'systemctl'> {
  return {
    binDir: env.PIRELAY_BIN_DIR || DEFAULT_BIN_DIR,
    unitDir: env.PIRELAY_UNIT_DIR || DEFAULT_UNIT_DIR,
    systemctl: env.PIRELAY_SYSTEMCTL || Bun.which('systemctl', { PATH: env.PATH ?? '' }),
  };
}

function writeFailure(path: string, e: unknown): InstallError {
  const code = (e as NodeJS.ErrnoException).code;
  const hint = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? ': run it as root (sudo)' : '';
  return new InstallError(`cannot write ${path} (${code ?? (e as Error).message})${hint}`);
}

/** Writes `path` through a temporary file and a rename, so a running copy of it (the old binary) is never overwritten in place. */
async function replaceFile(path: string, write: (tmp: string) => Promise<void>, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await write(tmp);
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeFailure(path, e);
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

async function systemctl(bin: string, args: string[]): Promise<void> {
  const child = Bun.spawn([bin, ...args], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  const [code, out, err] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  if (code !== 0) {
    const said = (err.trim() || out.trim()).split('\n').slice(-5).join('\n');
    throw new InstallError(`systemctl ${args.join(' ')} failed (exit ${code})${said ? `: ${said}` : ''}`);
  }
}

/**
 * Installs the binary and the unit, reloads systemd and enables and starts the service. Checks
 * first what it can (an enrolled config, a systemctl), so a system without systemd is told so
 * before anything is written. Returns the paths written.
 */
export async function installService(o: InstallOptions): Promise<{ binary: string; unit: string }> {
  if (!(await Bun.file(o.config).exists())) {
    throw new InstallError(`no agent config at ${o.config}: enroll first (pirelay-agent enroll --relay URL --token TOKEN), with the same --config`);
  }
  if (!o.systemctl) {
    throw new InstallError(
      `systemctl was not found, so this system does not seem to run systemd; start the agent with your init system instead: ${join(o.binDir, SERVICE_NAME)} run --config ${o.config}`,
    );
  }
  const binary = join(o.binDir, SERVICE_NAME);
  const unit = join(o.unitDir, `${SERVICE_NAME}.service`);

  if (await sameFile(o.source, binary)) o.say(`${binary} is the running agent; left as it is`);
  else {
    await mkdir(o.binDir, { recursive: true }).catch((e) => {
      throw writeFailure(o.binDir, e);
    });
    await replaceFile(binary, (tmp) => copyFile(o.source, tmp), 0o755);
    o.say(`installed ${binary}`);
  }

  await mkdir(o.unitDir, { recursive: true }).catch((e) => {
    throw writeFailure(o.unitDir, e);
  });
  await replaceFile(unit, (tmp) => writeFile(tmp, systemdUnit({ binary, config: o.config })), 0o644);
  o.say(`wrote ${unit}`);

  for (const args of [['daemon-reload'], ['enable', '--now', SERVICE_NAME]]) {
    await systemctl(o.systemctl, args);
    o.say(`ran systemctl ${args.join(' ')}`);
  }
  return { binary, unit };
}
