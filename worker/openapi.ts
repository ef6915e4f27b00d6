// Shared pieces for declaring native routes with @hono/zod-openapi: the app type, the
// validation hook that renders zod failures in our error shape, and common response schemas.
import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.ts';
import { errorBody } from '../shared/codes.ts';
import { validationError, type ApiError } from './errors.ts';

export type App = OpenAPIHono<AppEnv>;

export function newApp(): App {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const e = invalidRequest(result.target, result.error);
        return c.json(errorBody(e.code, e.message, e.details), e.status);
      }
    },
  });
}

/** A part of the request (param, query, json…) that its schema refused: 400 VALIDATION_ERROR with zod's issues. */
export function invalidRequest(target: string, error: z.ZodError): ApiError {
  const issues = error.issues.map((i) => ({ path: i.path.join('.'), message: i.message, code: i.code }));
  return validationError(`Invalid request ${target}`, { target, issues });
}

export const ErrorSchema = z
  .object({ error: z.string(), code: z.string(), details: z.record(z.string(), z.unknown()) })
  .openapi('Error');

const err = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/** Error responses most authenticated routes can give; spread into a route's `responses`. */
export const authErrors = {
  400: err('Invalid input'),
  401: err('Missing or invalid credentials'),
  403: err('Insufficient permissions'),
} as const;
export const notFoundError = { 404: err('Not found') } as const;
export const conflictError = { 409: err('Conflict') } as const;
export const deviceErrors = {
  503: err('The device is offline (DEVICE_OFFLINE)'),
  504: err('The device did not answer in time (DEVICE_TIMEOUT)'),
} as const;
export { err as errorResponse };

export const bearerSecurity: Record<string, string[]>[] = [{ bearerAuth: [] }, { basicAuth: [] }];
