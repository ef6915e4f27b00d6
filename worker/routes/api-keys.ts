// /api/v1/api-keys: long-lived credentials for scripts and CLIs. A key is shown once at creation;
// only its SHA-256 is stored. A key may be narrowed to part of its owner's permissions, and a
// key can never be made broader than the credential that created it.
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, isNull, type SQL } from 'drizzle-orm';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity, errorResponse, notFoundError } from '../openapi.ts';
import { forbidden, notFound, validationError } from '../errors.ts';
import { getDb, iso, schema, type Db } from '../../shared/db/index.ts';
import type { ApiKey } from '../../shared/db/schema.ts';
import { principalOf } from '../auth/middleware.ts';
import { allows } from '../auth/access.ts';
import { permits } from '../auth/permissions.ts';
import { API_KEY_PREFIX, type Principal } from '../auth/principal.ts';
import { randomId, randomToken, sha256Hex } from '../auth/crypto.ts';
import { assertHolds } from './roles.ts';
import { audit } from '../audit.ts';
import { revokeWatchers } from '../stream/revoke.ts';
import {
  API_KEY_MAX_DAYS,
  ApiKeyListQuerySchema,
  ApiKeyListSchema,
  CreateApiKeyRequestSchema,
  CreatedApiKeySchema,
  type CreateApiKeyRequest,
} from '../../shared/api/auth.ts';

const DAY_MS = 86_400_000;
/** Long enough to tell keys apart in a list, far too short to help guess one. */
const PREFIX_LENGTH = API_KEY_PREFIX.length + 8;
const json = <T>(schema: T) => ({ 'application/json': { schema } });
const security = bearerSecurity;

const canManageAll = (p: Principal) => permits(p.permissions, 'api-keys:*');

function apiKeyView(k: ApiKey) {
  return {
    id: k.id,
    user_id: k.userId,
    name: k.name,
    prefix: k.prefix,
    permissions: k.permissions ?? null,
    created_at: iso(k.createdAt)!,
    expires_at: iso(k.expiresAt),
    last_used_at: iso(k.lastUsedAt),
    revoked_at: iso(k.revokedAt),
  };
}

/** Mints a key for a user. The returned `key` is the only time the secret exists in clear. */
export async function issueApiKey(
  db: Db,
  input: { userId: string; name: string; permissions: string[] | null; expiresAt: number | null },
): Promise<{ row: ApiKey; key: string }> {
  const key = randomToken(API_KEY_PREFIX);
  const [row] = await db
    .insert(schema.apiKeys)
    .values({
      id: randomId(16),
      userId: input.userId,
      name: input.name,
      prefix: key.slice(0, PREFIX_LENGTH),
      keyHash: await sha256Hex(key),
      permissions: input.permissions,
      createdAt: Date.now(),
      expiresAt: input.expiresAt,
    })
    .returning();
  return { row: row!, key };
}

export async function revokeUserApiKeys(d1: D1Database, userId: string, now = Date.now()): Promise<void> {
  const k = schema.apiKeys;
  await getDb(d1).update(k).set({ revokedAt: now }).where(and(eq(k.userId, userId), isNull(k.revokedAt)));
}

function expiryOf(body: CreateApiKeyRequest, now: number): number | null {
  if (body.expires_in_days !== undefined) return now + body.expires_in_days * DAY_MS;
  if (body.expires_at === undefined) return null;
  const at = Date.parse(body.expires_at);
  if (at <= now || at > now + API_KEY_MAX_DAYS * DAY_MS) {
    throw validationError('Invalid request json', {
      target: 'json',
      issues: [{ path: 'expires_at', message: `must be in the future and within ${API_KEY_MAX_DAYS} days`, code: 'out_of_range' }],
    });
  }
  return at;
}

/** Without an explicit list, a key made by a narrowed key stays as narrow as its maker. */
async function permissionsFor(db: Db, caller: Principal, wanted: string[] | undefined): Promise<string[] | null> {
  if (wanted) {
    assertHolds(caller, wanted, 'give an API key');
    return [...new Set(wanted)];
  }
  if (caller.kind !== 'api_key' || !caller.apiKeyId) return null;
  const maker = await db.query.apiKeys.findFirst({ where: eq(schema.apiKeys.id, caller.apiKeyId), columns: { permissions: true } });
  return maker?.permissions ?? null;
}

const routeBase = { tags: ['api-keys'], security, ...allows('api-keys:own') };

const createKey = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/api-keys',
  summary: 'Create an API key for yourself (the key is shown only in this response)',
  request: { body: { required: true, content: json(CreateApiKeyRequestSchema.openapi('CreateApiKeyRequest')) } },
  responses: { 201: { description: 'The key, with its secret', content: json(CreatedApiKeySchema.openapi('CreatedApiKey')) }, ...authErrors },
});

const listKeys = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/api-keys',
  summary: "List your API keys; with api-keys:*, another user's (?user_id=) or everyone's (?all=true)",
  request: { query: ApiKeyListQuerySchema },
  responses: { 200: { description: 'Keys, without their secrets', content: json(ApiKeyListSchema.openapi('ApiKeyList')) }, ...authErrors },
});

const revokeKey = createRoute({
  ...routeBase,
  method: 'delete',
  path: '/api/v1/api-keys/{id}',
  summary: 'Revoke an API key; it stops working at once, and the live streams opened with it end',
  request: { params: z.object({ id: z.string().min(1).max(64) }) },
  responses: {
    204: { description: 'Revoked' },
    ...authErrors,
    ...notFoundError,
    502: errorResponse('The key is revoked, but its live streams could not be closed (STREAMS_NOT_CLOSED); repeat the call'),
  },
});

export function registerApiKeyRoutes(app: App) {
  app.openapi(createKey, async (c) => {
    const body = c.req.valid('json');
    const caller = principalOf(c);
    const db = getDb(c.env.DB);
    const expiresAt = expiryOf(body, Date.now());
    const permissions = await permissionsFor(db, caller, body.permissions);
    const { row, key } = await issueApiKey(db, { userId: caller.userId, name: body.name, permissions, expiresAt });
    const { id, name, prefix, permissions: perms, created_at, expires_at } = apiKeyView(row);
    audit(c, { action: 'api_key.create', targetType: 'api_key', targetId: id, details: { name, prefix, permissions: perms, expires_at } });
    return c.json({ id, name, key, prefix, permissions: perms, created_at, expires_at }, 201);
  });

  app.openapi(listKeys, async (c) => {
    const query = c.req.valid('query');
    const caller = principalOf(c);
    const userId = query.user_id ?? caller.userId;
    if ((query.all === 'true' || userId !== caller.userId) && !canManageAll(caller)) {
      throw forbidden("Listing other users' API keys needs api-keys:*", { required: ['api-keys:*'] });
    }
    const where: SQL | undefined = query.all === 'true' ? undefined : eq(schema.apiKeys.userId, userId);
    const rows = await getDb(c.env.DB).select().from(schema.apiKeys).where(where).orderBy(desc(schema.apiKeys.createdAt));
    return c.json({ api_keys: rows.map(apiKeyView) }, 200);
  });

  app.openapi(revokeKey, async (c) => {
    const { id } = c.req.valid('param');
    const caller = principalOf(c);
    const db = getDb(c.env.DB);
    const key = await db.query.apiKeys.findFirst({ where: eq(schema.apiKeys.id, id) });
    // Someone else's key is "not found" to a non-admin: ids should not be probeable.
    if (!key || (key.userId !== caller.userId && !canManageAll(caller))) throw notFound('API key', { id });
    // Revoking a revoked key changes nothing, so it is not recorded again.
    if (!key.revokedAt) {
      await db.update(schema.apiKeys).set({ revokedAt: Date.now() }).where(eq(schema.apiKeys.id, id));
      audit(c, { action: 'api_key.revoke', targetType: 'api_key', targetId: id, details: { name: key.name, prefix: key.prefix, user_id: key.userId } });
    }
    // The key's live streams end too, on a repeat as well: a retry after a 502 STREAMS_NOT_CLOSED closes them.
    await revokeWatchers(c.env, { userId: key.userId, credentialId: id });
    return c.body(null, 204);
  });
}
