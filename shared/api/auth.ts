// Request and response shapes of the account API (login and sessions, two-factor login,
// first-admin bootstrap, API keys, users, roles), in the wire format Tyto documents. Clients (CLI, dashboard, scripts)
// and the Worker's validators share these, so a rule like the password policy lives in one place.
import { z } from 'zod';

export const PASSWORD_MIN_LENGTH = 8;
/** PBKDF2 cost grows with nothing but iterations, yet a cap keeps request bodies small. */
export const PASSWORD_MAX_LENGTH = 256;
export const USERNAME_PATTERN = /^[a-zA-Z0-9_.-]{3,64}$/;
/** "resource:action" with "*" wildcards, e.g. "devices:read", "alerts:*", "*". */
export const PERMISSION_PATTERN = /^([a-z][a-z0-9-]*|\*)(:([a-z][a-z0-9-]*|\*))?$/;
export const API_KEY_MAX_DAYS = 3650;

/**
 * The relay's session cookie. `__Host-` makes a browser take it only host-only, Secure and with
 * Path=/, so a tunnel target on a sibling subdomain cannot plant one for the API's host (a
 * `Domain=` parent cookie named so is refused by the browser itself).
 */
export const SESSION_COOKIE = '__Host-pirelay_session';
/** The cookie's name before it became `__Host-`: never accepted any more, still never forwarded. */
export const LEGACY_SESSION_COOKIE = 'pirelay_session';

const isoTime = z.iso.datetime({ offset: true });

export const UsernameSchema = z
  .string()
  .regex(USERNAME_PATTERN, 'username must be 3-64 characters of letters, digits, "_", "." or "-"');
export const PasswordSchema = z
  .string()
  .min(PASSWORD_MIN_LENGTH, `password must be at least ${PASSWORD_MIN_LENGTH} characters`)
  .max(PASSWORD_MAX_LENGTH);
export const EmailSchema = z.email().max(254);
export const PermissionSchema = z.string().max(64).regex(PERMISSION_PATTERN, 'permission must look like "resource:action"');
export const RoleIdSchema = z.string().min(1).max(64);
/** A display name: printable text, no control characters; empty means "use the username". */
export const DisplayNameSchema = z
  .string()
  .trim()
  .max(128)
  .regex(/^[^\p{Cc}]*$/u, 'name may not contain control characters');

/**
 * The IANA name of a time zone as the runtime's time zone database spells it ("utc" → "UTC"),
 * or null when it knows no such zone. Offsets ("+01:00") are not zone names, so they are refused.
 */
export function canonicalTimeZone(name: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(name)) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}
export const TimeZoneSchema = z
  .string()
  .max(64)
  .refine((tz) => canonicalTimeZone(tz) !== null, 'timezone must be an IANA time zone name, e.g. "UTC" or "Europe/Paris"');
const RoleListSchema = z.array(RoleIdSchema).min(1).max(16);

// --- sessions -------------------------------------------------------------------------------

/** Login does not apply the username/password policy, so it cannot be used to probe it. */
/** A browser asks for its session as the HttpOnly cookie SESSION_COOKIE instead of a token it would have to keep. */
const sessionCookieField = { session_cookie: z.boolean().optional() };

export const LoginRequestSchema = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
  ...sessionCookieField,
});
export type LoginRequest = z.infer<typeof LoginRequestSchema>;

export const SessionUserSchema = z.object({
  id: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  roles: z.array(z.string()),
  permissions: z.array(z.string()),
});

export const LoginResponseSchema = z.object({
  /** Absent when the session was set as the cookie (session_cookie: true). */
  token: z.string().optional(),
  user: SessionUserSchema,
  expires_at: isoTime,
});
export type LoginResponse = z.infer<typeof LoginResponseSchema>;

/** The password was right and the account has two-factor login: POST /auth/login/2fa with the challenge. */
export const LoginChallengeSchema = z.object({
  two_factor_required: z.literal(true),
  /** Single use, for a few minutes and a few tries; only its SHA-256 is kept. */
  challenge: z.string(),
  expires_at: isoTime,
});
export type LoginChallenge = z.infer<typeof LoginChallengeSchema>;

/** What POST /auth/login answers: a session, or the challenge of the second step. */
export const LoginResultSchema = z.union([LoginResponseSchema, LoginChallengeSchema]);
export type LoginResult = z.infer<typeof LoginResultSchema>;

/** A code from the authenticator app, or one of the recovery codes (dashes and case do not matter). */
const TotpCodeSchema = z.string().trim().regex(/^\d{6}$/, 'code must be the 6 digits the authenticator app shows');
const RecoveryCodeSchema = z.string().trim().min(1).max(32);

export const LoginTwoFactorRequestSchema = z
  .object({
    challenge: z.string().min(1).max(128),
    code: TotpCodeSchema.optional(),
    recovery_code: RecoveryCodeSchema.optional(),
    ...sessionCookieField,
  })
  .refine((b) => (b.code === undefined) !== (b.recovery_code === undefined), 'give code or recovery_code, exactly one');
export type LoginTwoFactorRequest = z.infer<typeof LoginTwoFactorRequestSchema>;

const profileFields = {
  name: z.string(),
  timezone: z.string(),
  /** Set only by an admin (users:write): the relay sends no mail to verify an address itself. */
  email_verified: z.boolean(),
  two_factor_enabled: z.boolean(),
  updated_at: isoTime,
};

export const MeSchema = SessionUserSchema.extend({
  auth_provider: z.string(),
  last_login: isoTime.nullable(),
  ...profileFields,
});
export type Me = z.infer<typeof MeSchema>;

export const UpdateMeRequestSchema = z
  .object({
    /** A new address is not verified: changing it clears email_verified. */
    email: EmailSchema.nullable().optional(),
    name: DisplayNameSchema.optional(),
    timezone: TimeZoneSchema.optional(),
  })
  .refine((b) => b.email !== undefined || b.name !== undefined || b.timezone !== undefined, 'give at least one of email, name, timezone');
export type UpdateMeRequest = z.infer<typeof UpdateMeRequestSchema>;

// --- two-factor login -----------------------------------------------------------------------

export const RECOVERY_CODE_COUNT = 10;

export const TwoFactorEnrolmentSchema = z.object({
  /** The TOTP secret, base32: shown here only, never again. */
  secret: z.string(),
  otpauth_uri: z.string(),
});
export type TwoFactorEnrolment = z.infer<typeof TwoFactorEnrolmentSchema>;

export const TwoFactorConfirmRequestSchema = z.object({ code: TotpCodeSchema });
export type TwoFactorConfirmRequest = z.infer<typeof TwoFactorConfirmRequestSchema>;

/** Disabling two-factor login and replacing the recovery codes take a current code: a TOTP code or a recovery code. */
export const TwoFactorCodeRequestSchema = z.object({ code: RecoveryCodeSchema });
export type TwoFactorCodeRequest = z.infer<typeof TwoFactorCodeRequestSchema>;

/** Shown once; only their SHA-256 is kept, and each works once. */
export const RecoveryCodesSchema = z.object({ recovery_codes: z.array(z.string()).length(RECOVERY_CODE_COUNT) });
export type RecoveryCodes = z.infer<typeof RecoveryCodesSchema>;

export const ChangePasswordRequestSchema = z.object({
  current_password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
  new_password: PasswordSchema,
});
export type ChangePasswordRequest = z.infer<typeof ChangePasswordRequestSchema>;

export const RegisterRequestSchema = z.object({
  username: UsernameSchema,
  password: PasswordSchema,
  email: EmailSchema.optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequestSchema>;

// --- users ----------------------------------------------------------------------------------

export const UserSchema = z.object({
  id: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  roles: z.array(z.string()),
  auth_provider: z.string(),
  disabled: z.boolean(),
  created_at: isoTime,
  last_login: isoTime.nullable(),
  ...profileFields,
});
export type User = z.infer<typeof UserSchema>;

export const UserListSchema = z.object({ users: z.array(UserSchema) });

export const CreateUserRequestSchema = z.object({
  username: UsernameSchema,
  password: PasswordSchema,
  email: EmailSchema.optional(),
  roles: RoleListSchema,
  name: DisplayNameSchema.optional(),
  timezone: TimeZoneSchema.optional(),
  email_verified: z.boolean().optional(),
});
export type CreateUserRequest = z.infer<typeof CreateUserRequestSchema>;

export const UpdateUserRequestSchema = z
  .object({
    email: EmailSchema.nullable().optional(),
    roles: RoleListSchema.optional(),
    /** false re-enables a disabled user; true is the same as DELETE. */
    disabled: z.boolean().optional(),
    name: DisplayNameSchema.optional(),
    timezone: TimeZoneSchema.optional(),
    /** A changed email is unverified unless this says otherwise in the same request. */
    email_verified: z.boolean().optional(),
  })
  .refine(
    (b) => Object.values(b).some((v) => v !== undefined),
    'give at least one of email, roles, disabled, name, timezone, email_verified',
  );
export type UpdateUserRequest = z.infer<typeof UpdateUserRequestSchema>;

export const ResetPasswordRequestSchema = z.object({ new_password: PasswordSchema });
export type ResetPasswordRequest = z.infer<typeof ResetPasswordRequestSchema>;

// --- first admin ----------------------------------------------------------------------------

export const BootstrapRequestSchema = z.object({
  username: UsernameSchema,
  password: PasswordSchema,
  email: EmailSchema.optional(),
});
export type BootstrapRequest = z.infer<typeof BootstrapRequestSchema>;

/** api_key is the new admin's API key itself; it is shown this once. */
export const BootstrapResponseSchema = z.object({ user: UserSchema, api_key: z.string() });
export type BootstrapResponse = z.infer<typeof BootstrapResponseSchema>;

// --- API keys -------------------------------------------------------------------------------

export const CreateApiKeyRequestSchema = z
  .object({
    name: z.string().trim().min(1).max(64),
    expires_in_days: z.number().int().min(1).max(API_KEY_MAX_DAYS).optional(),
    expires_at: isoTime.optional(),
    /** Narrows the key to these permissions; each must be one the caller holds. */
    permissions: z.array(PermissionSchema).max(64).optional(),
  })
  .refine((b) => b.expires_in_days === undefined || b.expires_at === undefined, {
    message: 'give expires_in_days or expires_at, not both',
    path: ['expires_at'],
  });
export type CreateApiKeyRequest = z.infer<typeof CreateApiKeyRequestSchema>;

const apiKeyFields = {
  id: z.string(),
  name: z.string(),
  /** The first characters of the key, to recognise it; never enough to use it. */
  prefix: z.string(),
  /** null: the key acts with all of its owner's permissions. */
  permissions: z.array(z.string()).nullable(),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
};

export const CreatedApiKeySchema = z.object({ ...apiKeyFields, key: z.string() });
export type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;

export const ApiKeySchema = z.object({
  ...apiKeyFields,
  user_id: z.string(),
  last_used_at: isoTime.nullable(),
  revoked_at: isoTime.nullable(),
});
export type ApiKey = z.infer<typeof ApiKeySchema>;

export const ApiKeyListSchema = z.object({ api_keys: z.array(ApiKeySchema) });

export const ApiKeyListQuerySchema = z.object({
  user_id: z.string().min(1).max(64).optional(),
  all: z.enum(['true', 'false']).optional(),
});

// --- roles ----------------------------------------------------------------------------------

export const RoleSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  permissions: z.array(z.string()),
  is_system: z.boolean(),
});
export type Role = z.infer<typeof RoleSchema>;

export const RoleListResponseSchema = z.object({ roles: z.array(RoleSchema) });

export const CreateRoleRequestSchema = z.object({
  name: z.string().trim().min(1).max(64),
  description: z.string().max(256).optional(),
  permissions: z.array(PermissionSchema).max(64),
});
export type CreateRoleRequest = z.infer<typeof CreateRoleRequestSchema>;

export const UpdateRoleRequestSchema = CreateRoleRequestSchema.partial().refine(
  (b) => b.name !== undefined || b.description !== undefined || b.permissions !== undefined,
  'give at least one of name, description, permissions',
);
export type UpdateRoleRequest = z.infer<typeof UpdateRoleRequestSchema>;
