// Capability "kvm" on the hub: screenshots and the live view as `screen` streams to the agent
// (bytes passed through, never one RPC per frame), and a viewer's live-input WebSocket bridged onto
// one `hid` stream whose end releases everything that viewer held. Its RPC methods (keystrokes,
// holds, the mouse, type jobs, status) go through the hub's generic call().
import { errorBody } from '../../shared/codes.ts';
import type { ScreenRequest } from '../hub/contract.ts';
import type { HubCapability, HubContext } from './types.ts';

export class KvmCapability implements HubCapability {
  readonly name = 'kvm';
  readonly rpc = ['kvm_status', 'hid_keystroke', 'hid_key', 'hid_release', 'hid_mouse', 'hid_type_start', 'hid_type_status', 'hid_type_cancel'] as const;

  /** GET …/screenshot and …/screen/live: the agent's answer as the response. */
  async screen(_hub: HubContext, _request: Request, _screen: ScreenRequest): Promise<Response> {
    return Response.json(errorBody('NOT_IMPLEMENTED', 'the screen is not built yet'), { status: 501 });
  }

  /** GET …/hid (a WebSocket upgrade): one viewer's live input. */
  async input(_hub: HubContext, _request: Request): Promise<Response> {
    return Response.json(errorBody('NOT_IMPLEMENTED', 'live input is not built yet'), { status: 501 });
  }
}
