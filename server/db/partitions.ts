// The history tables (LeaseEvent, AuditEntry, UsageRecord) are partitioned by RANGE on "at", one
// partition per UTC month ("UsageRecord_2026_11"), plus a DEFAULT partition each that takes any
// row whose month has no partition yet, so no write ever fails on a missing month. The scheduler's
// partition job keeps them: at its start and then hourly it makes the partitions of the clock's
// month and the next two (mpk_month_partition moves any rows the DEFAULT partition holds for such a
// month into it), then drops, whole, every month partition that ended more than the table's
// retention ago, and deletes the DEFAULT partition's rows as old. The spend rollups (UsageDaily,
// UsageLeaseDaily) are never touched: spend series and totals outlive the ledger's rows.
//
// Dropping lease events moves the event log's horizon: the greatest cursor (txId, id) dropped is
// kept in HistoryHorizon, in the transaction that drops, so that a subscriber resuming at or before
// it is told CURSOR_EXPIRED (server/events/log.ts) instead of silently missing events.
import type { HistoryRetention } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { periodicJob } from '../core/periodic.js';
import type { Db, Tx } from './client.js';

export const HISTORY_TABLES = ['LeaseEvent', 'AuditEntry', 'UsageRecord'] as const;
export type HistoryTable = (typeof HISTORY_TABLES)[number];

/** Partitions are made for the clock's month and this many after it. */
export const MONTHS_AHEAD = 2;
const DAY_MS = 86_400_000;
/**
 * Creating or dropping a partition waits this long at most for its locks, then tries at the next
 * run: while it waits, every query of that table queues behind it, so the wait is kept short (a
 * month is made two months ahead, so an hourly retry has time to spare).
 */
const LOCK_TIMEOUT = '1s';

const retentionDays = (retention: HistoryRetention): Record<HistoryTable, number> => ({
  LeaseEvent: retention.eventsDays,
  AuditEntry: retention.auditDays,
  UsageRecord: retention.usageDays,
});

export interface MonthPartition {
  table: HistoryTable;
  name: string;
  /** The range's bounds: rows with from <= at < to (UTC). */
  from: Date;
  to: Date;
}

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The range partitions of a history table, oldest first (the DEFAULT partition is not one). */
export async function monthPartitions(db: Db | Tx, table: HistoryTable): Promise<MonthPartition[]> {
  const rows = await db.$queryRaw<{ name: string; bound: string }[]>`
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass(${quoted(table)})`;
  const partitions: MonthPartition[] = [];
  for (const { name, bound } of rows) {
    const range = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(bound);
    if (!range) continue;
    partitions.push({ table, name, from: new Date(`${range[1]}Z`), to: new Date(`${range[2]}Z`) });
  }
  return partitions.sort((a, b) => a.from.getTime() - b.from.getTime());
}

/** The first instant of the UTC month `months` after the one holding `at`. */
const monthStart = (at: Date, months = 0) => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + months, 1));

export interface CreatedPartition {
  name: string;
  /** Rows moved into it from the DEFAULT partition. */
  moved: number;
}

/** A table left for the next run: its locks were not granted in time, or the step failed. */
export interface PartitionFailure {
  table: HistoryTable;
  step: 'create' | 'drop';
  error: string;
}

const failure = (table: HistoryTable, step: PartitionFailure['step'], error: unknown): PartitionFailure => ({
  table,
  step,
  error: error instanceof Error ? error.message : String(error),
});

/**
 * Makes the partitions of `now`'s month and the next MONTHS_AHEAD of each history table. A table
 * that fails is left for the next run; the others go on.
 */
export async function createPartitionsAhead(
  db: Db,
  now: Date,
): Promise<{ created: CreatedPartition[]; failed: PartitionFailure[] }> {
  const created: CreatedPartition[] = [];
  const failed: PartitionFailure[] = [];
  for (const table of HISTORY_TABLES)
    try {
      for (let ahead = 0; ahead <= MONTHS_AHEAD; ahead++) {
        const month = monthStart(now, ahead);
        const made = await db.$transaction(async (tx) => {
          await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
          const [row] = await tx.$queryRaw<{ moved: bigint | null }[]>`
            SELECT mpk_month_partition(${table}, ${month}::date) AS moved`;
          if (row?.moved == null) return null;
          // Its name as the catalog has it (mpk_month_partition names it).
          const partition = (await monthPartitions(tx, table)).find((p) => p.from.getTime() === month.getTime());
          return { name: partition?.name ?? table, moved: Number(row.moved) };
        });
        if (made) created.push(made);
      }
    } catch (error) {
      failed.push(failure(table, 'create', error));
    }
  return { created, failed };
}

export interface DroppedHistory {
  table: HistoryTable;
  /** Month partitions dropped whole. */
  partitions: string[];
  /** Rows as old deleted from the DEFAULT partition. */
  defaultRows: number;
}

interface Cursor {
  txId: bigint;
  id: bigint;
}

/**
 * Drops what `table` keeps no longer at `now`: month partitions that ended before now − retention,
 * and the DEFAULT partition's rows older than that. One transaction per table; for the event log,
 * the greatest cursor dropped is recorded in HistoryHorizon in it.
 */
async function dropExpired(db: Db, table: HistoryTable, before: Date): Promise<DroppedHistory> {
  return db.$transaction(
    async (tx) => {
      await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      const expired = (await monthPartitions(tx, table)).filter((p) => p.to.getTime() <= before.getTime());
      const cursors: Cursor[] = [];
      if (table === 'LeaseEvent')
        for (const p of expired)
          cursors.push(
            ...(await tx.$queryRawUnsafe<Cursor[]>(
              `SELECT "txId", id FROM ${quoted(p.name)} ORDER BY "txId" DESC, id DESC LIMIT 1`,
            )),
          );
      for (const p of expired) await tx.$executeRawUnsafe(`DROP TABLE ${quoted(p.name)}`);
      let defaultRows: number;
      if (table === 'LeaseEvent') {
        const [newest] = await tx.$queryRaw<(Cursor & { deleted: bigint })[]>`
          WITH d AS (DELETE FROM "LeaseEvent_default" WHERE at < ${before}::timestamp(3) RETURNING "txId", id)
          SELECT "txId", id, count(*) OVER () AS deleted FROM d ORDER BY "txId" DESC, id DESC LIMIT 1`;
        if (newest) cursors.push(newest);
        defaultRows = Number(newest?.deleted ?? 0);
      } else {
        defaultRows = await tx.$executeRawUnsafe(
          `DELETE FROM ${quoted(`${table}_default`)} WHERE at < $1::timestamp(3)`,
          before,
        );
      }
      if (expired.length || defaultRows) {
        const newest = cursors.reduce<Cursor | null>(
          (max, c) => (!max || c.txId > max.txId || (c.txId === max.txId && c.id > max.id) ? c : max),
          null,
        );
        // Only ever forward: the time everything before which may be gone, and the newest cursor dropped.
        await tx.$executeRaw`
          INSERT INTO "HistoryHorizon" AS h ("table", before, "txId", "eventId", "updatedAt")
          VALUES (${table}, ${before}::timestamp(3), ${newest?.txId ?? null}::bigint, ${newest?.id ?? null}::bigint, now())
          ON CONFLICT ("table") DO UPDATE SET
            before = greatest(h.before, excluded.before),
            "txId" = CASE WHEN h."txId" IS NULL OR (excluded."txId", excluded."eventId") > (h."txId", h."eventId")
                          THEN coalesce(excluded."txId", h."txId") ELSE h."txId" END,
            "eventId" = CASE WHEN h."txId" IS NULL OR (excluded."txId", excluded."eventId") > (h."txId", h."eventId")
                             THEN coalesce(excluded."eventId", h."eventId") ELSE h."eventId" END,
            "updatedAt" = now()`;
      }
      return { table, partitions: expired.map((p) => p.name), defaultRows };
    },
    { timeout: 60_000 },
  );
}

/**
 * Drops, in every history table, what its retention no longer keeps at `now`. A table that fails
 * (its locks not granted in time) is left for the next run; the others go on.
 */
export async function dropExpiredHistory(
  db: Db,
  now: Date,
  retention: HistoryRetention,
): Promise<{ dropped: DroppedHistory[]; failed: PartitionFailure[] }> {
  const days = retentionDays(retention);
  const dropped: DroppedHistory[] = [];
  const failed: PartitionFailure[] = [];
  for (const table of HISTORY_TABLES)
    try {
      dropped.push(await dropExpired(db, table, new Date(now.getTime() - days[table] * DAY_MS)));
    } catch (error) {
      failed.push(failure(table, 'drop', error));
    }
  return { dropped, failed };
}

export interface PartitionRun {
  created: CreatedPartition[];
  /** Per table that dropped anything: its month partitions and DEFAULT rows. */
  dropped: DroppedHistory[];
  failed: PartitionFailure[];
}

/**
 * The scheduler's partition job: partitions made ahead and history dropped past retention at
 * start, then every `intervalMs` (an hour), on the injected clock.
 */
export function createPartitionJob(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  retention: HistoryRetention;
  intervalMs?: number;
}) {
  const { db, clock, logger, retention } = deps;
  async function run(): Promise<PartitionRun> {
    const now = clock.now();
    const ahead = await createPartitionsAhead(db, now);
    const expired = await dropExpiredHistory(db, now, retention);
    const created = ahead.created;
    const dropped = expired.dropped.filter((d) => d.partitions.length || d.defaultRows);
    const failed = [...ahead.failed, ...expired.failed];
    if (failed.length) logger.warn({ failed }, 'history partitions: tables left for the next run');
    const summary = {
      created: created.map((c) => c.name),
      movedFromDefault: created.reduce((n, c) => n + c.moved, 0),
      dropped: dropped.flatMap((d) => d.partitions),
      deletedFromDefault: Object.fromEntries(dropped.map((d) => [d.table, d.defaultRows])),
    };
    if (created.length || dropped.length)
      logger.info(summary, 'history partitions: created ahead, dropped past retention');
    else logger.debug(summary, 'history partitions: nothing to create or drop');
    return { created, dropped, failed };
  }

  return periodicJob({
    name: 'history-partitions',
    intervalMs: deps.intervalMs ?? 3_600_000,
    logger,
    failure: 'history partition run failed',
    atStart: true,
    run,
  });
}
export type PartitionJob = ReturnType<typeof createPartitionJob>;
