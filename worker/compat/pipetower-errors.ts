// Pipetower is a Laravel application, so its clients expect Laravel's error bodies:
// {"message": "Unauthenticated."} for 401, {"message": "Not found."} for 404, and for a 422
// {"message": "<first error> (and N more errors)", "errors": {"<field>": ["…"]}}. Its routes
// (worker/compat/pipetower.ts) throw our ApiError like every other route and refuse through the
// same checks (requires, worker/auth/scope.ts); this module renders what they throw in that shape
// instead of ours, so the access rules stay written once.
import type { Context, ErrorHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from '../errors.ts';
import { ErrorCode } from '../../shared/codes.ts';
import type { PipetowerError } from '../../shared/api/pipetower.ts';

/** What failed, per field, in Laravel's words ("The limit field must be an integer."). */
export type FieldErrors = Record<string, string[]>;

/** A 422 in Laravel's form: the message is the first error, and how many more there are. */
export function invalid(errors: FieldErrors): ApiError {
  const all = Object.values(errors).flat();
  const more = all.length - 1;
  const message = more > 0 ? `${all[0]} (and ${more} more error${more > 1 ? 's' : ''})` : (all[0] ?? 'The given data was invalid.');
  return new ApiError(422, ErrorCode.VALIDATION_ERROR, message, { errors });
}

/** Laravel's own messages where it has one; our message otherwise (it says why, e.g. a team's 2FA rule). */
function bodyOf(e: ApiError): PipetowerError {
  switch (e.status) {
    case 401:
      return { message: 'Unauthenticated.' };
    // A missing permission is Laravel's authorization failure; other 403s (two-factor login
    // required by the team) keep their reason.
    case 403:
      return { message: e.code === ErrorCode.FORBIDDEN ? 'This action is unauthorized.' : e.message };
    case 404:
      return { message: 'Not found.' };
    case 422:
      return { message: e.message, errors: (e.details.errors as FieldErrors | undefined) ?? {} };
    case 429:
      return { message: 'Too Many Attempts.' };
    default:
      return { message: e.message };
  }
}

export const renderPipetowerError: ErrorHandler<AppEnv> = (e, c) => {
  if (e instanceof ApiError) {
    const retry = e.details.retry_after;
    return c.json(bodyOf(e), e.status, typeof retry === 'number' ? { 'retry-after': String(retry) } : {});
  }
  console.error('pipetower: unhandled error', c.req.method, c.req.path, e);
  return c.json({ message: 'Server Error.' } satisfies PipetowerError, 500);
};

export function pipetowerNotFound(c: Context<AppEnv>): Response {
  return c.json({ message: 'Not found.' } satisfies PipetowerError, 404);
}
