// The heads of a stream: the OPEN (its kind's schema, assembled in messages.ts) and the ACCEPT
// that answers it, and how the mux parses both. They are the only JSON on the data path, once per
// stream, so the common well-formed cases are vetted by hand under the very rules of the schemas.
import { z } from 'zod';
import { HEAD_LIMITS, HeaderListSchema } from './http-rules.ts';
import type { StreamOpen } from './messages.ts';

/** ACCEPT payload (JSON): an HTTP response head, the WebSocket subprotocol chosen, or {} for tcp. */
export const StreamAcceptSchema = z.object({
  status: z.number().int().min(100).max(599).optional(),
  headers: HeaderListSchema.optional(),
  protocol: z.string().max(256).optional(),
});
export type StreamAccept = z.infer<typeof StreamAcceptSchema>;

/** What `accepted` resolves with: the ACCEPT, plus the whole body when it came inside it (FIN). */
export type Accepted = StreamAccept & { complete?: Uint8Array };

/** Options of an ACCEPT: the first bytes of the body ride in it, and FIN ends this direction. */
export interface AcceptOptions {
  body?: Uint8Array;
  fin?: boolean;
}

const decoder = new TextDecoder();

/**
 * A JSON payload checked against its schema. `quick`, when given, vets the common well-formed
 * case by hand under the very rules of the schema (a zod parse cost the agent about 60 µs per
 * OPEN under Bun); whatever it does not accept goes to zod, which decides. quick-parse.test.ts
 * holds each quick check to its schema on valid and mangled payloads alike.
 */
export function parseJson<T extends z.ZodType>(schema: T, payload: Uint8Array, quick?: (value: unknown) => z.infer<T> | undefined): z.infer<T> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(payload));
    const fast = quick?.(value);
    if (fast !== undefined) return fast;
    const parsed = schema.safeParse(value);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

function isHeaderList(v: unknown): v is [string, string][] {
  if (!Array.isArray(v) || v.length > HEAD_LIMITS.headers) return false;
  for (const h of v) if (!Array.isArray(h) || h.length !== 2 || !isText(h[0], HEAD_LIMITS.name) || !isText(h[1], HEAD_LIMITS.value)) return false;
  return true;
}

/** An http or tcp OPEN that StreamOpenSchema accepts, as it would return it; undefined for anything else (zod decides). */
export function quickStreamOpen(v: unknown): StreamOpen | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!isText(o.tunnel, 64)) return undefined;
  if (o.kind === 'http' && isText(o.method, 16) && isText(o.path, HEAD_LIMITS.path) && isHeaderList(o.headers)) {
    return { kind: 'http', tunnel: o.tunnel, method: o.method, path: o.path, headers: o.headers };
  }
  if (o.kind === 'tcp') return { kind: 'tcp', tunnel: o.tunnel };
  return undefined;
}

/** An ACCEPT that StreamAcceptSchema accepts, as it would return it; undefined for anything else (zod decides). */
export function quickStreamAccept(v: unknown): StreamAccept | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const out: StreamAccept = {};
  if (o.status !== undefined) {
    if (typeof o.status !== 'number' || !Number.isInteger(o.status) || o.status < 100 || o.status > 599) return undefined;
    out.status = o.status;
  }
  if (o.headers !== undefined) {
    if (!isHeaderList(o.headers)) return undefined;
    out.headers = o.headers;
  }
  if (o.protocol !== undefined) {
    if (!isText(o.protocol, 256)) return undefined;
    out.protocol = o.protocol;
  }
  return out;
}