// The shared devices schemas, named once for the OpenAPI document. shared/ stays plain zod;
// naming a schema here makes it a reusable component instead of being inlined in every route.
import { z } from '@hono/zod-openapi';
import * as devices from '../../shared/api/devices.ts';
import { EnrollRequestSchema, EnrollResponseSchema } from '../../shared/api/enroll.ts';
import { DeviceInfoSchema, ProcessListSchema } from '../../shared/api/device-info.ts';
import { bearerSecurity } from '../openapi.ts';

export const Device = devices.DeviceSchema.openapi('Device');
export const DeviceList = z.object({ devices: z.array(Device) }).openapi('DeviceList');
export const DeviceListQuery = devices.DeviceListQuerySchema;
export const RenameDevice = devices.RenameDeviceSchema.openapi('RenameDevice');
export const MoveDevice = devices.MoveDeviceSchema.openapi('MoveDevice');
export const SetDeviceTags = devices.SetDeviceTagsSchema.openapi('SetDeviceTags');
export const DeviceInfo = DeviceInfoSchema.openapi('DeviceInfo');
export const ProcessList = ProcessListSchema.openapi('ProcessList');

export const EnrollmentToken = devices.EnrollmentTokenSchema.openapi('EnrollmentToken');
export const CreatedEnrollmentToken = devices.CreatedEnrollmentTokenSchema.openapi('CreatedEnrollmentToken');
export const EnrollmentTokenList = z.object({ enrollment_tokens: z.array(EnrollmentToken) }).openapi('EnrollmentTokenList');
export const CreateEnrollmentToken = devices.CreateEnrollmentTokenSchema.openapi('CreateEnrollmentToken');
export const EnrollRequest = EnrollRequestSchema.openapi('EnrollRequest');
export const EnrollResponse = EnrollResponseSchema.openapi('EnrollResponse');

export const Agent = devices.AgentSchema.openapi('Agent');
export const AgentList = z.object({ agents: z.array(Agent) }).openapi('AgentList');
export const CreateAgent = devices.CreateAgentSchema.openapi('CreateAgent');
export const CreatedAgent = devices.CreatedAgentSchema.openapi('CreatedAgent');

/** `{id}` in a device or agent path. Malformed ids are a 400, unknown ones a 404. */
export const DeviceIdParam = z.object({
  id: devices.DeviceIdSchema.openapi({ param: { name: 'id', in: 'path' }, example: '5eea15ac2e2d34acd56ee736484be8f4b77c7e01' }),
});

/** `{id}` of an enrollment token (16 hex chars). */
export const TokenIdParam = z.object({
  id: z
    .string()
    .regex(/^[0-9a-f]{1,64}$/, 'an enrollment token id is hex')
    .openapi({ param: { name: 'id', in: 'path' } }),
});

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** openapi.ts's bearerSecurity infers `never[]` scopes, which createRoute refuses; same value, typed. */
export const security = bearerSecurity;
