// Keyset paging shared by every list: opaque cursors over (timestamp, id), newest first.
import { badInput } from './errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  hasNextPage: boolean;
  /** Counted only when a client asks for it. */
  totalCount: () => Promise<number>;
}

export interface PageRequest {
  first?: number | null;
  after?: string | null;
}

export interface Position {
  at: Date;
  id: string;
}

export function encodeCursor(position: Position): string {
  return Buffer.from(`${position.at.toISOString()}|${position.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): Position {
  const text = cursor.length <= 200 ? Buffer.from(cursor, 'base64url').toString() : '';
  const [iso, id] = text.split('|');
  const at = new Date(iso ?? '');
  if (!id || Number.isNaN(at.getTime()) || encodeCursor({ at, id }) !== cursor) throw badInput('after', 'Invalid cursor');
  return { at, id };
}

/** Validated page size and decoded position of a request. */
export function readPageRequest(request: PageRequest): { take: number; after: Position | undefined } {
  const first = request.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw badInput('first', `first must be between 0 and ${MAX_PAGE_SIZE}`);
  }
  return { take: first, after: request.after ? decodeCursor(request.after) : undefined };
}

/** Prisma `where` for rows strictly after a position in (at desc, id desc) order. */
export function afterPosition<F extends string>(field: F, after: Position | undefined) {
  if (!after) return {};
  return { OR: [{ [field]: { lt: after.at } }, { [field]: after.at, id: { lt: after.id } }] } as Record<string, unknown>;
}

/** Builds a page from rows fetched with `take + 1` (the extra row says whether there is more). */
export function toPage<T>(rows: T[], take: number, positionOf: (row: T) => Position, count: () => Promise<number>): Page<T> {
  const hasNextPage = rows.length > take;
  const items = hasNextPage ? rows.slice(0, take) : rows;
  let counted: Promise<number> | undefined;
  return {
    edges: items.map((node) => ({ cursor: encodeCursor(positionOf(node)), node })),
    hasNextPage,
    totalCount: () => (counted ??= count()),
  };
}
