// The agent's terminal sessions: starting one for a viewer that names none, attaching a viewer to
// one that exists, the limits (MAX_TERMINAL_SESSIONS, MAX_TERMINAL_VIEWERS), listing and closing
// them for the RPC, and what the socket's going and the agent's stopping mean for them. Loaded
// with the first terminal stream (index.ts), it brings the terminal emulator with it.
import { errorBody } from '../../shared/codes.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { MAX_TERMINAL_SESSIONS, MAX_TERMINAL_VIEWERS, type TerminalOpen, type TerminalSession } from '../../shared/protocol/terminal.ts';
import type { Logger } from '../log.ts';
import { RpcFailure } from '../rpc.ts';
import type { TerminalOptions } from './options.ts';
import { Session } from './session.ts';
import { currentContext, programName, shellPlan, type ShellContext } from './shell.ts';

export interface SessionsDeps {
  log: Logger;
  options: TerminalOptions;
  /** Who the agent is and what it may run (tests pass their own). */
  context?: () => ShellContext;
  killGraceMs?: number;
  /** Called with the session manager once it is loaded (the tests and the benchmark read its state). */
  onLoad?: (sessions: TerminalSessions) => void;
}

const encoder = new TextEncoder();

/** Answers a terminal OPEN with an error status and a JSON body, and ends the stream. */
function refuse(stream: MuxStream, status: number, code: string, message: string, details: Record<string, unknown> = {}): void {
  const body = encoder.encode(JSON.stringify(errorBody(code, message, details)));
  stream.accept({ status, headers: [['content-type', 'application/json'], ['content-length', String(body.byteLength)]] }, { body, fin: true });
}

export class TerminalSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly deps: SessionsDeps) {}

  /** A `terminal` stream: one viewer attaching (to a new session when `open.session` is absent). */
  serve(stream: MuxStream, open: TerminalOpen): void {
    const { log } = this.deps;
    let session: Session;
    if (open.session !== undefined) {
      const found = this.sessions.get(open.session);
      if (!found?.running) return refuse(stream, 404, 'SESSION_NOT_FOUND', `no terminal session ${open.session}`, { session: open.session });
      if (found.viewerCount >= MAX_TERMINAL_VIEWERS && !found.hasViewer(open.viewer.id)) {
        return refuse(stream, 409, 'TOO_MANY_VIEWERS', `this session already has ${MAX_TERMINAL_VIEWERS} viewers`, { limit: MAX_TERMINAL_VIEWERS });
      }
      session = found;
    } else {
      if (this.sessions.size >= MAX_TERMINAL_SESSIONS) return refuse(stream, 409, 'TERMINAL_LIMIT', `this device already keeps ${MAX_TERMINAL_SESSIONS} terminal sessions`, { limit: MAX_TERMINAL_SESSIONS });
      try {
        const plan = shellPlan(this.deps.options, (this.deps.context ?? currentContext)());
        session = new Session({
          log,
          plan,
          owner: { user_id: open.viewer.user_id, name: open.viewer.name },
          cols: open.cols,
          rows: open.rows,
          idleMs: this.deps.options.idleMs,
          killGraceMs: this.deps.killGraceMs,
          onEnd: (s) => this.sessions.delete(s.id),
        });
        this.sessions.set(session.id, session);
        log.info('terminal session started', { session: session.id, program: programName(plan), user: plan.user, pid: session.pid, owner: open.viewer.user_id });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        log.error('a terminal session failed to start', { error: message });
        return refuse(stream, 500, 'SPAWN_FAILED', `the terminal could not be started: ${message}`.slice(0, 1024));
      }
    }
    stream.accept({ status: 200 });
    session.attach(stream, open.viewer, { cols: open.cols, rows: open.rows });
  }

  /** One session's flow-control state (Session.flow), for the tests and the benchmark. */
  flow(id: string): ReturnType<Session['flow']> | null {
    return this.sessions.get(id)?.flow() ?? null;
  }

  list(): TerminalSession[] {
    return [...this.sessions.values()].map((s) => s.describe());
  }

  /** terminal_close: the session as it was, once its processes are gone. */
  async close(id: string): Promise<TerminalSession> {
    const session = this.sessions.get(id);
    if (!session?.running) throw new RpcFailure('SESSION_NOT_FOUND', `no terminal session ${id}`, { session: id });
    const described = session.describe();
    await session.close('closed');
    return described;
  }

  /** The socket is gone: every viewer's stream went with it; the sessions keep running. */
  gone(): void {
    for (const s of this.sessions.values()) s.dropViewers();
  }

  /** The agent is stopping: every session is closed, its processes ended. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.close('closed')));
  }
}
