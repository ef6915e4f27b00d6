// Capability "terminal" on the hub: a viewer's WebSocket bridged onto one `terminal` stream to the
// agent (the agent keeps the sessions and their screens; the hub keeps nothing of a session), with
// the viewer's output acknowledged so a slow browser stops the hub reading for it (flow control
// end to end), every text message checked, and the single-use tokens that open and resume a
// terminal kept in the hub's storage, so a token can only ever open this device's terminal.
import { errorBody } from '../../shared/codes.ts';
import type { TerminalRequest, TerminalTokenRecord } from '../hub/contract.ts';
import type { HubCapability, HubContext } from './types.ts';

export class TerminalCapability implements HubCapability {
  readonly name = 'terminal';
  readonly rpc = ['terminal_list', 'terminal_close'] as const;

  /** GET …/terminal/socket, its token redeemed and its user authorized by the Worker. */
  async attach(_hub: HubContext, _request: Request, _terminal: TerminalRequest): Promise<Response> {
    return Response.json(errorBody('NOT_IMPLEMENTED', 'terminal is not built yet'), { status: 501 });
  }

  /** Keeps a token's record (by the token's hash) and answers the token; the token itself is never stored. */
  async issueToken(_hub: HubContext, _record: TerminalTokenRecord): Promise<string> {
    throw new Error('not implemented');
  }

  /** The token's record, deleted as it is read (single use); null for an unknown, used or expired token. */
  async redeemToken(_hub: HubContext, _token: string): Promise<TerminalTokenRecord | null> {
    return null;
  }
}
