// What a terminal session runs, as whom, where and with which environment: worked out from the
// options and /etc/passwd, as plain data, so the command line (including the setpriv wrapper that
// runs a shell as another account) is unit-tested without spawning anything. The shell gets a
// clean environment rather than the agent's: the agent's may hold what the shell has no business
// seeing, and a login shell builds its own from the account's profile anyway.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { TerminalOptions } from './options.ts';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** The accounts of a passwd file; malformed lines are skipped. */
export function parsePasswd(text: string): Account[] {
  const out: Account[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0] || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] || '/', shell: f[6]!.trim() });
  }
  return out;
}

export function readAccounts(path = '/etc/passwd'): Account[] {
  try {
    return parsePasswd(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}

/** What the session's process is started with. */
export interface ShellPlan {
  /** What Bun.spawn runs (with the setpriv wrapper when it runs as another account). */
  argv: string[];
  /** What the session lists as its command: the shell's own command line. */
  command: string[];
  /** The account it runs as. */
  user: string;
  cwd: string;
  env: Record<string, string>;
}

export interface ShellContext {
  /** The agent's own uid (0: root). */
  uid: number;
  accounts: Account[];
  /** The agent's environment: PATH, locale and time zone are carried over, nothing else. */
  env: Record<string, string | undefined>;
  /** setpriv's path, when it is installed. */
  setpriv: string | null;
}

const CARRIED_ENV = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** A shell line that would not log in anyone (system accounts): fall back rather than run it. */
const NO_LOGIN = /(?:nologin|\/false)$/;

export class ShellError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellError';
  }
}

export function currentContext(): ShellContext {
  return { uid: process.getuid?.() ?? 0, accounts: readAccounts(), env: process.env, setpriv: Bun.which('setpriv') };
}

/**
 * The plan for one session. Without `command` it is the account's login shell started as a login
 * shell (`-l`: bash, zsh, dash, ash and fish all take it; with setpriv in front argv[0] cannot carry
 * the leading dash). As another account it needs root (the options refuse it otherwise) and runs
 * through `setpriv`, which execs the shell in place, so the pid Bun spawned, the one leading the
 * PTY's session, is the shell's.
 */
export function shellPlan(options: Pick<TerminalOptions, 'command' | 'user'>, ctx: ShellContext): ShellPlan {
  const own = ctx.accounts.find((a) => a.uid === ctx.uid);
  let account: Account;
  if (options.user !== undefined && options.user !== own?.name) {
    const other = ctx.accounts.find((a) => a.name === options.user);
    if (!other) throw new ShellError(`the terminal account ${options.user} does not exist`);
    if (ctx.uid !== 0) throw new ShellError(`the agent runs as uid ${ctx.uid}, not root, so it cannot start terminals as ${options.user}`);
    if (!ctx.setpriv) throw new ShellError(`setpriv (util-linux) is needed to start terminals as ${options.user}`);
    account = other;
  } else {
    account = own ?? { name: ctx.env.USER || String(ctx.uid), uid: ctx.uid, gid: ctx.uid, home: ctx.env.HOME || '/', shell: '' };
  }
  const loginShell = account.shell && !NO_LOGIN.test(account.shell) ? account.shell : account.uid === ctx.uid && ctx.env.SHELL ? ctx.env.SHELL : '/bin/sh';
  const command = options.command ?? [loginShell, '-l'];
  const env: Record<string, string> = {};
  for (const name of CARRIED_ENV) {
    const value = ctx.env[name];
    if (value) env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  if (!env.LANG && !env.LC_ALL) env.LANG = 'C.UTF-8';
  Object.assign(env, { TERM: 'xterm-256color', COLORTERM: 'truecolor', HOME: account.home, USER: account.name, LOGNAME: account.name, SHELL: loginShell });
  const argv = account.uid === ctx.uid ? command : [ctx.setpriv!, `--reuid=${account.uid}`, `--regid=${account.gid}`, '--init-groups', '--', ...command];
  return { argv, command, user: account.name, cwd: account.home, env };
}

/** For a log line: the program, not its arguments (a --terminal-command may hold anything). */
export function programName(plan: ShellPlan): string {
  return basename(plan.command[0]!);
}
