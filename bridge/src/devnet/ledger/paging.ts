// Horizon's collection parameters (cursor, order, limit, include_failed) and page shape
// (`_embedded.records` with `_links.self/next/prev`, which the SDK's `next()` follows).
import { problems, type Problem } from './records.js';
import type { PageQuery } from './store.js';

const MAX_I64 = (1n << 63n) - 1n;
export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 200;

export interface PageRequest extends PageQuery {
  /** The cursor as given ("now", a token, or undefined). */
  rawCursor: string | undefined;
}

/** One record of a collection with its paging token. */
export interface Entry {
  token: bigint;
  json: unknown;
}

type Query = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : Array.isArray(v) ? str(v[0]) : undefined);

/** A cursor: "now" (→ `nowToken`), a non-negative int64, or absent/empty (→ undefined). */
export function parseCursor(raw: string | undefined, nowToken: bigint): bigint | undefined | Problem {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'now') return nowToken;
  if (!/^[0-9]{1,19}$/.test(raw) || BigInt(raw) > MAX_I64) return problems.badRequest(`invalid cursor: ${raw}`, 'cursor');
  return BigInt(raw);
}

export function parsePage(query: Query, nowToken: bigint): PageRequest | Problem {
  const rawCursor = str(query.cursor);
  const cursor = parseCursor(rawCursor, nowToken);
  if (typeof cursor === 'object') return cursor;
  const order = str(query.order) ?? 'asc';
  if (order !== 'asc' && order !== 'desc') return problems.badRequest('order: expected asc or desc', 'order');
  const limitRaw = str(query.limit);
  const limit = limitRaw === undefined || limitRaw === '' ? DEFAULT_LIMIT : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    return problems.badRequest(`limit: expected an integer from 1 to ${MAX_LIMIT}`, 'limit');
  const failed = str(query.include_failed) ?? 'false';
  if (failed !== 'true' && failed !== 'false') return problems.badRequest('include_failed: expected true or false', 'include_failed');
  return { cursor, rawCursor, order, limit, includeFailed: failed === 'true' };
}

export function isProblem(v: unknown): v is Problem {
  return typeof v === 'object' && v !== null && 'type' in v && 'status' in v && 'title' in v;
}

/** `url` is the collection's absolute URL without a query. */
export function pageJson(url: string, p: PageRequest, entries: Entry[]) {
  const href = (cursor: string, order: string) =>
    `${url}?cursor=${encodeURIComponent(cursor)}&limit=${p.limit}&order=${order}${p.includeFailed ? '&include_failed=true' : ''}`;
  const first = entries[0]?.token.toString() ?? p.rawCursor ?? '';
  const last = entries.at(-1)?.token.toString() ?? p.rawCursor ?? '';
  const reverse = p.order === 'asc' ? 'desc' : 'asc';
  return {
    _links: {
      self: { href: href(p.rawCursor ?? '', p.order) },
      next: { href: href(last, p.order) },
      prev: { href: href(first, reverse) },
    },
    _embedded: { records: entries.map((e) => e.json) },
  };
}
