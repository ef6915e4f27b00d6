// The shared tunnels schemas, named once for the OpenAPI document (shared/ stays plain zod), and
// the path parameters of the tunnels routes.
import { z } from '@hono/zod-openapi';
import * as tunnels from '../../shared/api/tunnels.ts';
import { DeviceIdSchema, DeviceRefSchema } from '../../shared/api/devices.ts';
import { TCP_FLOW_ACK } from '../../shared/protocol/tcp-client.ts';

export const Tunnel = tunnels.TunnelSchema.openapi('Tunnel');
export const SavedTunnel = tunnels.SavedTunnelSchema.openapi('SavedTunnel');
export const TunnelList = z.object({ tunnels: z.array(Tunnel) }).openapi('TunnelList');
export const CreateTunnel = tunnels.CreateTunnelSchema.openapi('CreateTunnel');
export const UpdateTunnel = tunnels.UpdateTunnelSchema.openapi('UpdateTunnel');

const deviceId = DeviceIdSchema.openapi({ param: { name: 'id', in: 'path' }, example: '5eea15ac2e2d34acd56ee736484be8f4b77c7e01' });

export const DeviceTunnelsParams = z.object({ id: deviceId });
export const DeviceTunnelParams = z.object({
  id: deviceId,
  tunnelId: tunnels.TunnelRefSchema.openapi({ param: { name: 'tunnelId', in: 'path' }, description: 'The tunnel id or its name', example: 'myapp' }),
});

export const TunnelNameParams = z.object({
  name: z
    .string()
    .regex(tunnels.TUNNEL_NAME_PATTERN, 'a tunnel name')
    .openapi({ param: { name: 'name', in: 'path' }, example: 'ssh-home' }),
});

/** `pirelay tcp <device>:<port>`: the device by id or display name, the tcp tunnel by target port. */
export const DevicePortParams = z.object({
  id: DeviceRefSchema.openapi({ param: { name: 'id', in: 'path' }, description: 'Device id or display name', example: 'garage-pi' }),
  port: z
    .string()
    .regex(/^\d{1,5}$/, 'a port number')
    .refine((p) => Number(p) >= 1 && Number(p) <= 65535, 'port must be 1-65535')
    .openapi({ param: { name: 'port', in: 'path' }, example: '22' }),
});

export const ConnectQuery = z.object({
  api_key: z.string().optional().openapi({ description: 'An API key, for clients that cannot set the Authorization header (it will show in logs)' }),
  flow: z
    .enum([TCP_FLOW_ACK])
    .optional()
    .openapi({ description: 'ack: the client acknowledges the bytes it delivered with {"t":"ack","n":bytes} text messages, and the relay keeps at most 4 MiB unacknowledged (pirelay tcp does this). Without it the relay sends as fast as the device does.' }),
});
