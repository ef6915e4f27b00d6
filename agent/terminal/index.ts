// Capability "terminal" on the agent: login shells in real PTYs kept as sessions that outlive
// their viewers (`terminal` streams, one per viewer), with the screen's state kept here so a
// viewer attaching later sees it as it is. The session manager (sessions.ts) and the terminal
// emulator behind it are loaded with the first terminal, so an agent nobody opens one on pays
// for neither.
import { TERMINAL_CAPABILITY } from '../../shared/protocol/terminal.ts';
import { ResetCode } from '../../shared/codes.ts';
import type { AgentCapability } from '../capability.ts';
import type { Logger } from '../log.ts';
import { RpcFailure } from '../rpc.ts';
import type { TerminalOptions } from './options.ts';

export function terminalCapability(_deps: { log: Logger; options: TerminalOptions }): AgentCapability {
  return {
    name: TERMINAL_CAPABILITY,
    rpc: {
      terminal_list: () => ({ sessions: [] }),
      terminal_close: ({ session }) => {
        throw new RpcFailure('SESSION_NOT_FOUND', `no terminal session ${session}`);
      },
    },
    streams: {
      terminal: (stream) => stream.reset(ResetCode.REFUSED, 'terminal is not built yet'),
    },
  };
}
