// The one error shape of the native API, ErrorBody { error, code, details } (shared/codes.ts, which
// the agent and the client read it with), with a fitting status.
// Routes throw ApiError; app.onError renders it (and turns anything unexpected into a 500).
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ErrorCode } from '../shared/codes.ts';

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) => new ApiError(400, ErrorCode.BAD_REQUEST, message, details);
export const validationError = (message: string, details?: Record<string, unknown>) => new ApiError(400, ErrorCode.VALIDATION_ERROR, message, details);
export const unauthorized = (message = 'Missing or invalid credentials') => new ApiError(401, ErrorCode.UNAUTHORIZED, message);
export const forbidden = (message: string, details?: Record<string, unknown>) => new ApiError(403, ErrorCode.FORBIDDEN, message, details);
export const notFound = (what: string, details?: Record<string, unknown>) => new ApiError(404, ErrorCode.NOT_FOUND, `${what} not found`, details);
export const conflict = (message: string, details?: Record<string, unknown>) => new ApiError(409, ErrorCode.CONFLICT, message, details);
export const unprocessable = (code: string, message: string, details?: Record<string, unknown>) => new ApiError(422, code, message, details);
export const tooManyRequests = (message: string, details?: Record<string, unknown>) => new ApiError(429, ErrorCode.RATE_LIMITED, message, details);

