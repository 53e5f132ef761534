// Keyset paging shared by every list: opaque cursors over (timestamp, id), newest first, forward
// (`first`/`after`) or backward (`last`/`before`) as Relay connections page.
import { badInput } from './errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  /** Asked of the database only when a client selects it. */
  hasNextPage: () => Promise<boolean>;
  hasPreviousPage: () => Promise<boolean>;
  /** Counted only when a client asks for it, and never a whole growing table: see `Total`. */
  totalCount: () => Promise<Total>;
}

/**
 * How many rows a list has. Exact up to COUNT_CAP; past it, an estimate: the planner's row
 * count for the table when the list is unfiltered, else COUNT_CAP itself as a lower bound.
 */
export interface Total {
  count: number;
  estimate: boolean;
}

/** Lists are counted exactly up to this many rows (a bounded index read), and estimated past it. */
export const COUNT_CAP = 10_000;

export interface PageRequest {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface Position {
  at: Date;
  id: string;
}

export function encodeCursor(position: Position): string {
  return Buffer.from(`${position.at.toISOString()}|${position.id}`).toString('base64url');
}

export function decodeCursor(cursor: string, field = 'after'): Position {
  const text = cursor.length <= 200 ? Buffer.from(cursor, 'base64url').toString() : '';
  const [iso, id] = text.split('|');
  const at = new Date(iso ?? '');
  if (!id || Number.isNaN(at.getTime()) || encodeCursor({ at, id }) !== cursor) throw badInput(field, 'Invalid cursor');
  return { at, id };
}

export interface PageWindow {
  take: number;
  /** Where the page starts (exclusive): the `after` cursor, or the `before` one going backward. */
  from: Position | undefined;
  backward: boolean;
}

function pageSize(value: number | null | undefined, field: 'first' | 'last'): number {
  const size = value ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 0 || size > MAX_PAGE_SIZE)
    throw badInput(field, `${field} must be between 0 and ${MAX_PAGE_SIZE}`);
  return size;
}

/** Validated page size, direction and decoded position of a request. */
export function readPageRequest(request: PageRequest): PageWindow {
  if (request.first != null && request.last != null) throw badInput('last', 'Give first or last, not both');
  if (request.after && request.before) throw badInput('before', 'Give after or before, not both');
  const backward = request.last != null || Boolean(request.before);
  if (backward) {
    if (request.first != null) throw badInput('first', 'first pages forward: use last with before');
    return {
      take: pageSize(request.last, 'last'),
      from: request.before ? decodeCursor(request.before, 'before') : undefined,
      backward,
    };
  }
  return {
    take: pageSize(request.first, 'first'),
    from: request.after ? decodeCursor(request.after) : undefined,
    backward,
  };
}

/** Which way from a position: `older` is the list's own order (newest first), `newer` against it. */
export type Side = 'older' | 'newer';

/** How one list's rows are ordered and cut at a position, as clauses of its query builder. */
export interface Keyset<Where, OrderBy> {
  past(position: Position, side: Side, inclusive: boolean): Where;
  orderBy(side: Side): OrderBy;
}

/** (timestamp column, id) ordering, newest first, as Prisma clauses. */
export function timeKeyset<Id = string>(
  field: string,
  parseId: (id: string) => Id = (id) => id as unknown as Id,
): Keyset<Record<string, unknown>, Record<string, 'asc' | 'desc'>[]> {
  return {
    past(position, side, inclusive) {
      const beyond = side === 'older' ? 'lt' : 'gt';
      const idOp = inclusive ? `${beyond}e` : beyond;
      return {
        OR: [{ [field]: { [beyond]: position.at } }, { [field]: position.at, id: { [idOp]: parseId(position.id) } }],
      };
    },
    orderBy: (side) => {
      const direction = side === 'older' ? 'desc' : 'asc';
      return [{ [field]: direction }, { id: direction }];
    },
  };
}

/** Serial-id ordering, newest first (the cursor's time is informational only). */
export function serialKeyset(): Keyset<Record<string, unknown>, Record<string, 'asc' | 'desc'>> {
  return {
    past(position, side, inclusive) {
      const op = `${side === 'older' ? 'lt' : 'gt'}${inclusive ? 'e' : ''}`;
      return { id: { [op]: BigInt(position.id) } };
    },
    orderBy: (side) => ({ id: side === 'older' ? 'desc' : 'asc' }),
  };
}

interface PageSource<T, Where, OrderBy> {
  keyset: Keyset<Where, OrderBy>;
  positionOf(row: T): Position;
  /** Rows matching the list's filter and `cursor`, in `orderBy` order, at most `take`. */
  fetch(cursor: { where: Where | undefined; orderBy: OrderBy }, take: number): Promise<T[]>;
  count(): Promise<Total>;
}

/**
 * One page of a list. The extra row fetched says whether there is more in the paging direction;
 * whether there is anything on the other side of the cursor is asked only if a client wants it.
 */
async function pageOf<T, W, O>(request: PageRequest, source: PageSource<T, W, O>): Promise<Page<T>> {
  const { take, from, backward } = readPageRequest(request);
  const side: Side = backward ? 'newer' : 'older';
  const rows = await source.fetch(
    { where: from && source.keyset.past(from, side, false), orderBy: source.keyset.orderBy(side) },
    take + 1,
  );
  const more = rows.length > take;
  const items = rows.slice(0, take);
  if (backward) items.reverse();
  // Rows at or beyond the cursor on its other side: the cursor's own row counts.
  const behind = (position: Position | undefined, towards: Side) =>
    once(async () =>
      position
        ? (
            await source.fetch(
              { where: source.keyset.past(position, towards, true), orderBy: source.keyset.orderBy(towards) },
              1,
            )
          ).length > 0
        : false,
    );
  return {
    edges: items.map((node) => ({ cursor: encodeCursor(source.positionOf(node)), node })),
    hasNextPage: backward ? behind(from, 'older') : async () => more,
    hasPreviousPage: backward ? async () => more : behind(from, 'newer'),
    totalCount: once(source.count),
  };
}

/** A page of nothing: for filters that cannot match (a malformed id, another user's rows). */
export function emptyPage<T>(request: PageRequest): Page<T> {
  readPageRequest(request);
  return {
    edges: [],
    hasNextPage: async () => false,
    hasPreviousPage: async () => false,
    totalCount: async () => ({ count: 0, estimate: false }),
  };
}

function once<T>(work: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= work());
}

/** The two reads of a Prisma model that paging needs (a model delegate such as `db.lease` is one). */
export interface ModelReads<T, W> {
  findMany(args: { where: { AND: NonNullable<W>[] }; orderBy: never; take: number }): Promise<T[]>;
  count(args: { where: W; take: number }): Promise<number>;
}

/** A page of a model's rows that match `where`, in `keyset` order. */
export function pageOfModel<T, W>(
  request: PageRequest,
  list: {
    model: ModelReads<T, W>;
    where: NoInfer<NonNullable<W>>;
    keyset: Keyset<unknown, unknown>;
    positionOf(row: T): Position;
    /** The planner's row count for the whole table (see server/db/estimate.ts), for unfiltered lists. */
    estimateAll?: () => Promise<number>;
  },
): Promise<Page<T>> {
  const { model, where } = list;
  return pageOf(request, {
    keyset: list.keyset,
    positionOf: list.positionOf,
    // The keyset's clauses are written for the same model, so they are `W` too.
    fetch: (cursor, take) =>
      model.findMany({
        where: { AND: [where, (cursor.where ?? {}) as NonNullable<W>] },
        orderBy: cursor.orderBy as never,
        take,
      }),
    count: async () => {
      // Prisma leaves out a filter whose value is undefined: none defined means the whole table.
      const unfiltered = Object.values(where as object).every((value) => value === undefined);
      if (unfiltered && list.estimateAll) {
        const rows = await list.estimateAll();
        if (rows > COUNT_CAP) return { count: rows, estimate: true };
      }
      // Counts at most COUNT_CAP + 1 rows (a LIMIT inside the count), however many match.
      const count = await model.count({ where, take: COUNT_CAP + 1 });
      return count > COUNT_CAP ? { count: COUNT_CAP, estimate: true } : { count, estimate: false };
    },
  });
}
