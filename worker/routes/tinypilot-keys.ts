// /api/v1/devices/:id/tinypilot-keys: the keys of TinyPilot's API (worker/compat/tinypilot.ts).
// A real TinyPilot hands out tokens to anyone who can reach it, because it sits on its owner's
// LAN; on a public relay the base URL itself must be the credential, so each key is a per-device
// secret in the path of `<relay>/tinypilot/<key>/api/v1`. Making, listing and revoking keys needs
// hid:write in the device's team, since a key drives that device's keyboard and mouse and sees
// its screen. The key is shown once, in the answer that makes it; only its SHA-256 is stored.
// Revoking one ends its tokens at once. A key belongs to the device in its team: when the device
// moves to another team its keys stop working (and are no longer listed), so nobody of the old
// team keeps a way onto the new team's device.
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, isNull } from 'drizzle-orm';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { allows, onDevice } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { scopedTeam } from '../auth/scope.ts';
import { randomId, randomToken, sha256Hex } from '../auth/crypto.ts';
import { audit } from '../audit.ts';
import { ApiError, notFound } from '../errors.ts';
import { getDb, iso, schema } from '../../shared/db/index.ts';
import { DeviceIdParam, json, security } from '../devices/api-schemas.ts';
import type { TinypilotKey } from '../../shared/db/schema.ts';
import { CreatedTinypilotKeySchema, TinypilotKeyBodySchema, TinypilotKeyListSchema, TinypilotKeySchema } from '../../shared/api/kvm.ts';

/** "ptp_" + 43 base64url characters (32 random bytes): recognisable in a leak, unguessable. */
export const TINYPILOT_KEY_PREFIX = 'ptp_';
export const TINYPILOT_KEY_PATTERN = /^ptp_[A-Za-z0-9_-]{43}$/;
/** Enough to tell keys apart in the audit log, far too little to help guess one. */
const PREFIX_LENGTH = TINYPILOT_KEY_PREFIX.length + 6;
/** A device's live keys; more is a script minting keys in a loop. */
export const MAX_KEYS_PER_DEVICE = 50;

const tags = ['kvm'];
const write = allows('hid:write');

/** Where TinyPilot's API lives for a key: a client of a real TinyPilot swaps its base URL for this. */
export const tinypilotBaseUrl = (c: Context<AppEnv>, key: string) => `${new URL(c.req.url).origin}/tinypilot/${key}/api/v1`;

const view = (k: TinypilotKey) => ({ id: k.id, device_id: k.deviceId, name: k.name, created_at: iso(k.createdAt)!, last_used_at: iso(k.lastUsedAt) });

const KeyParams = DeviceIdParam.extend({ key_id: z.string().regex(/^[0-9a-f]{1,64}$/, 'a TinyPilot key id is hex').openapi({ param: { name: 'key_id', in: 'path' } }) });

const Key = TinypilotKeySchema.openapi('TinypilotKey');
const CreatedKey = CreatedTinypilotKeySchema.openapi('CreatedTinypilotKey');
const KeyList = TinypilotKeyListSchema.extend({ keys: z.array(Key) }).openapi('TinypilotKeyList');

const createKey = createRoute({
  method: 'post',
  path: '/api/v1/devices/{id}/tinypilot-keys',
  tags,
  summary: "Create a key for TinyPilot's API on this device (the key and its base URL are shown only in this answer)",
  security,
  ...onDevice(write),
  request: { params: DeviceIdParam, body: { required: false, content: { 'application/json': { schema: TinypilotKeyBodySchema.openapi('CreateTinypilotKey') } } } },
  responses: {
    201: json(CreatedKey, 'The key, with base_url: what a TinyPilot client uses as its base URL'),
    ...authErrors,
    ...notFoundError,
    409: errorResponse(`The device has ${MAX_KEYS_PER_DEVICE} live keys (TINYPILOT_KEY_LIMIT_REACHED)`),
  },
});

const listKeys = createRoute({
  method: 'get',
  path: '/api/v1/devices/{id}/tinypilot-keys',
  tags,
  summary: "List the device's live TinyPilot keys (never their secrets; those made before it moved to its team are dead)",
  security,
  ...onDevice(write),
  request: { params: DeviceIdParam },
  responses: { 200: json(KeyList, 'The keys, newest first'), ...authErrors, ...notFoundError },
});

const revokeKey = createRoute({
  method: 'delete',
  path: '/api/v1/devices/{id}/tinypilot-keys/{key_id}',
  tags,
  summary: 'Revoke a TinyPilot key; it and every token issued with it stop working at once',
  security,
  ...onDevice(write),
  request: { params: KeyParams },
  responses: { 204: { description: 'Revoked (also when it was already)' }, ...authErrors, ...notFoundError },
});

export function registerTinypilotKeyRoutes(app: App) {
  app.openapi(createKey, async (c) => {
    const { id } = c.req.valid('param');
    // The body is optional: without a content type it is not read ({}), and gets the default name.
    const { name } = TinypilotKeyBodySchema.parse(c.req.valid('json'));
    const teamId = scopedTeam(c);
    const db = getDb(c.env.DB);
    const k = schema.tinypilotKeys;
    const live = await db.$count(k, and(eq(k.deviceId, id), eq(k.teamId, teamId), isNull(k.revokedAt)));
    if (live >= MAX_KEYS_PER_DEVICE) {
      throw new ApiError(409, 'TINYPILOT_KEY_LIMIT_REACHED', `The device has ${MAX_KEYS_PER_DEVICE} TinyPilot keys; revoke one first`, { device_id: id, limit: MAX_KEYS_PER_DEVICE });
    }
    const key = randomToken(TINYPILOT_KEY_PREFIX);
    const [row] = await db
      .insert(k)
      .values({ id: randomId(16), deviceId: id, teamId, name, prefix: key.slice(0, PREFIX_LENGTH), keyHash: await sha256Hex(key), createdBy: principalOf(c).userId, createdAt: Date.now() })
      .returning();
    audit(c, { action: 'tinypilot_key.create', targetType: 'tinypilot_key', targetId: row!.id, teamId, details: { device_id: id, name: row!.name, prefix: row!.prefix } });
    return c.json({ ...view(row!), key, base_url: tinypilotBaseUrl(c, key) }, 201);
  });

  app.openapi(listKeys, async (c) => {
    const { id } = c.req.valid('param');
    const k = schema.tinypilotKeys;
    const rows = await getDb(c.env.DB)
      .select()
      .from(k)
      .where(and(eq(k.deviceId, id), eq(k.teamId, scopedTeam(c)), isNull(k.revokedAt)))
      .orderBy(desc(k.createdAt));
    return c.json({ keys: rows.map(view) }, 200);
  });

  app.openapi(revokeKey, async (c) => {
    const { id, key_id } = c.req.valid('param');
    const db = getDb(c.env.DB);
    const k = schema.tinypilotKeys;
    // Another device's key is "not found" here, even to someone who may see that device too.
    const key = await db.query.tinypilotKeys.findFirst({ where: and(eq(k.id, key_id), eq(k.deviceId, id)) });
    if (!key) throw notFound('TinyPilot key', { id: key_id });
    if (!key.revokedAt) {
      // The tokens go in the same batch: no request between the two statements finds one alive.
      await db.batch([db.update(k).set({ revokedAt: Date.now() }).where(eq(k.id, key_id)), db.delete(schema.tinypilotTokens).where(eq(schema.tinypilotTokens.keyId, key_id))]);
      audit(c, { action: 'tinypilot_key.revoke', targetType: 'tinypilot_key', targetId: key_id, teamId: scopedTeam(c), details: { device_id: id, name: key.name, prefix: key.prefix } });
    }
    return c.body(null, 204);
  });
}

