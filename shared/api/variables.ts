// Variables as clients see them: the three levels, the name rule, the size bound and the native
// shapes. A secret's value is write-only: every API answers it as "***".
import { z } from 'zod';

export const VARIABLE_LEVELS = ['user', 'team', 'device'] as const;
export type VariableLevel = (typeof VARIABLE_LEVELS)[number];

/** A shell-safe identifier, case as given. */
export const VARIABLE_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
export const VARIABLE_NAME_MAX = 128;
/** The largest value, in UTF-8 bytes. */
export const VARIABLE_VALUE_MAX_BYTES = 16 * 1024;
/** What every API shows in place of a secret's value. */
export const SECRET_MASK = '***';

export const VariableLevelSchema = z.enum(VARIABLE_LEVELS);

export const VariableNameSchema = z
  .string()
  .max(VARIABLE_NAME_MAX, `a variable name is at most ${VARIABLE_NAME_MAX} characters`)
  .regex(VARIABLE_NAME_PATTERN, 'a variable name is a shell identifier: A-Z, 0-9 and "_", not starting with a digit');

const encoder = new TextEncoder();

/** The bound is on bytes, as a process environment holds them, not on UTF-16 code units. */
export const VariableValueSchema = z
  .string()
  .refine((v) => encoder.encode(v).length <= VARIABLE_VALUE_MAX_BYTES, { message: `a value is at most ${VARIABLE_VALUE_MAX_BYTES} bytes of UTF-8` });

/**
 * The body of PUT …/variables/{name}. `secret` left out keeps what the variable is (a new one is
 * plain); `value` left out keeps the current value, so `{secret: true}` seals a plain variable
 * where it stands. A secret's value is never read back, so making it plain needs a new value.
 */
export const PutVariableSchema = z
  .object({ value: VariableValueSchema.optional(), secret: z.boolean().optional() })
  .refine((b) => b.value !== undefined || b.secret !== undefined, { message: 'give a value, secret, or both' });
export type PutVariable = z.infer<typeof PutVariableSchema>;

export const VariableSchema = z.object({
  name: z.string(),
  /** SECRET_MASK for a secret. */
  value: z.string(),
  secret: z.boolean(),
  level: VariableLevelSchema,
  created_at: z.string(),
  updated_at: z.string(),
});
export type Variable = z.infer<typeof VariableSchema>;

export const VariableListSchema = z.object({ variables: z.array(VariableSchema) });

/** What one POST /api/v1/admin/reseal did, and what is left. */
export const ResealResultSchema = z.object({
  /** Values moved to VARIABLES_KEY by this call. */
  resealed: z.number().int(),
  /** Values under VARIABLES_KEY_PREVIOUS still to move: call again while this is above 0. */
  remaining: z.number().int(),
  /** Values under neither key, or that do not open (tampered): they stay as they are and cannot be read. */
  failed: z.number().int(),
});
export type ResealResult = z.infer<typeof ResealResultSchema>;
