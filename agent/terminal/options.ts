// The terminal flags of `pirelay-agent run`, checked before anything starts: the command a session
// runs (default: the login shell of the account the agent runs as), the account it runs as (the
// agent must be root to run it as another), and how long a session nobody watches keeps running.
import { userInfo } from 'node:os';
import { TERMINAL_IDLE_MS } from '../../shared/protocol/terminal.ts';
import { readAccounts, type Account } from './shell.ts';

export interface TerminalOptions {
  /** The command line; undefined: the user's login shell (from /etc/passwd, else $SHELL, else /bin/sh), as a login shell. */
  command?: string[];
  /** The account sessions run as; undefined: the agent's own. */
  user?: string;
  /** A session with no viewer is closed this long after the last one left. */
  idleMs: number;
}

export interface TerminalFlags {
  'terminal-command'?: string;
  'terminal-user'?: string;
  'terminal-idle-ms'?: string;
}

/** Who the agent runs as, and the accounts it could run a terminal as (the tests pass their own). */
export interface AgentAccount {
  uid: number;
  name: string;
  accounts: Account[];
}

function agentAccount(): AgentAccount {
  const uid = process.getuid?.() ?? 0;
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry for our uid: only its number names us
  }
  return { uid, name, accounts: readAccounts() };
}

/** The options the flags ask for, or why they are wrong (a usage error). */
export function terminalOptions(flags: TerminalFlags, agent: AgentAccount = agentAccount()): { ok: true; options: TerminalOptions } | { ok: false; message: string } {
  const idle = flags['terminal-idle-ms'] === undefined ? TERMINAL_IDLE_MS : Number(flags['terminal-idle-ms']);
  if (!Number.isInteger(idle) || idle < 1000) return { ok: false, message: '--terminal-idle-ms must be a whole number of milliseconds ≥ 1000' };
  const command = flags['terminal-command']?.trim();
  if (flags['terminal-command'] !== undefined && !command) return { ok: false, message: '--terminal-command needs a command' };
  const user = flags['terminal-user']?.trim();
  if (flags['terminal-user'] !== undefined && !/^[a-z_][a-z0-9_-]*\$?$/i.test(user ?? '')) return { ok: false, message: '--terminal-user needs an account name' };
  // Another account needs root (setpriv in shell.ts); refused here, at start, not at the first terminal.
  if (user && user !== agent.name) {
    if (agent.uid !== 0) return { ok: false, message: `--terminal-user ${user} needs the agent to run as root (it runs as ${agent.name})` };
    if (!agent.accounts.some((a) => a.name === user)) return { ok: false, message: `--terminal-user ${user}: no such account` };
  }
  return { ok: true, options: { idleMs: idle, ...(command ? { command: ['/bin/sh', '-c', command] } : {}), ...(user ? { user } : {}) } };
}
