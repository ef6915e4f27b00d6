// Capability "tunnels": the hub's tunnel table and the http, websocket and tcp streams it opens.
// The tunnel service and its HTTP/1.1 client are loaded with the first stream, not at start: an
// agent whose tunnels nobody visits only keeps the table.
import { ResetCode } from '../../shared/codes.ts';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { TUNNELS_CAPABILITY, type TunnelOpen, type TunnelTarget } from '../../shared/protocol/tunnels.ts';
import type { AgentCapability } from '../capability.ts';
import type { Logger } from '../log.ts';
import type { TunnelService } from './service.ts';

export function tunnelsCapability(log: Logger): AgentCapability {
  let table: TunnelTarget[] = [];
  let service: TunnelService | null = null;
  let loading: Promise<TunnelService> | null = null;
  /** Bumped when the socket goes: a stream that waited for the load on the old socket is dead. */
  let socket = 0;

  const load = () =>
    (loading ??= import('./service.ts').then(({ createTunnelService }) => {
      service = createTunnelService({ log });
      service.setTunnels(table);
      return service;
    }));

  const open = (stream: MuxStream, open: TunnelOpen) => {
    if (service) return service.handleOpen(stream, open);
    const on = socket;
    load().then(
      (s) => on === socket && s.handleOpen(stream, open),
      (e) => {
        log.error('the tunnel service failed to load', { error: String(e) });
        stream.reset(ResetCode.INTERNAL_ERROR, 'the tunnel service failed to load');
      },
    );
  };

  return {
    name: TUNNELS_CAPABILITY,
    messages: {
      tunnels: (message) => {
        table = message.tunnels;
        service?.setTunnels(table);
      },
    },
    streams: { http: open, websocket: open, tcp: open },
    onGone: () => {
      socket++;
      service?.closeAll();
    },
  };
}
