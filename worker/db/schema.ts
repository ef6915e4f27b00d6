// The D1 schema: the source of truth for every table and row type. Migrations under
// migrations/ are generated from this file by drizzle-kit (`npm run db:generate`).
import { sqliteTable, text, integer, index, uniqueIndex } from 'drizzle-orm/sqlite-core';
import type { DEVICE_STATUSES } from '../../shared/api/devices.ts';
import type { TunnelAccessMode, TunnelKind } from '../../shared/api/tunnels.ts';

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
  createdAt: ms('created_at').notNull(),
  lastLogin: ms('last_login'),
}, (t) => [uniqueIndex('users_username_unique').on(t.username)]);

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
}, (t) => [index('devices_status_idx').on(t.status)]);

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
