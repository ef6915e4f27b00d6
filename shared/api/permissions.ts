// The permission catalogue (GET /api/v1/permissions): every permission the API's routes declare,
// with the wildcards that cover them, so a client building a role or narrowing an API key offers
// exactly what the relay checks. The Worker derives it from the routes' own declarations.
import { z } from 'zod';

export const PermissionRouteSchema = z.object({
  method: z.string(),
  path: z.string(),
  /** The route's OpenAPI summary; null for the compatibility routes outside the document. */
  summary: z.string().nullable(),
});
export type PermissionRoute = z.infer<typeof PermissionRouteSchema>;

export const PermissionEntrySchema = z.object({
  /** "devices:read", "devices:*" or "*". */
  permission: z.string(),
  /** "devices"; "*" for the permission of everything. */
  resource: z.string(),
  /** "read"; "*" for a wildcard. */
  action: z.string(),
  /** "*" or "<resource>:*": covers every permission of the resource, including ones added later. */
  wildcard: z.boolean(),
  /** One line saying what it allows. */
  description: z.string(),
  /** The routes that declare this very permission (each needs every permission it declares); a wildcard is rarely declared itself. */
  routes: z.array(PermissionRouteSchema),
});
export type PermissionEntry = z.infer<typeof PermissionEntrySchema>;

export const PermissionCatalogueSchema = z.object({ permissions: z.array(PermissionEntrySchema) });
export type PermissionCatalogue = z.infer<typeof PermissionCatalogueSchema>;
