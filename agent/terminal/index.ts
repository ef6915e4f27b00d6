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
import type { SessionsDeps, TerminalSessions } from './sessions.ts';

export interface TerminalCapability extends AgentCapability {
  /** Closes every session (the agent is stopping): resolves once their processes are gone. */
  closeAll(): Promise<void>;
}

export function terminalCapability(deps: { log: Logger; options: TerminalOptions } & Partial<SessionsDeps>): TerminalCapability {
  const { log } = deps;
  let sessions: TerminalSessions | null = null;
  let loading: Promise<TerminalSessions> | null = null;
  const load = () =>
    (loading ??= import('./sessions.ts')
      .then(({ TerminalSessions }) => {
        sessions = new TerminalSessions(deps);
        deps.onLoad?.(sessions);
        return sessions;
      })
      .catch((e) => {
        loading = null; // tried again by the next terminal
        throw e;
      }));
  const notFound = (session: string) => new RpcFailure('SESSION_NOT_FOUND', `no terminal session ${session}`, { session });

  return {
    name: TERMINAL_CAPABILITY,
    rpc: {
      terminal_list: () => ({ sessions: sessions?.list() ?? [] }),
      terminal_close: async ({ session }) => {
        if (!sessions) throw notFound(session);
        return { session: await sessions.close(session) };
      },
    },
    streams: {
      terminal: (stream, open) => {
        load()
          .then((s) => s.serve(stream, open))
          .catch((e) => {
            log.error('a terminal stream failed', { error: String(e) });
            stream.reset(ResetCode.INTERNAL_ERROR, 'the terminal failed to start');
          });
      },
    },
    onGone: () => sessions?.gone(),
    closeAll: async () => {
      await sessions?.closeAll();
    },
  };
}
