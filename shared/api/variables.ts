// Variables as clients see them: the three levels, the name rule and the size bound. A secret's
// value is write-only: every API answers it as "***".
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
