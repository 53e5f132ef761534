// Reading the spend ledger: usage records page by page, spend series aggregated in SQL, and each
// user's spend in the current UTC month. Read-only; the ledger is written by service.ts.

import { authorize } from '../auth/permissions.js';
import { type Clock, utcDate } from '../core/clock.js';
import { badInput, MpkError, notFound } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { isUuid } from '../core/ids.js';
import { Decimal } from '../core/money.js';
import { emptyPage, type PageRequest, pageOfModel, timeKeyset } from '../core/paging.js';
import { type Db, Prisma, type UsageRecord } from '../db/client.js';
import type { Provider } from '../db/enums.js';
import { estimatedRows } from '../db/estimate.js';

export const MAX_SERIES_DAYS = 90;

export interface UsageRecordFilter extends PageRequest {
  leaseId?: string | null;
  keyId?: string | null;
}

export interface SpendSeriesRequest {
  keyId?: string | null;
  provider?: Provider | null;
  days?: number | null;
  groupBy?: 'DAY' | 'MODEL' | null;
}

export interface SpendPoint {
  /** The UTC day ('2026-11-26') for DAY points; null for MODEL points. */
  day: string | null;
  /** The model for MODEL points (null: requests that named none); null for DAY points. */
  model: string | null;
  costUsd: Decimal;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

interface SeriesRow {
  day: string | null;
  model: string | null;
  cost: Decimal | null;
  requests: bigint | number;
  prompt: bigint | number | null;
  completion: bigint | number | null;
}

const toPoint = (row: SeriesRow): SpendPoint => ({
  day: row.day,
  model: row.model,
  costUsd: new Decimal(row.cost ?? 0),
  requests: Number(row.requests),
  promptTokens: Number(row.prompt ?? 0),
  completionTokens: Number(row.completion ?? 0),
});

export function createUsageHistory(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;

  return {
    /**
     * A lease's or a key's metered requests, newest first, for whoever may read leases. Users may
     * page their own leases' records only; another user's lease does not exist as far as they can tell.
     */
    async records(actor: Identity | null, filter: UsageRecordFilter) {
      const caller = authorize(actor, 'usageRecords');
      const { leaseId, keyId } = filter;
      if (!leaseId && !keyId) throw badInput('leaseId', 'Give leaseId or keyId');
      if (caller.role === 'USER') {
        if (keyId) throw new MpkError('FORBIDDEN', 'Users can only read the usage of their own leases');
        const lease = isUuid(leaseId!)
          ? await db.lease.findUnique({ where: { id: leaseId! }, select: { userId: true } })
          : null;
        if (!lease || lease.userId !== caller.userId) throw notFound('Lease');
      }
      if ((leaseId && !isUuid(leaseId)) || (keyId && !isUuid(keyId))) return emptyPage<UsageRecord>(filter);
      const where: Prisma.UsageRecordWhereInput = { ...(leaseId ? { leaseId } : {}), ...(keyId ? { keyId } : {}) };
      return pageOfModel(filter, {
        model: db.usageRecord,
        estimateAll: () => estimatedRows(db, 'UsageRecord'),
        where,
        keyset: timeKeyset('at', BigInt),
        positionOf: (r: UsageRecord) => ({ at: r.at, id: r.id.toString() }),
      });
    },

    /**
     * Spend over the last `days` UTC days (today included) for a key, a provider or the whole
     * pool: one point per day (days without spend included, as zeros), or one per model.
     */
    async spendSeries(actor: Identity | null, request: SpendSeriesRequest): Promise<SpendPoint[]> {
      authorize(actor, 'spendSeries');
      const days = request.days ?? 30;
      if (!Number.isInteger(days) || days < 1 || days > MAX_SERIES_DAYS)
        throw badInput('days', `days must be a whole number from 1 to ${MAX_SERIES_DAYS}`);
      if (request.keyId && !isUuid(request.keyId)) throw badInput('keyId', 'keyId is not a key id');
      const today = utcDate(clock.now(), 'day');
      // The daily rollup (one row per key, model and UTC day), never the ledger's rows.
      const conditions = [Prisma.sql`d.day >= ${today}::date - ${days - 1}::int`, Prisma.sql`d.day <= ${today}::date`];
      if (request.keyId) conditions.push(Prisma.sql`d."keyId" = ${request.keyId}::uuid`);
      if (request.provider)
        conditions.push(
          Prisma.sql`d."keyId" IN (SELECT id FROM "ManagedKey" WHERE provider = ${request.provider}::"Provider")`,
        );
      const where = Prisma.join(conditions, ' AND ');
      const sums = Prisma.sql`sum(d."costUsd") AS cost, sum(d.requests) AS requests,
        sum(d."promptTokens") AS prompt, sum(d."completionTokens") AS completion`;
      if (request.groupBy === 'MODEL') {
        const rows = await db.$queryRaw<SeriesRow[]>`
          SELECT NULL AS day, nullif(d.model, '') AS model, ${sums} FROM "UsageDaily" d WHERE ${where}
          GROUP BY d.model ORDER BY cost DESC, nullif(d.model, '') NULLS LAST`;
        return rows.map(toPoint);
      }
      const rows = await db.$queryRaw<SeriesRow[]>`
        WITH spent AS (SELECT d.day, ${sums} FROM "UsageDaily" d WHERE ${where} GROUP BY 1)
        SELECT to_char(g.day, 'YYYY-MM-DD') AS day, NULL AS model,
               s.cost, coalesce(s.requests, 0) AS requests, s.prompt, s.completion
        FROM generate_series(${today}::date - ${days - 1}::int, ${today}::date, interval '1 day') AS g(day)
        LEFT JOIN spent s ON s.day = g.day::date
        ORDER BY g.day`;
      return rows.map(toPoint);
    },

    /** Each user's metered spend in the current UTC month, in the order of `userIds` (one query). */
    async spendThisMonthByUser(userIds: readonly string[]): Promise<Decimal[]> {
      const month = utcDate(clock.now(), 'month');
      // The per-lease daily rollup, never the ledger's rows.
      const rows = await db.$queryRaw<{ userId: string; total: Decimal }[]>`
        SELECT d."userId", sum(d."costUsd") AS total
        FROM "UsageLeaseDaily" d
        WHERE d."userId" = ANY(${[...userIds]}::text[]) AND d.day >= ${month}::date
        GROUP BY d."userId"`;
      const byUser = new Map(rows.map((r) => [r.userId, new Decimal(r.total)]));
      return userIds.map((id) => byUser.get(id) ?? new Decimal(0));
    },
  };
}
export type UsageHistory = ReturnType<typeof createUsageHistory>;
