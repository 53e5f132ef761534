// Reading the durable lease event log in an order that never skips an event.
//
// Serial ids are handed out when rows are inserted, not when transactions commit, so "id > n"
// could miss a row whose transaction commits after a later one. Instead the order is
// (txId, id), and a reader takes only rows of transactions older than the oldest transaction
// still running in this database (horizonOf): every row it will ever see later sorts after them.
import { badInput, MpkError } from '../core/errors.js';
import { type Db, Prisma } from '../db/client.js';
import type { LeaseEventRecord } from './bus.js';

export interface EventCursor {
  txId: bigint;
  id: bigint;
}

export type LoggedEvent = LeaseEventRecord & EventCursor;

export const START: EventCursor = { txId: 0n, id: 0n };

export const compareCursors = (a: EventCursor, b: EventCursor) =>
  a.txId === b.txId ? (a.id === b.id ? 0 : a.id < b.id ? -1 : 1) : a.txId < b.txId ? -1 : 1;

export const encodeEventCursor = (c: EventCursor) => Buffer.from(`${c.txId}.${c.id}`).toString('base64url');

export function decodeEventCursor(cursor: string): EventCursor {
  const match =
    cursor.length <= 64 ? /^(\d{1,19})\.(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString()) : null;
  if (!match) throw badInput('after', 'Invalid event cursor');
  const decoded = { txId: BigInt(match[1]!), id: BigInt(match[2]!) };
  if (encodeEventCursor(decoded) !== cursor) throw badInput('after', 'Invalid event cursor');
  return decoded;
}

/**
 * The newest cursor that retention has dropped (HistoryHorizon, kept by server/db/partitions.ts),
 * or null while none has been. Events at or before it may be gone.
 */
export async function droppedHorizon(db: Db): Promise<EventCursor | null> {
  const [row] = await db.$queryRaw<{ txId: bigint | null; eventId: bigint | null }[]>`
    SELECT "txId", "eventId" FROM "HistoryHorizon" WHERE "table" = 'LeaseEvent'`;
  return row?.txId != null && row.eventId != null ? { txId: row.txId, id: row.eventId } : null;
}

/**
 * Refuses a cursor at or before the dropped horizon: the events after it are no longer all in the
 * log, and a replay from it would skip some without a word. The subscriber starts again from a
 * fresh snapshot instead.
 */
export async function assertCursorKept(db: Db, cursor: EventCursor): Promise<void> {
  const horizon = await droppedHorizon(db);
  if (horizon && compareCursors(cursor, horizon) <= 0)
    throw new MpkError(
      'CURSOR_EXPIRED',
      'The events after this cursor are past retention and were dropped: read the leases again (a fresh ' +
        'snapshot), then subscribe to leaseEvents without `after`',
      { field: 'after' },
    );
}

/**
 * The safe horizon of a snapshot: the oldest transaction that may still commit events here. The
 * snapshot's xmin would do, but it is the oldest transaction on the whole PostgreSQL server: a bulk
 * load in another database held every reader back until it ended. So it is the oldest of the
 * snapshot's running transactions (`xip`) not known to belong to another database, else the
 * snapshot's `xmax` (the newest finished one's successor: transactions from there on are unknown).
 * A running transaction is set aside only on evidence: its backend, connected to another database
 * for life, shows its id in pg_stat_activity (ids match on their low 32 bits, unique among running
 * transactions; any role sees other sessions' datid and backend_xid). The activity may be read
 * after the snapshot: a transaction that ended meanwhile is then not found, and holds back, as
 * does a prepared one. Reading the activity costs about 0.5 ms, so readEvents asks for it only
 * when the snapshot's xmin holds some of its rows back (headCursor, once per start, always).
 */
const horizonOf = (snapshot: Prisma.Sql) => Prisma.sql`(
  SELECT coalesce(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) x
     WHERE x::text::bigint % 4294967296 NOT IN (
       SELECT a.backend_xid::text::bigint FROM pg_stat_get_activity(NULL) a
       WHERE a.backend_xid IS NOT NULL
         AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
    pg_snapshot_xmax(s.snap)::text::bigint)
  FROM (SELECT ${snapshot} AS snap) s)`;

export interface LogPage {
  events: LoggedEvent[];
  /** Committed events exist past the page that an older, still running transaction holds back. */
  heldBack: boolean;
}

/** Which events a reader wants: one user's, one key's, some types only (null: any). */
export interface EventFilter {
  userId?: string | null;
  keyId?: string | null;
  types?: readonly string[] | null;
}

/**
 * The filter as SQL conditions on `"LeaseEvent" e`, written only for what is set: a user or a key
 * then leads the condition, and its (userId, txId, id) or (keyId, txId, id) index serves the read.
 */
function eventConditions(filter: EventFilter): Prisma.Sql[] {
  const conditions: Prisma.Sql[] = [];
  if (filter.userId != null) conditions.push(Prisma.sql`e."userId" = ${filter.userId}`);
  if (filter.keyId != null) conditions.push(Prisma.sql`e."keyId" = ${filter.keyId}::uuid`);
  if (filter.types) conditions.push(Prisma.sql`e.type::text = ANY(${filter.types}::text[])`);
  return conditions;
}

/**
 * Runs a read of one user's or key's events so that it merges, never sorts. Their events come from
 * each month partition's (userId|keyId, txId, id) index, merged in cursor order (a Merge Append,
 * either direction), which stops after the page. On its estimates the planner may instead take every
 * partition's rows for that user and sort them: cheaper only while the user has as few events as
 * its statistics say. One with far more (a burst since the last ANALYZE, a heavy user the statistics
 * do not name) then paid for all of them to read one page (2,348 rows for 500 in bench/README.md's
 * kept 10M database). So no sort for this one statement, in a transaction of its own.
 */
async function mergedInCursorOrder<T>(db: Db, filter: EventFilter, read: Prisma.PrismaPromise<T>): Promise<T> {
  if (filter.userId == null && filter.keyId == null) return read;
  const [, rows] = await db.$transaction([db.$executeRaw`SET LOCAL enable_sort = off`, read]);
  return rows;
}

/** Events after `after` (matching `filter`, if given), in cursor order, up to the safe horizon. */
export async function readEvents(
  db: Db,
  after: EventCursor,
  limit: number,
  filter: EventFilter = {},
): Promise<LogPage> {
  const where = Prisma.join(
    [Prisma.sql`(e."txId", e.id) > (${after.txId}, ${after.id})`, ...eventConditions(filter)],
    ' AND ',
  );
  const read = db.$queryRaw<(LoggedEvent & { snapshot: string })[]>`
    SELECT e.id, e."txId", e.type::text AS type, e.at, e."leaseId"::text AS "leaseId", e."userId",
           e."keyId"::text AS "keyId", e."agentId", e."stopAgent", e.details,
           (SELECT pg_current_snapshot())::text AS snapshot
    FROM "LeaseEvent" e
    WHERE ${where}
    ORDER BY e."txId", e.id
    LIMIT ${limit}`;
  const rows = await mergedInCursorOrder(db, filter, read);
  if (!rows.length) return { events: [], heldBack: false };
  // The snapshot as text is `xmin:xmax:running,...`; its xmin holds nothing back most of the time.
  const { snapshot } = rows[0]!;
  let horizon = BigInt(snapshot.slice(0, snapshot.indexOf(':')));
  if (rows.at(-1)!.txId >= horizon) {
    const [row] = await db.$queryRaw<{ horizon: bigint }[]>`
      SELECT ${horizonOf(Prisma.sql`${snapshot}::pg_snapshot`)} AS horizon`;
    horizon = row!.horizon;
  }
  const events: LoggedEvent[] = [];
  for (const { snapshot: _s, ...row } of rows) {
    if (row.txId >= horizon) return { events, heldBack: true };
    events.push(row);
  }
  return { events, heldBack: false };
}

/** The position of the newest event a reader may take now: where a live-only reader starts. */
export async function headCursor(db: Db): Promise<EventCursor> {
  const [row] = await db.$queryRaw<EventCursor[]>`
    SELECT "txId", id FROM "LeaseEvent"
    WHERE "txId" < ${horizonOf(Prisma.sql`pg_current_snapshot()`)}
    ORDER BY "txId" DESC, id DESC LIMIT 1`;
  return row ?? START;
}

/**
 * The newest events of each lease (up to `limit` each, newest first), optionally of some types
 * only: one query for any number of leases.
 */
export async function readLeaseHistories(
  db: Db,
  leaseIds: readonly string[],
  options: { limit: number; types: readonly string[] | null },
): Promise<Map<string, LoggedEvent[]>> {
  const rows = await db.$queryRaw<LoggedEvent[]>`
    SELECT e.id, e."txId", e.type::text AS type, e.at, e."leaseId"::text AS "leaseId", e."userId",
           e."keyId"::text AS "keyId", e."agentId", e."stopAgent", e.details
    FROM unnest(${[...leaseIds]}::uuid[]) AS l(id)
    CROSS JOIN LATERAL (
      SELECT * FROM "LeaseEvent" e
      WHERE e."leaseId" = l.id AND (${options.types}::text[] IS NULL OR e.type::text = ANY(${options.types}::text[]))
      ORDER BY e."txId" DESC, e.id DESC LIMIT ${options.limit}
    ) e`;
  const byLease = new Map<string, LoggedEvent[]>(leaseIds.map((id) => [id, []]));
  for (const row of rows) byLease.get(row.leaseId)?.push(row);
  return byLease;
}

/** The newest committed events, newest first, optionally for one user or key and of some types. */
export async function readRecentEvents(
  db: Db,
  options: { limit: number; userId: string | null; keyId: string | null; types: readonly string[] | null },
): Promise<LoggedEvent[]> {
  const conditions = eventConditions(options);
  const where = conditions.length ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty;
  const read = db.$queryRaw<LoggedEvent[]>`
    SELECT e.id, e."txId", e.type::text AS type, e.at, e."leaseId"::text AS "leaseId", e."userId",
           e."keyId"::text AS "keyId", e."agentId", e."stopAgent", e.details
    FROM "LeaseEvent" e
    ${where}
    ORDER BY e."txId" DESC, e.id DESC
    LIMIT ${options.limit}`;
  return mergedInCursorOrder(db, options, read);
}
