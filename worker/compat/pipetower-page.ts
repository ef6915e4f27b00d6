// Pipetower's pagination, for every one of its list routes (these and the ones later issues add):
// `limit` 1–100 (default 15) and `page` ≥ 1 in the query string, answered as
// {data: [...], meta: {current_page, from, last_page, per_page, to, total}} like Laravel's
// LengthAwarePaginator. Bad values are Laravel's 422; a page past the end is an empty `data` with
// the true meta, so a client walking pages stops at last_page. The page is cut in SQL (LIMIT and
// OFFSET, with a COUNT beside it in the same D1 batch): one round trip, however long the list.
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { PipetowerMeta } from '../../shared/api/pipetower.ts';
import { invalid, type FieldErrors } from './pipetower-errors.ts';

const DEFAULT_LIMIT = 15;
const MAX_LIMIT = 100;

export interface PageRequest {
  page: number;
  limit: number;
}

/**
 * A query parameter under Laravel's `integer` rule and then `between:min,max` (or `min:min`);
 * absent or empty is `fallback`. The first failure is recorded in `errors`, in Laravel's words.
 */
function integerParam(c: Context<AppEnv>, name: string, fallback: number, min: number, max: number | null, errors: FieldErrors): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return fallback;
  const n = /^[+-]?\d+$/.test(raw) ? Number(raw) : NaN;
  // PHP refuses an integer it cannot hold; so do we, rather than page with a rounded number.
  if (!Number.isSafeInteger(n)) errors[name] = [`The ${name} field must be an integer.`];
  else if (max !== null && (n < min || n > max)) errors[name] = [`The ${name} field must be between ${min} and ${max}.`];
  else if (n < min) errors[name] = [`The ${name} field must be at least ${min}.`];
  return n;
}

/** The page asked for, or a 422 in Pipetower's form naming every bad parameter. */
export function pageRequest(c: Context<AppEnv>): PageRequest {
  const errors: FieldErrors = {};
  const limit = integerParam(c, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT, errors);
  const page = integerParam(c, 'page', 1, 1, null, errors);
  if (Object.keys(errors).length) throw invalid(errors);
  return { page, limit };
}

export interface PageQuery {
  /** One row, `{total}`: how many items the whole list has. */
  count: D1PreparedStatement;
  /** The items of one page, in a stable order. */
  rows(limit: number, offset: number): D1PreparedStatement;
}

export interface Paginated<T> {
  data: T[];
  meta: PipetowerMeta;
}

function pageMeta(req: PageRequest, total: number, count: number): PipetowerMeta {
  const offset = (req.page - 1) * req.limit;
  return {
    current_page: req.page,
    from: count ? offset + 1 : null,
    last_page: Math.max(1, Math.ceil(total / req.limit)),
    per_page: req.limit,
    to: count ? offset + count : null,
    total,
  };
}

/** Runs the count and the page in one batch and presents each row. */
export async function listPage<Row, T>(db: D1Database, req: PageRequest, query: PageQuery, present: (row: Row) => T): Promise<Paginated<T>> {
  // A page far past the end still asks SQLite for an offset it can bind; nothing is there.
  const offset = Math.min((req.page - 1) * req.limit, Number.MAX_SAFE_INTEGER);
  const [counted, rows] = await db.batch<Record<string, unknown>>([query.count, query.rows(req.limit, offset)]);
  const total = Number((counted!.results[0] as { total: number } | undefined)?.total ?? 0);
  const data = (rows!.results as Row[]).map(present);
  return { data, meta: pageMeta(req, total, data.length) };
}

/** A page of a list already in memory (a server's metrics: a few dozen rows built from its latest sample). */
export function arrayPage<T>(req: PageRequest, items: readonly T[]): Paginated<T> {
  const offset = Math.min((req.page - 1) * req.limit, items.length);
  const data = items.slice(offset, offset + req.limit);
  return { data, meta: pageMeta(req, items.length, data.length) };
}
