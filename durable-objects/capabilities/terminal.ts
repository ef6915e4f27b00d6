// Capability "terminal" on the hub: a viewer's WebSocket bridged onto one `terminal` stream to the
// agent (the agent keeps the sessions and their screens; the hub keeps nothing of a session), with
// the viewer's output acknowledged so a slow browser stops the hub reading for it (flow control
// end to end), every text message checked (terminal-bridge.ts), and the single-use tokens that
// open and resume a terminal kept in the hub's storage (terminal-tokens.ts), so a token can only
// ever open this device's terminal. A handover of typing is audited here, where it happens.
import type { MuxStream } from '../../shared/protocol/mux.ts';
import type { Accepted } from '../../shared/protocol/heads.ts';
import type { StreamOpen } from '../../shared/protocol/messages.ts';
import { TERMINAL_IDLE_MS } from '../../shared/protocol/terminal.ts';
import type { TerminalRequest, TerminalTokenRecord } from '../hub/contract.ts';
import { writeDeviceAudit } from '../hub/audit.ts';
import { deviceError, json, openAndAccept, readyAgent, streamFailure } from './device-stream.ts';
import { bridgeTerminal } from './terminal-bridge.ts';
import { TerminalTokens } from './terminal-tokens.ts';
import type { HubCapability, HubContext } from './types.ts';

/**
 * The statuses a device may refuse a terminal with: 404 SESSION_NOT_FOUND, 409 TERMINAL_LIMIT or
 * TOO_MANY_VIEWERS, 400 for an OPEN it could not take, 503 when it cannot start a shell. Not 401
 * or 403, which would tell the page its own token failed; anything else is the device failing.
 */
const DEVICE_STATUSES = new Set([400, 404, 409, 503]);

/** What a device without the terminal capability is told apart by: it refuses the stream kind. */
const UNAVAILABLE = { code: 'TERMINAL_UNAVAILABLE', message: 'The device does not offer a terminal (its agent is older, or the terminal is off)' };

function newViewerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export class TerminalCapability implements HubCapability {
  readonly name = 'terminal';
  readonly rpc = ['terminal_list', 'terminal_close'] as const;
  private store: TerminalTokens | null = null;
  /** Text records from the agent that were not control messages, dropped (since this instance started). */
  private dropped = 0;

  private tokens(hub: HubContext): TerminalTokens {
    return (this.store ??= new TerminalTokens(hub.state.storage));
  }

  /** GET …/terminal/socket, its token redeemed and its user authorized by the Worker. */
  async attach(hub: HubContext, _request: Request, terminal: TerminalRequest): Promise<Response> {
    const agent = await readyAgent(hub);
    if (!agent) return json(503, 'DEVICE_OFFLINE', 'Device is offline');
    const viewer = { id: newViewerId(), user_id: terminal.user.user_id, name: terminal.user.name, may_share: terminal.may_share };
    const open: StreamOpen = { kind: 'terminal', ...(terminal.session ? { session: terminal.session } : {}), viewer, cols: terminal.cols, rows: terminal.rows };
    let opened: { stream: MuxStream; head: Accepted };
    try {
      opened = await openAndAccept(hub, agent, open);
    } catch (e) {
      return streamFailure(e, UNAVAILABLE);
    }
    const status = opened.head.status ?? 200;
    if (status >= 300) return deviceError(opened.stream, opened.head, status, DEVICE_STATUSES);

    const tokens = this.tokens(hub);
    let resume: string | null = null;
    let refresh: ReturnType<typeof setInterval> | undefined;
    return bridgeTerminal(opened.stream, {
      attached: async (session) => {
        const expires_at = Date.now() + TERMINAL_IDLE_MS;
        resume = await tokens.issue({ user: terminal.user, session, purpose: 'resume', credential: terminal.credential, expires_at });
        // While the viewer stays, its token stays good for an idle window from now (the session's
        // own window starts only when its last viewer leaves).
        const token = resume;
        refresh = setInterval(() => void tokens.extend(token, Date.now() + TERMINAL_IDLE_MS), TERMINAL_IDLE_MS / 2);
        return { token, expires_at };
      },
      handedOver: (session, from, to) => {
        void writeDeviceAudit(hub.env.DB, hub.deviceId, {
          action: 'terminal.handover',
          actor: { id: terminal.user.user_id, name: terminal.user.name },
          credential: terminal.credential,
          ip: terminal.ip,
          details: { session, from, to },
        });
      },
      dropped: () => {
        this.dropped++;
        if (this.dropped <= 10 || this.dropped % 1000 === 0) console.warn(`DeviceHub ${hub.deviceId}: dropped terminal control record #${this.dropped} that was not a control message`);
      },
      ended: (exited) => {
        clearInterval(refresh);
        if (!resume) return;
        // A session that ended needs no resuming; one that lives may be resumed for its idle window.
        void (exited ? tokens.revoke(resume) : tokens.extend(resume, Date.now() + TERMINAL_IDLE_MS));
      },
    });
  }

  /** Keeps a token's record (by the token's hash) and answers the token; the token itself is never stored. */
  async issueToken(hub: HubContext, record: TerminalTokenRecord): Promise<string> {
    return this.tokens(hub).issue(record);
  }

  /** The token's record, deleted as it is read (single use); null for an unknown, used or expired token. */
  async redeemToken(hub: HubContext, token: string): Promise<TerminalTokenRecord | null> {
    return this.tokens(hub).redeem(token);
  }

  /** Puts back a token whose terminal could not open for the device's sake (see TerminalTokens.restore). */
  async restoreToken(hub: HubContext, token: string, record: TerminalTokenRecord): Promise<void> {
    return this.tokens(hub).restore(token, record);
  }

  counters(): { terminalDropped: number } {
    return { terminalDropped: this.dropped };
  }
}
