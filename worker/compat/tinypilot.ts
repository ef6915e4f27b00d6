// TinyPilot's REST API (tinypilot-rest-api.txt) for one device, under the base URL a TinyPilot key
// makes (worker/routes/tinypilot-keys.ts): `<relay>/tinypilot/<key>/api/v1`, so a client written
// against a real TinyPilot works with only its base URL changed:
//
//   POST /auth          → 200 {"token": "<uuid>"}; refused (403) when the request has an Origin header
//   GET  /screenshot    → 200 image/jpeg with Content-Length, or 204 and no body without a video signal
//   POST /keystroke     → 200, empty: {code, shiftLeft … metaRight} pressed, then everything released
//   POST /mouseEvent    → 200, empty: {buttons, relativeX, relativeY, verticalWheelDelta, horizontalWheelDelta}
//
// A real TinyPilot sits on its owner's LAN and hands a token to anyone who asks; here the key in
// the path is the credential, and the token is TinyPilot's CSRF guard on top. What differs, and why:
//   - tokens expire TOKEN_TTL_MS (24 h) after they are issued (a real TinyPilot's live until its
//     server restarts, which a relay never does on a schedule), die with their key, and work only
//     under the base URL of the key that issued them; a key keeps its newest MAX_TOKENS_PER_KEY;
//   - an unknown or revoked key (or one made before its device moved to another team), and any
//     path under /tinypilot/ that is not one of these four, answers 404 "Not Found": nobody can
//     tell a revoked key from one that never was;
//   - past GUESSES_PER_MINUTE failed keys or tokens a minute from one address, 429.
// The Enterprise API's source is not public, so its refusals are ours, in the shape its documented
// errors have (text/plain): a missing, malformed, expired or foreign token 401 "Not authorized"
// (TinyPilot's own word for an unauthenticated call), the Origin refusal 403. Bodies are checked as
// TinyPilot's request parsers do (app/request_parsers/keystroke.py, mouse_event.py), with their
// messages, and extra fields are ignored as they are there; a key code we have no HID usage for
// is a 400. Any failure to reach the keyboard or mouse is the 500 of the seed, with its message.
//
// The key grants this and nothing else: it is no API key (the native API refuses it), it opens
// only its own device, and nothing of the native API opens these routes.
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from '../errors.ts';
import { clientIpOf } from '../client-ip.ts';
import { sha256Hex } from '../auth/crypto.ts';
import { RateWindow } from '../tunnels/rate-window.ts';
import { callApprovedDevice } from '../devices/hub.ts';
import { screenRequest } from '../devices/kvm.ts';
import { TINYPILOT_KEY_PATTERN } from '../routes/tinypilot-keys.ts';
import { isKeyCode, MODIFIER_BITS, type ModifierCode } from '../../shared/hid/keycodes.ts';
import { TINYPILOT_BASE } from '../auth/raw-routes.ts';

/** How long a token of POST /auth works. */
export const TOKEN_TTL_MS = 24 * 60 * 60_000;
/** A key's live tokens; issuing one more retires the oldest. */
export const MAX_TOKENS_PER_KEY = 100;
/** Failed keys and tokens one address may send a minute, per isolate. */
export const GUESSES_PER_MINUTE = 30;
const guesses = new RateWindow(GUESSES_PER_MINUTE);

/** A keystroke or mouse event is a few hundred bytes; TinyPilot's parsers need nothing larger. */
const MAX_BODY_BYTES = 16 * 1024;
/** The screenshot TinyPilot's API returns: a JPEG, as TinyPilot's own. */
const SCREENSHOT = { mode: 'snapshot', format: 'jpeg', quality: 80 } as const;

/** TinyPilot's flags, in its order, and the modifier each holds down. */
const MODIFIER_FLAGS: readonly [string, ModifierCode][] = [
  ['ctrlLeft', 'ControlLeft'],
  ['ctrlRight', 'ControlRight'],
  ['shiftLeft', 'ShiftLeft'],
  ['shiftRight', 'ShiftRight'],
  ['altLeft', 'AltLeft'],
  ['altRight', 'AltRight'],
  ['metaLeft', 'MetaLeft'],
  ['metaRight', 'MetaRight'],
];
const MOUSE_FIELDS = ['buttons', 'relativeX', 'relativeY', 'verticalWheelDelta', 'horizontalWheelDelta'] as const;
/** JavaScript's MouseEvent.buttons has five buttons. */
const MAX_BUTTONS = 0x1f;

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } });
const notFound = () => text(404, 'Not Found');
const notAuthorized = () => text(401, 'Not authorized', { 'www-authenticate': 'Bearer' });

/** A refusal of the request as TinyPilot words it: 400 with its parser's message. */
class Malformed extends Error {}

/** How Python's f-strings show a value in TinyPilot's messages (near enough: JSON's spelling). */
const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? 'None');

interface KeyRow {
  id: string;
  device_id: string;
  last_used_at: number | null;
  token_expires_at: number | null;
}

/**
 * The live key the path names (its device still in the team the key was made in) and, if `token`
 * is given, whether that token is one of its own and unexpired; one D1 query. Looked up by its SHA-256, never by comparing the secret itself.
 */
async function findKey(env: Env, key: string, token = ''): Promise<KeyRow | null> {
  const [keyHash, tokenHash] = await Promise.all([sha256Hex(key), token ? sha256Hex(token) : Promise.resolve('')]);
  return env.DB.prepare(
    `SELECT k.id, k.device_id, k.last_used_at, t.expires_at AS token_expires_at FROM tinypilot_keys k
     JOIN devices d ON d.id = k.device_id AND d.team_id = k.team_id
     LEFT JOIN tinypilot_tokens t ON t.key_id = k.id AND t.token_hash = ?2
     WHERE k.key_hash = ?1 AND k.revoked_at IS NULL`,
  )
    .bind(keyHash, tokenHash)
    .first<KeyRow>();
}

/** last_used_at moves at most once a minute, after the answer, so a busy key costs no write per keystroke. */
const STALE_MS = 60_000;
function touch(c: Context<AppEnv>, key: KeyRow, now: number): void {
  if (key.last_used_at !== null && now - key.last_used_at < STALE_MS) return;
  c.executionCtx.waitUntil(c.env.DB.prepare('UPDATE tinypilot_keys SET last_used_at = ?2 WHERE id = ?1').bind(key.id, now).run());
}

type Resolved = { key: KeyRow } | { refusal: Response };

/** The path's key, and for every route but /auth a token of it; a failure counts as a guess. */
async function resolve(c: Context<AppEnv>, needsToken: boolean): Promise<Resolved> {
  const ip = clientIpOf(c.req.raw, c.env);
  const wait = guesses.exceeded(ip);
  if (wait) return { refusal: text(429, 'Too many requests', { 'retry-after': String(wait) }) };
  const refuse = (refusal: Response): Resolved => {
    guesses.hit(ip);
    return { refusal };
  };
  const path = c.req.param('key') ?? '';
  if (!TINYPILOT_KEY_PATTERN.test(path)) return refuse(notFound());
  let token = '';
  if (needsToken) {
    const m = /^Bearer ([^\s]{1,128})$/i.exec(c.req.header('authorization')?.trim() ?? '');
    // No token at all is a 401 only once the key is known to be real: otherwise the key's 404.
    token = m?.[1] ?? '';
  }
  const key = await findKey(c.env, path, token);
  if (!key) return refuse(notFound());
  if (needsToken && (key.token_expires_at === null || key.token_expires_at <= Date.now())) return refuse(notAuthorized());
  return { key };
}

/** The JSON object of a keystroke or mouse event, or the 400 TinyPilot gives for its absence. */
async function jsonBody(c: Context<AppEnv>): Promise<unknown> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new Malformed('Content-Type must be application/json');
  try {
    return JSON.parse(new TextDecoder().decode(await c.req.arrayBuffer())) as unknown;
  } catch {
    throw new Malformed('Failed to decode JSON object');
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** TinyPilot's parse_keystroke: the code and the modifier byte (every flag false unless given). */
export function parseKeystroke(body: unknown): { code: string; modifiers: number } {
  if (!isObject(body)) throw new Malformed('Keystroke parameter is invalid, expecting a dictionary data type');
  if (!Object.hasOwn(body, 'code')) throw new Malformed('Keystroke request is missing required field: code');
  let modifiers = 0;
  for (const [flag, code] of MODIFIER_FLAGS) {
    const v = Object.hasOwn(body, flag) ? body[flag] : false;
    if (typeof v !== 'boolean') throw new Malformed(`Modifier keys must be boolean values: ${shown(v)}`);
    if (v) modifiers |= MODIFIER_BITS[code];
  }
  const code = body.code;
  if (typeof code !== 'string') throw new Malformed(`Key code must be a string: ${shown(code)}`);
  if (code.length > 30) throw new Malformed(`Key code is too long: ${code}`);
  if (!isKeyCode(code)) throw new Malformed(`Unrecognized key code: ${code}`);
  return { code, modifiers };
}

/** TinyPilot's parse_mouse_event, as hid_mouse's params (the wheel in HID's sense: up is positive). */
export function parseMouseEvent(body: unknown): { buttons: number; x: number; y: number; wheel: number; hwheel: number } {
  if (!isObject(body)) throw new Malformed('Message is invalid, expecting a JSON dictionary');
  for (const field of MOUSE_FIELDS) if (!Object.hasOwn(body, field)) throw new Malformed(`Missing required field: ${field}`);
  const { buttons, relativeX, relativeY, verticalWheelDelta, horizontalWheelDelta } = body;
  if (typeof buttons !== 'number' || !Number.isInteger(buttons)) throw new Malformed(`Button state must be an integer value: ${shown(buttons)}`);
  if (buttons < 0 || buttons > MAX_BUTTONS) throw new Malformed(`Button state must be <= 0x${MAX_BUTTONS.toString(16)}: ${buttons}`);
  const position = (v: unknown): number => {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Malformed(`Relative position must be a float between 0.0 and 1.0: ${shown(v)}`);
    return v;
  };
  const wheel = (v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Malformed(`Wheel value must be a int: ${shown(v)}`);
    if (v !== -1 && v !== 0 && v !== 1) throw new Malformed(`Wheel value must be -1, 0, or 1: ${v}`);
    return v;
  };
  const x = position(relativeX);
  const y = position(relativeY);
  // JavaScript's negative delta scrolls up, HID's positive does (TinyPilot negates it too).
  const vertical = wheel(verticalWheelDelta);
  return { buttons, x, y, wheel: vertical === 0 ? 0 : -vertical, hwheel: wheel(horizontalWheelDelta) };
}

/** The seed's 500: what could not be reached and why, for a failed keystroke or mouse event. */
export function forwardFailure(what: 'keystroke' | 'mouse event', e: unknown): Response {
  const gadget = what === 'keystroke' ? '/dev/hidg0' : '/dev/hidg1';
  let why = 'internal error';
  if (e instanceof ApiError) {
    if (e.code.startsWith('HID_')) why = `could not access ${gadget} (is cable connected?)`;
    else if (e.code === 'DEVICE_OFFLINE') why = 'the device is offline';
    else if (e.code === 'DEVICE_TIMEOUT') why = 'the device did not answer in time';
    else why = e.message;
  } else console.error(`tinypilot: ${what} failed`, e);
  return text(500, `Failed to forward ${what}: ${why}`);
}

/** The hub's answer to a snapshot as TinyPilot's: the JPEG with its length, 204 as it is, else a 500 saying why. */
export async function screenshotAnswer(res: Response): Promise<Response> {
  if (res.status === 204) {
    await res.body?.cancel();
    return new Response(null, { status: 204 });
  }
  if (res.status === 200) {
    const image = await res.arrayBuffer();
    return new Response(image, { status: 200, headers: { 'content-type': res.headers.get('content-type') ?? 'image/jpeg', 'content-length': String(image.byteLength) } });
  }
  const body = (await res.json().catch(() => null)) as { error?: unknown } | null;
  const why = typeof body?.error === 'string' ? body.error : `the device answered ${res.status}`;
  return text(500, `Failed to capture screenshot: ${why}`);
}

/**
 * Every handler's last resort: TinyPilot's plain 500, logged without the path, which holds the
 * key (app.onError would log it, and answer in our JSON shape).
 */
const guarded =
  (call: string, handler: (c: Context<AppEnv>) => Promise<Response>) =>
  async (c: Context<AppEnv>): Promise<Response> => {
    try {
      return await handler(c);
    } catch (e) {
      console.error(`tinypilot ${call}: unhandled error`, e instanceof Error ? e.message : 'unknown error');
      return text(500, 'Internal Server Error');
    }
  };

const limitBody = bodyLimit({ maxSize: MAX_BODY_BYTES, onError: () => text(400, `Request body is larger than ${MAX_BODY_BYTES} bytes`) });

export function registerTinypilotRoutes(app: App) {
  app.post(`${TINYPILOT_BASE}/auth`, guarded('auth', async (c) => {
    const found = await resolve(c, false);
    if ('refusal' in found) return found.refusal;
    // TinyPilot's CSRF guard: a browser page elsewhere can make this POST, but always with an Origin.
    if (c.req.header('origin') !== undefined) return text(403, 'Requests with an Origin header may not request an API token');
    const token = crypto.randomUUID();
    const now = Date.now();
    const db = c.env.DB;
    await db.batch([
      db.prepare('DELETE FROM tinypilot_tokens WHERE key_id = ?1 AND expires_at <= ?2').bind(found.key.id, now),
      db.prepare('INSERT INTO tinypilot_tokens (token_hash, key_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)').bind(await sha256Hex(token), found.key.id, now, now + TOKEN_TTL_MS),
      db
        .prepare('DELETE FROM tinypilot_tokens WHERE key_id = ?1 AND token_hash NOT IN (SELECT token_hash FROM tinypilot_tokens WHERE key_id = ?1 ORDER BY created_at DESC, token_hash LIMIT ?2)')
        .bind(found.key.id, MAX_TOKENS_PER_KEY),
      db.prepare('UPDATE tinypilot_keys SET last_used_at = ?2 WHERE id = ?1').bind(found.key.id, now),
    ]);
    return c.json({ token }, 200);
  }));

  app.get(`${TINYPILOT_BASE}/screenshot`, guarded('screenshot', async (c) => {
    const found = await resolve(c, true);
    if ('refusal' in found) return found.refusal;
    touch(c, found.key, Date.now());
    return screenshotAnswer(await screenRequest(c.env, found.key.device_id, SCREENSHOT, c.req.raw.signal));
  }));

  app.post(`${TINYPILOT_BASE}/keystroke`, limitBody, guarded('keystroke', async (c) => {
    const found = await resolve(c, true);
    if ('refusal' in found) return found.refusal;
    let params: { code: string; modifiers: number };
    try {
      params = parseKeystroke(await jsonBody(c));
    } catch (e) {
      if (e instanceof Malformed) return text(400, e.message);
      throw e;
    }
    touch(c, found.key, Date.now());
    try {
      await callApprovedDevice(c.env, found.key.device_id, 'hid_keystroke', params);
    } catch (e) {
      return forwardFailure('keystroke', e);
    }
    return c.body(null, 200);
  }));

  app.post(`${TINYPILOT_BASE}/mouseEvent`, limitBody, guarded('mouseEvent', async (c) => {
    const found = await resolve(c, true);
    if ('refusal' in found) return found.refusal;
    let params: ReturnType<typeof parseMouseEvent>;
    try {
      params = parseMouseEvent(await jsonBody(c));
    } catch (e) {
      if (e instanceof Malformed) return text(400, e.message);
      throw e;
    }
    touch(c, found.key, Date.now());
    try {
      await callApprovedDevice(c.env, found.key.device_id, 'hid_mouse', params);
    } catch (e) {
      return forwardFailure('mouse event', e);
    }
    return c.body(null, 200);
  }));

  // Anything else under /tinypilot/ (another path, another method) is TinyPilot's "not found",
  // whatever the key: not the dashboard's page, and no hint about the key.
  app.all('/tinypilot/*', (c) => {
    guesses.hit(clientIpOf(c.req.raw, c.env));
    return notFound();
  });
}
