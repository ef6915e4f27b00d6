// Teams as clients see them: the roles a member can hold and the order they rank in (from
// team-roles.ts, which has no zod, for the dashboard's sake), and the native team, member and
// invitation shapes, so the dashboard and the Worker share them.
import { z } from 'zod';
import { EmailSchema, USERNAME_PATTERN } from './auth.ts';
import { INVITATION_TOKEN_PREFIX, TEAM_ROLES, atLeast, type TeamRole } from './team-roles.ts';

export { INVITATION_TOKEN_PREFIX, TEAM_ROLES, atLeast, type TeamRole };
export const TeamRoleSchema = z.enum(TEAM_ROLES);

const isoTime = z.iso.datetime({ offset: true });

export const TEAM_NAME_MAX = 64;
/** Names are shown in lists and logs: no control characters (newlines, escapes, bidi overrides). */
const NO_CONTROL_CHARACTERS = /^[^\p{Cc}\p{Cf}]*$/u;

/** Trimmed, 1–64 characters; unique case-insensitively across the relay. */
export const TeamNameSchema = z
  .string()
  .trim()
  .min(1, 'a team name may not be empty')
  .max(TEAM_NAME_MAX, `a team name has at most ${TEAM_NAME_MAX} characters`)
  .regex(NO_CONTROL_CHARACTERS, 'a team name may not contain control characters');

export const TeamIdSchema = z.string().min(1).max(64);

export const TeamSchema = z.object({
  id: z.string(),
  name: z.string(),
  require_2fa: z.boolean(),
  /** The caller's role in the team; null for an instance admin who is not a member. */
  role: TeamRoleSchema.nullable(),
  member_count: z.number().int(),
  device_count: z.number().int(),
  created_at: isoTime,
  updated_at: isoTime,
});
export type Team = z.infer<typeof TeamSchema>;

export const TeamListSchema = z.object({ teams: z.array(TeamSchema) });

export const TeamMemberSchema = z.object({
  user_id: z.string(),
  username: z.string(),
  name: z.string(),
  email: z.string().nullable(),
  role: TeamRoleSchema,
  two_factor_enabled: z.boolean(),
  joined_at: isoTime,
});
export type TeamMember = z.infer<typeof TeamMemberSchema>;

export const TeamDetailSchema = TeamSchema.extend({ members: z.array(TeamMemberSchema) });
export type TeamDetail = z.infer<typeof TeamDetailSchema>;

export const CreateTeamRequestSchema = z.object({ name: TeamNameSchema }).strict();
export type CreateTeamRequest = z.infer<typeof CreateTeamRequestSchema>;

export const UpdateTeamRequestSchema = z
  .object({ name: TeamNameSchema.optional(), require_2fa: z.boolean().optional() })
  .strict()
  .refine((b) => b.name !== undefined || b.require_2fa !== undefined, 'give at least one of name, require_2fa');
export type UpdateTeamRequest = z.infer<typeof UpdateTeamRequestSchema>;

/** A user is named by id or by user name, not both. */
export const AddMemberRequestSchema = z
  .object({
    user_id: z.string().min(1).max(64).optional(),
    username: z.string().min(1).max(64).optional(),
    role: TeamRoleSchema,
  })
  .strict()
  .refine((b) => (b.user_id === undefined) !== (b.username === undefined), { message: 'give exactly one of user_id, username', path: ['user_id'] });
export type AddMemberRequest = z.infer<typeof AddMemberRequestSchema>;

export const UpdateMemberRequestSchema = z.object({ role: TeamRoleSchema }).strict();
export type UpdateMemberRequest = z.infer<typeof UpdateMemberRequestSchema>;

// --- invitations ----------------------------------------------------------------------------

export const INVITATION_DEFAULT_HOURS = 7 * 24;
export const INVITATION_MAX_HOURS = 30 * 24;
export const INVITATION_STATES = ['pending', 'accepted', 'revoked', 'expired'] as const;
export type InvitationState = (typeof INVITATION_STATES)[number];

/** An e-mail address or a user name; compared case-insensitively, so stored lower-cased. */
const InviteeSchema = z
  .string()
  .trim()
  .min(1)
  .max(254)
  .refine((s) => EmailSchema.safeParse(s).success || USERNAME_PATTERN.test(s), 'invitee must be an e-mail address or a user name')
  .transform((s) => s.toLowerCase());

export const CreateInvitationRequestSchema = z
  .object({
    invitee: InviteeSchema,
    role: TeamRoleSchema,
    expires_in_hours: z.number().int().min(1).max(INVITATION_MAX_HOURS).optional(),
  })
  .strict();
export type CreateInvitationRequest = z.infer<typeof CreateInvitationRequestSchema>;

export const InvitationSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  team_name: z.string(),
  invitee: z.string(),
  role: TeamRoleSchema,
  /** The first characters of the token, to recognise it; never enough to use it. */
  prefix: z.string(),
  invited_by: z.string().nullable(),
  created_at: isoTime,
  expires_at: isoTime,
  state: z.enum(INVITATION_STATES),
});
export type Invitation = z.infer<typeof InvitationSchema>;

/** `token` exists only in this response: the relay keeps its SHA-256. */
export const CreatedInvitationSchema = InvitationSchema.extend({ token: z.string() });
export type CreatedInvitation = z.infer<typeof CreatedInvitationSchema>;

export const InvitationListSchema = z.object({ invitations: z.array(InvitationSchema) });

export const AcceptInvitationRequestSchema = z.object({ token: z.string().min(1).max(128) }).strict();
export type AcceptInvitationRequest = z.infer<typeof AcceptInvitationRequestSchema>;

/** What accepting an invitation answers: the team, as the new member now sees it, and the membership. */
export const MembershipSchema = z.object({ team: TeamSchema, member: TeamMemberSchema });
export type Membership = z.infer<typeof MembershipSchema>;
