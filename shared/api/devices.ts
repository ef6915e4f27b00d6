// The devices API as clients see it: the native Device shape and its requests, the enrollment
// tokens an admin hands to agents, and the same devices in Tyto's "agents" shape. Plain zod, so
// a CLI or the dashboard can validate what the relay sends without pulling in the Worker.
import { z } from 'zod';

export const DEVICE_STATUSES = ['pending', 'approved', 'rejected', 'revoked'] as const;
export const DeviceStatusSchema = z.enum(DEVICE_STATUSES);

/** Ids the relay makes are 40 hex chars; ids given to POST /api/v1/agents follow this rule too. */
export const DeviceIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'a device id is 1-64 characters of A-Z a-z 0-9 _ . -');

/** A device named by its id or else its display name (`pirelay tcp garage-pi:22`). */
export const DeviceRefSchema = z.string().min(1).max(64);

/** A display name: trimmed, 1-64 characters, no control characters. */
export const DeviceNameSchema = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[^\p{Cc}]*$/u, 'a name may not contain control characters');

const isoOrNull = z.iso.datetime().nullable();

/**
 * Connections of this device that another connection replaced while they were live. One may be
 * a restart whose old socket had not timed out yet; a growing count means two agents hold the
 * same identity (e.g. a cloned SD card) and keep pushing each other off.
 */
export const IdentityConflictSchema = z.object({
  replacements: z.number().int(),
  first_at: z.iso.datetime(),
  last_at: z.iso.datetime(),
  /** The addresses the competing connections came from, most recent last (at most 8). */
  addresses: z.array(z.string()),
});
export type IdentityConflict = z.infer<typeof IdentityConflictSchema>;

/** A tag's name: trimmed, 1-32 characters, no control characters. */
export const DeviceTagNameSchema = z
  .string()
  .trim()
  .min(1)
  .max(32)
  .regex(/^[^\p{Cc}]*$/u, 'a tag name may not contain control characters');

/** A coloured label on a device (Pipetower's server tags); the colour is stored in lower case. */
export const DeviceTagSchema = z
  .object({
    name: DeviceTagNameSchema,
    color: z
      .string()
      .toLowerCase()
      .regex(/^#[0-9a-f]{6}$/, 'a colour is #rrggbb'),
  })
  .strict();
export type DeviceTag = z.infer<typeof DeviceTagSchema>;

export const MAX_DEVICE_TAGS = 20;

export const DeviceSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The team the device belongs to: only its members (and instance admins) see it. */
  team_id: z.string(),
  /** By name. */
  tags: z.array(DeviceTagSchema),
  hostname: z.string(),
  serial: z.string(),
  hardware: z.string(),
  os: z.string(),
  os_version: z.string(),
  architecture: z.string(),
  mac_address: z.string(),
  agent_version: z.string(),
  status: DeviceStatusSchema,
  /** True while the agent holds its WebSocket to the relay. */
  online: z.boolean(),
  /** False for a device added by hand (POST /api/v1/agents) whose agent has not enrolled yet. */
  enrolled: z.boolean(),
  last_seen: isoOrNull,
  registered_at: z.iso.datetime(),
  approved_at: isoOrNull,
  /** Null until a live connection of this device is replaced by another one. */
  identity_conflict: IdentityConflictSchema.nullable(),
});
export type Device = z.infer<typeof DeviceSchema>;

export const DeviceListSchema = z.object({ devices: z.array(DeviceSchema) });

/** Query strings carry text, so online is "true" or "false". */
export const DeviceListQuerySchema = z.object({
  status: DeviceStatusSchema.optional(),
  online: z.enum(['true', 'false']).optional(),
  /** Only this team's devices (a team the caller cannot see yields none). */
  team_id: z.string().min(1).max(64).optional(),
});
export type DeviceListQuery = z.infer<typeof DeviceListQuerySchema>;

export const RenameDeviceSchema = z.object({ name: DeviceNameSchema }).strict();

export const MoveDeviceSchema = z.object({ team_id: z.string().min(1).max(64) }).strict();

/** PUT /devices/{id}/tags replaces the whole set. */
export const SetDeviceTagsSchema = z
  .object({ tags: z.array(DeviceTagSchema).max(MAX_DEVICE_TAGS, `a device has at most ${MAX_DEVICE_TAGS} tags`) })
  .strict()
  .refine((b) => new Set(b.tags.map((t) => t.name)).size === b.tags.length, { message: 'tag names must be unique', path: ['tags'] });
export type SetDeviceTags = z.infer<typeof SetDeviceTagsSchema>;

// ---- enrollment tokens ----

const MAX_TOKEN_HOURS = 24 * 365;

export const CreateEnrollmentTokenSchema = z
  .object({
    name: z.string().trim().max(64).optional(),
    /** Devices that enroll with this token are approved at once instead of waiting as pending. */
    auto_approve: z.boolean().optional(),
    expires_in_hours: z.number().positive().max(MAX_TOKEN_HOURS).optional(),
    expires_at: z.iso.datetime({ offset: true }).optional(),
    /** How many devices may enroll with it; unlimited when left out. */
    max_uses: z.number().int().min(1).max(100_000).optional(),
    /** The team enrolled devices join; defaults to the caller's team when they are in just one. */
    team_id: z.string().min(1).max(64).optional(),
  })
  .strict()
  .refine((b) => b.expires_in_hours === undefined || b.expires_at === undefined, {
    message: 'give expires_in_hours or expires_at, not both',
    path: ['expires_at'],
  });
export type CreateEnrollmentToken = z.infer<typeof CreateEnrollmentTokenSchema>;

export const ENROLLMENT_TOKEN_STATES = ['active', 'expired', 'revoked', 'used_up'] as const;

export const EnrollmentTokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The first characters of the secret, so an admin can tell tokens apart; never the secret. */
  prefix: z.string(),
  auto_approve: z.boolean(),
  /** Set when the token was made for one device added by hand (POST /api/v1/agents). */
  device_id: z.string().nullable(),
  /** The team devices enrolled with it join. */
  team_id: z.string(),
  max_uses: z.number().int().nullable(),
  uses: z.number().int(),
  state: z.enum(ENROLLMENT_TOKEN_STATES),
  created_at: z.iso.datetime(),
  expires_at: isoOrNull,
  revoked_at: isoOrNull,
});
export type EnrollmentToken = z.infer<typeof EnrollmentTokenSchema>;

/** The one response that carries the secret; it cannot be shown again. */
export const CreatedEnrollmentTokenSchema = EnrollmentTokenSchema.extend({ token: z.string() });

export const EnrollmentTokenListSchema = z.object({ enrollment_tokens: z.array(EnrollmentTokenSchema) });

// ---- Tyto's view of the same devices ----

/** Tyto folds connectivity into status: an approved device is "online" or "offline". */
export const AGENT_STATUSES = ['online', 'offline', 'pending', 'rejected', 'revoked'] as const;

export const AgentSchema = z.object({
  id: z.string(),
  name: z.string(),
  hostname: z.string(),
  status: z.enum(AGENT_STATUSES),
  /** Go's names, as Tyto reports them: amd64, arm64, arm, 386. */
  architecture: z.string(),
  /** Lower case, e.g. "linux". */
  os: z.string(),
  last_seen: isoOrNull,
  registered_at: z.iso.datetime(),
});
export type Agent = z.infer<typeof AgentSchema>;

export const AgentListSchema = z.object({ agents: z.array(AgentSchema) });

export const CreateAgentSchema = z
  .object({
    id: DeviceIdSchema.refine((id) => id !== 'pending', '"pending" is reserved (GET /api/v1/agents/pending)'),
    /** Defaults to the id. */
    name: DeviceNameSchema.optional(),
    /** Lifetime of the enrollment token made for this agent; 168 hours (a week) when left out. */
    expires_in_hours: z.number().positive().max(MAX_TOKEN_HOURS).optional(),
    /** The team the agent joins; defaults to the caller's team when they are in just one. */
    team_id: z.string().min(1).max(64).optional(),
  })
  .strict();

/** The agent record plus the single-use token that lets `agent enroll --token` claim its id. */
export const CreatedAgentSchema = z.object({ agent: AgentSchema, enrollment_token: z.string(), enrollment_token_expires_at: isoOrNull });
