// The D1 schema: the source of truth for every table and row type. Migrations under
// migrations/ are generated from this file by drizzle-kit (`npm run db:generate`).
import { sql } from 'drizzle-orm';
import { sqliteTable, text, integer, real, index, uniqueIndex, primaryKey } from 'drizzle-orm/sqlite-core';
import type { AlertCause, AlertLevel, AlertMetric, ChannelView, DeliveryEvent, DeliveryStatus, QuietHours } from '../api/alerts.ts';
import type { DEVICE_STATUSES } from '../api/devices.ts';
import type { TunnelAccessMode, TunnelKind } from '../api/tunnels.ts';
import type { TeamRole } from '../api/teams.ts';
import type { VariableLevel } from '../api/variables.ts';

/** Timestamps are Unix milliseconds; the API renders them as ISO 8601. */
const ms = (name: string) => integer(name);

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  username: text('username').notNull(),
  email: text('email'),
  passwordHash: text('password_hash').notNull(),
  /** JSON array of role ids. */
  roles: text('roles', { mode: 'json' }).$type<string[]>().notNull(),
  authProvider: text('auth_provider').notNull().default('local'),
  disabled: integer('disabled', { mode: 'boolean' }).notNull().default(false),
  /** Display name (Pipetower's `name`); empty means "use the username". */
  name: text('name').notNull().default(''),
  /** An IANA time zone name, e.g. "UTC" or "Europe/Paris". */
  timezone: text('timezone').notNull().default('UTC'),
  /** The relay sends no mail, so an address is verified only when an admin says so. */
  emailVerified: integer('email_verified', { mode: 'boolean' }).notNull().default(false),
  /** The TOTP secret, sealed with VARIABLES_KEY (worker/auth/secret-box.ts); set at enrolment, before confirmation. */
  totpSecret: text('totp_secret'),
  /** When the enrolment was confirmed with a code; null: two-factor login is off. */
  totpEnabledAt: ms('totp_enabled_at'),
  /** The last TOTP time step accepted, so each code works once. */
  totpLastStep: integer('totp_last_step'),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at'),
  lastLogin: ms('last_login'),
}, (t) => [uniqueIndex('users_username_unique').on(t.username)]);

/** Ten single-use codes per user, made when 2FA is confirmed; only their SHA-256 is kept. */
export const recoveryCodes = sqliteTable('recovery_codes', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  codeHash: text('code_hash').notNull(),
  usedAt: ms('used_at'),
}, (t) => [primaryKey({ columns: [t.userId, t.codeHash] })]);

/** The second step of a login with 2FA: made when the password was right, spent by a code. */
export const loginChallenges = sqliteTable('login_challenges', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  /** SHA-256 of the challenge token handed to the client. */
  tokenHash: text('token_hash').notNull(),
  attempts: integer('attempts').notNull().default(0),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  usedAt: ms('used_at'),
}, (t) => [uniqueIndex('login_challenges_hash_unique').on(t.tokenHash)]);

/** A team owns devices (and, later, automation); people work in it as owner, admin or member. */
export const teams = sqliteTable('teams', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** Members without two-factor login may not act in this team. */
  require2fa: integer('require_2fa', { mode: 'boolean' }).notNull().default(false),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at').notNull(),
}, (t) => [uniqueIndex('teams_name_unique').on(sql`lower(${t.name})`)]);

export const teamMembers = sqliteTable('team_members', {
  teamId: text('team_id').notNull().references(() => teams.id, { onDelete: 'cascade' }),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  role: text('role').$type<TeamRole>().notNull(),
  createdAt: ms('created_at').notNull(),
}, (t) => [primaryKey({ columns: [t.teamId, t.userId] }), index('team_members_user_idx').on(t.userId)]);

/** An admin's invitation to a team, by e-mail or user name; the token is shown once. */
export const teamInvitations = sqliteTable('team_invitations', {
  id: text('id').primaryKey(),
  teamId: text('team_id').notNull().references(() => teams.id, { onDelete: 'cascade' }),
  /** Who is invited: an e-mail address or a user name, as the admin typed it (lower case). */
  invitee: text('invitee').notNull(),
  role: text('role').$type<TeamRole>().notNull(),
  tokenHash: text('token_hash').notNull(),
  prefix: text('prefix').notNull(),
  invitedBy: text('invited_by').references(() => users.id, { onDelete: 'set null' }),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  acceptedAt: ms('accepted_at'),
  acceptedBy: text('accepted_by'),
  revokedAt: ms('revoked_at'),
}, (t) => [uniqueIndex('team_invitations_hash_unique').on(t.tokenHash), index('team_invitations_team_idx').on(t.teamId)]);

export const roles = sqliteTable('roles', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  description: text('description').notNull().default(''),
  permissions: text('permissions', { mode: 'json' }).$type<string[]>().notNull(),
  isSystem: integer('is_system', { mode: 'boolean' }).notNull().default(false),
});

/** One row per login; logout revokes it, so a session JWT stops working before it expires. */
export const sessions = sqliteTable('sessions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  revokedAt: ms('revoked_at'),
}, (t) => [index('sessions_user_idx').on(t.userId)]);

/** API keys are shown once; only their SHA-256 is kept. */
export const apiKeys = sqliteTable('api_keys', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  prefix: text('prefix').notNull(),
  keyHash: text('key_hash').notNull(),
  /** Optional narrowing of the owner's permissions; null means "as the owner". */
  permissions: text('permissions', { mode: 'json' }).$type<string[] | null>(),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at'),
  lastUsedAt: ms('last_used_at'),
  revokedAt: ms('revoked_at'),
}, (t) => [uniqueIndex('api_keys_hash_unique').on(t.keyHash), index('api_keys_user_idx').on(t.userId)]);

/** Failed-login counters for rate limiting, keyed by "username|ip". */
export const loginAttempts = sqliteTable('login_attempts', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  windowStart: ms('window_start').notNull(),
});

export const enrollmentTokens = sqliteTable('enrollment_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull().default(''),
  tokenHash: text('token_hash').notNull(),
  prefix: text('prefix').notNull(),
  autoApprove: integer('auto_approve', { mode: 'boolean' }).notNull().default(false),
  /** Set when the token was made for one pre-registered device (POST /api/v1/agents). */
  deviceId: text('device_id'),
  /** The team every device enrolled with this token joins. */
  teamId: text('team_id').notNull().references(() => teams.id, { onDelete: 'cascade' }),
  maxUses: integer('max_uses'),
  uses: integer('uses').notNull().default(0),
  createdBy: text('created_by'),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at'),
  revokedAt: ms('revoked_at'),
}, (t) => [uniqueIndex('enrollment_tokens_hash_unique').on(t.tokenHash)]);

export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export const devices = sqliteTable('devices', {
  id: text('id').primaryKey(),
  /** Display name; defaults to the hostname. */
  name: text('name').notNull(),
  /** The one team the device belongs to; only its members (and instance admins) see it. */
  teamId: text('team_id').notNull().references(() => teams.id),
  hostname: text('hostname').notNull().default(''),
  serial: text('serial').notNull().default(''),
  hardware: text('hardware').notNull().default(''),
  os: text('os').notNull().default(''),
  osVersion: text('os_version').notNull().default(''),
  architecture: text('architecture').notNull().default(''),
  mac: text('mac').notNull().default(''),
  agentVersion: text('agent_version').notNull().default(''),
  /** Ed25519 public key as a JWK JSON string; null until an agent enrolls. */
  publicKey: text('public_key'),
  status: text('status').$type<DeviceStatus>().notNull(),
  online: integer('online', { mode: 'boolean' }).notNull().default(false),
  lastSeen: ms('last_seen'),
  registeredAt: ms('registered_at').notNull(),
  approvedAt: ms('approved_at'),
  enrollmentTokenId: text('enrollment_token_id'),
  /** Live connections of this device replaced by another one (DeviceHub): two agents sharing one identity. */
  identityConflict: text('identity_conflict', { mode: 'json' }).$type<IdentityConflictRecord>(),
  /** Bumped by every change made through the API (rename, move, tags, status). */
  updatedAt: ms('updated_at'),
}, (t) => [index('devices_status_idx').on(t.status), index('devices_team_idx').on(t.teamId)]);

/** Coloured labels on a device (Pipetower's server tags). */
export const deviceTags = sqliteTable('device_tags', {
  deviceId: text('device_id').notNull().references(() => devices.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  /** "#rrggbb". */
  color: text('color').notNull(),
}, (t) => [primaryKey({ columns: [t.deviceId, t.name] })]);

/**
 * What DeviceHub remembers about agents of one device pushing each other off the relay: how often
 * a live connection was replaced, from when to when (Unix ms), and the addresses they came from.
 */
export interface IdentityConflictRecord {
  replacements: number;
  first_at: number;
  last_at: number;
  addresses: string[];
}

export type User = typeof users.$inferSelect;
export type Team = typeof teams.$inferSelect;
export type TeamMember = typeof teamMembers.$inferSelect;
export type TeamInvitation = typeof teamInvitations.$inferSelect;
export type DeviceTag = typeof deviceTags.$inferSelect;
export type Role = typeof roles.$inferSelect;
export type ApiKey = typeof apiKeys.$inferSelect;
export type EnrollmentToken = typeof enrollmentTokens.$inferSelect;
export type Device = typeof devices.$inferSelect;

/**
 * A tunnel maps a public name (the subdomain `<name>.<TUNNEL_DOMAIN>` for http, or a TCP-over-
 * WebSocket endpoint for tcp) to one target on the device's side. The target is fixed here: a
 * visitor can never pick another host or port.
 */
export const tunnels = sqliteTable('tunnels', {
  id: text('id').primaryKey(),
  deviceId: text('device_id').notNull().references(() => devices.id, { onDelete: 'cascade' }),
  /** A DNS label: lowercase letters, digits and hyphens, 1-63 chars, unique across the relay. */
  name: text('name').notNull(),
  kind: text('kind').$type<TunnelKind>().notNull(),
  targetHost: text('target_host').notNull(),
  targetPort: integer('target_port').notNull(),
  access: text('access').$type<TunnelAccessMode>().notNull().default('public'),
  basicUser: text('basic_user'),
  /** PBKDF2 hash (worker/auth/password.ts) of the basic-auth password. */
  basicPasswordHash: text('basic_password_hash'),
  /** SHA-256 of the bearer token; the token itself is shown once. */
  bearerTokenHash: text('bearer_token_hash'),
  bearerPrefix: text('bearer_prefix'),
  /** Requests per minute per tunnel; null: no limit. */
  rateLimitPerMinute: integer('rate_limit_per_minute'),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  /** Open (tunnel-control `connect`) or closed (`disconnect`, or the agent went offline without allow_clientless). */
  connected: integer('connected', { mode: 'boolean' }).notNull().default(true),
  /** Whether the tunnel stays open while the agent is offline (visitors wait for it, up to a bound). */
  allowClientless: integer('allow_clientless', { mode: 'boolean' }).notNull().default(true),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at').notNull(),
}, (t) => [uniqueIndex('tunnels_name_unique').on(t.name), index('tunnels_device_idx').on(t.deviceId)]);

export type Tunnel = typeof tunnels.$inferSelect;

/**
 * Variables at three levels: a user's, a team's, a device's (Pipetower's server variables).
 * Exactly one of user_id, team_id, device_id is set, as `level` says, so a variable dies with its
 * owner. A secret's value is never stored in the clear: `value` is null and `sealed` holds it
 * encrypted with AES-GCM under VARIABLES_KEY (worker/auth/secret-box.ts), naming the key it used.
 */
export const variables = sqliteTable('variables', {
  id: text('id').primaryKey(),
  level: text('level').$type<VariableLevel>().notNull(),
  userId: text('user_id').references(() => users.id, { onDelete: 'cascade' }),
  teamId: text('team_id').references(() => teams.id, { onDelete: 'cascade' }),
  deviceId: text('device_id').references(() => devices.id, { onDelete: 'cascade' }),
  /** A shell-safe identifier, [A-Z_][A-Z0-9_]*, case as given. */
  name: text('name').notNull(),
  secret: integer('secret', { mode: 'boolean' }).notNull(),
  /** The value of a variable that is not secret; null for a secret. */
  value: text('value'),
  /** A secret's value, sealed: "<key id>.<base64url iv>.<base64url ciphertext+tag>"; null otherwise. */
  sealed: text('sealed'),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at').notNull(),
}, (t) => [
  uniqueIndex('variables_owner_name_unique').on(t.level, sql`coalesce(${t.userId}, ${t.teamId}, ${t.deviceId})`, t.name),
  index('variables_team_idx').on(t.teamId),
  index('variables_device_idx').on(t.deviceId),
  index('variables_user_idx').on(t.userId),
]);

export type Variable = typeof variables.$inferSelect;

/**
 * Who changed what, when, from where and in which team; every login and failed login too. Never
 * a secret: variables are recorded by name only. `id` orders entries (the API pages by it).
 */
export const auditLog = sqliteTable('audit_log', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  at: ms('at').notNull(),
  /** The acting user, if one is known (a failed login has the user name tried as actor_name). */
  actorId: text('actor_id'),
  actorName: text('actor_name').notNull().default(''),
  /** session, api_key, or none (a login, a failed login, an agent's enrollment). */
  credential: text('credential').notNull(),
  credentialId: text('credential_id'),
  /** "<resource>.<verb>", e.g. "team.create", "variable.update", "login.failed". */
  action: text('action').notNull(),
  targetType: text('target_type').notNull().default(''),
  targetId: text('target_id'),
  teamId: text('team_id'),
  ip: text('ip').notNull().default(''),
  details: text('details', { mode: 'json' }).$type<Record<string, unknown>>(),
}, (t) => [index('audit_at_idx').on(t.at), index('audit_team_idx').on(t.teamId, t.id), index('audit_actor_idx').on(t.actorId, t.id)]);

export type AuditEntry = typeof auditLog.$inferSelect;

/**
 * TinyPilot's API on the relay (worker/compat/tinypilot.ts): a key is the credential in the path
 * of a base URL, `/tinypilot/<key>/api/v1`, for one device only. Shown once; only its SHA-256 is
 * kept. A revoked key is kept for the record but answers like one that never existed.
 */
export const tinypilotKeys = sqliteTable('tinypilot_keys', {
  id: text('id').primaryKey(),
  deviceId: text('device_id').notNull().references(() => devices.id, { onDelete: 'cascade' }),
  /** The device's team when the key was made: moved to another team, the device no longer answers it. */
  teamId: text('team_id').notNull().references(() => teams.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  /** The key's first characters, to tell keys apart in the audit log; far too short to guess one. */
  prefix: text('prefix').notNull(),
  keyHash: text('key_hash').notNull(),
  createdBy: text('created_by').references(() => users.id, { onDelete: 'set null' }),
  createdAt: ms('created_at').notNull(),
  /** When a token was last issued or used with it (written at most once a minute). */
  lastUsedAt: ms('last_used_at'),
  revokedAt: ms('revoked_at'),
}, (t) => [uniqueIndex('tinypilot_keys_hash_unique').on(t.keyHash), index('tinypilot_keys_device_idx').on(t.deviceId)]);

/**
 * The tokens POST …/auth hands out under a key. A real TinyPilot's live until its server restarts;
 * ours expire (TOKEN_TTL_MS in worker/compat/tinypilot.ts: 24 h) and go with their key.
 */
export const tinypilotTokens = sqliteTable('tinypilot_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  keyId: text('key_id').notNull().references(() => tinypilotKeys.id, { onDelete: 'cascade' }),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
}, (t) => [index('tinypilot_tokens_key_idx').on(t.keyId, t.createdAt)]);

export type TinypilotKey = typeof tinypilotKeys.$inferSelect;

/**
 * Relay-wide settings, one row per key: `metrics.refresh_seconds` (Tyto's refresh interval,
 * POST /api/v1/settings/refresh). Read by a device hub when its agent says hello.
 */
export const settings = sqliteTable('settings', {
  key: text('key').primaryKey(),
  /** JSON. */
  value: text('value', { mode: 'json' }).$type<unknown>().notNull(),
  updatedAt: ms('updated_at').notNull(),
  updatedBy: text('updated_by').references(() => users.id, { onDelete: 'set null' }),
});

/**
 * Alert rules (shared/api/alerts.ts): relay-wide (team and device null), a team's, or one
 * device's. Every device hub evaluates the rules that reach its device. The channels are sealed
 * (worker/auth/secret-box.ts, place `alert-rule:<id>`); `channel_views` is what the API shows of them.
 */
export const alertRules = sqliteTable('alert_rules', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  metric: text('metric').$type<AlertMetric>().notNull(),
  target: text('target'),
  warning: real('warning'),
  critical: real('critical'),
  level: text('level').$type<AlertLevel>(),
  holdSeconds: integer('hold_seconds').notNull(),
  recoverySeconds: integer('recovery_seconds').notNull(),
  teamId: text('team_id').references(() => teams.id, { onDelete: 'cascade' }),
  deviceId: text('device_id').references(() => devices.id, { onDelete: 'cascade' }),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  /** JSON array of Channel, sealed; null when the rule notifies nobody. */
  channelsSealed: text('channels_sealed'),
  channelViews: text('channel_views', { mode: 'json' }).$type<ChannelView[]>().notNull(),
  resendMinutes: integer('resend_minutes'),
  resendCap: integer('resend_cap').notNull(),
  quietHours: text('quiet_hours', { mode: 'json' }).$type<QuietHours>(),
  createdBy: text('created_by').references(() => users.id, { onDelete: 'set null' }),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at'),
}, (t) => [index('alert_rules_team_idx').on(t.teamId), index('alert_rules_device_idx').on(t.deviceId)]);

/**
 * Alerts raised by a device hub: one row per firing (escalation updates its level), resolved in
 * place. The team is the device's when it fired, so a team's members read their alerts.
 */
export const alerts = sqliteTable('alerts', {
  id: text('id').primaryKey(),
  ruleId: text('rule_id').notNull().references(() => alertRules.id, { onDelete: 'cascade' }),
  deviceId: text('device_id').notNull().references(() => devices.id, { onDelete: 'cascade' }),
  teamId: text('team_id').notNull(),
  metric: text('metric').$type<AlertMetric>().notNull(),
  level: text('level').$type<AlertLevel>().notNull(),
  value: real('value'),
  threshold: real('threshold'),
  message: text('message').notNull(),
  cause: text('cause', { mode: 'json' }).$type<AlertCause>().notNull(),
  state: text('state').$type<'firing' | 'resolved'>().notNull(),
  createdAt: ms('created_at').notNull(),
  resolvedAt: ms('resolved_at'),
  acknowledgedAt: ms('acknowledged_at'),
  acknowledgedBy: text('acknowledged_by').references(() => users.id, { onDelete: 'set null' }),
}, (t) => [index('alerts_team_idx').on(t.teamId, t.createdAt), index('alerts_device_idx').on(t.deviceId, t.createdAt), index('alerts_state_idx').on(t.state, t.createdAt)]);

/** Each notification sent or to be sent, and how it went (one row per delivery, updated per attempt). */
export const alertDeliveries = sqliteTable('alert_deliveries', {
  id: text('id').primaryKey(),
  alertId: text('alert_id').references(() => alerts.id, { onDelete: 'cascade' }),
  ruleId: text('rule_id').references(() => alertRules.id, { onDelete: 'cascade' }),
  /** Null for a test notification sent from the API; else the alert's team. */
  teamId: text('team_id'),
  /** Which of the rule's channels (its index), and what it is. */
  channelIndex: integer('channel_index').notNull(),
  channel: text('channel', { mode: 'json' }).$type<ChannelView>().notNull(),
  event: text('event').$type<DeliveryEvent>().notNull(),
  status: text('status').$type<DeliveryStatus>().notNull(),
  attempts: integer('attempts').notNull().default(0),
  responseStatus: integer('response_status'),
  error: text('error'),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at'),
  nextAttemptAt: ms('next_attempt_at'),
}, (t) => [index('alert_deliveries_alert_idx').on(t.alertId), index('alert_deliveries_rule_idx').on(t.ruleId, t.createdAt)]);

export type AlertRuleRow = typeof alertRules.$inferSelect;
export type AlertRow = typeof alerts.$inferSelect;
export type DeliveryRow = typeof alertDeliveries.$inferSelect;
