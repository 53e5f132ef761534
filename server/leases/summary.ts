// The pool at a glance, for the overview: keys by provider and status, leases by tier, spend in
// the current UTC day and month against the summed limits, and the keys close to a limit.
// Aggregated in SQL: three small queries, however large the pool.

import { authorize } from '../auth/permissions.js';
import { type Clock, utcDate } from '../core/clock.js';
import type { Identity } from '../core/identity.js';
import { Decimal } from '../core/money.js';
import type { Db, ManagedKey } from '../db/client.js';

/** A key at or above this share of a limit is "near its limit". */
export const NEAR_LIMIT_SHARE = 0.8;
const NEAR_LIMIT_LIST = 50;

export interface PoolSummary {
  keyCounts: { provider: string; status: string; count: number }[];
  leaseCounts: { tier: string; status: string; count: number }[];
  spendTodayUsd: Decimal;
  spendThisMonthUsd: Decimal;
  /** Summed over ACTIVE keys that have the limit; null when none has. */
  dailyLimitUsd: Decimal | null;
  monthlyLimitUsd: Decimal | null;
  /** ACTIVE keys without the limit: their spend counts, but nothing caps it. */
  keysWithoutDailyLimit: number;
  keysWithoutMonthlyLimit: number;
  keysNearLimit: ManagedKey[];
  nearLimitShare: number;
}

export function createPoolSummary(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;
  return {
    async summary(actor: Identity | null): Promise<PoolSummary> {
      authorize(actor, 'poolSummary');
      const now = clock.now();
      const day = utcDate(now, 'day');
      const month = utcDate(now, 'month');
      const [keyCounts, leaseCounts, [totals], near] = await Promise.all([
        db.$queryRaw<{ provider: string; status: string; count: number }[]>`
          SELECT provider::text, status::text, count(*)::int AS count FROM "ManagedKey" GROUP BY 1, 2 ORDER BY 1, 2`,
        // Leases past their expiry have ended, whether or not the scheduler has swept them yet.
        db.$queryRaw<{ tier: string; status: string; count: number }[]>`
          SELECT tier::text, status::text, count(*)::int AS count FROM "Lease"
          WHERE status IN ('ACTIVE', 'SUSPENDED') AND "expiresAt" > ${now} GROUP BY 1, 2 ORDER BY 1, 2`,
        db.$queryRaw<
          {
            today: Decimal;
            month: Decimal;
            daily: Decimal | null;
            monthly: Decimal | null;
            noDaily: number;
            noMonthly: number;
          }[]
        >`
          SELECT coalesce(sum(mpk_window_spend("spendDay", "spendTodayUsd", ${day}::date)), 0) AS today,
                 coalesce(sum(mpk_window_spend("spendMonth", "spendThisMonthUsd", ${month}::date)), 0) AS month,
                 sum("dailyLimitUsd") FILTER (WHERE status = 'ACTIVE') AS daily,
                 sum("monthlyLimitUsd") FILTER (WHERE status = 'ACTIVE') AS monthly,
                 count(*) FILTER (WHERE status = 'ACTIVE' AND "dailyLimitUsd" IS NULL)::int AS "noDaily",
                 count(*) FILTER (WHERE status = 'ACTIVE' AND "monthlyLimitUsd" IS NULL)::int AS "noMonthly"
          FROM "ManagedKey"`,
        db.$queryRaw<{ id: string }[]>`
          SELECT id::text FROM (
            SELECT id, greatest(
              CASE WHEN "dailyLimitUsd" > 0
                THEN mpk_window_spend("spendDay", "spendTodayUsd", ${day}::date) / "dailyLimitUsd"
                ELSE 0 END,
              CASE WHEN "monthlyLimitUsd" > 0
                THEN mpk_window_spend("spendMonth", "spendThisMonthUsd", ${month}::date) / "monthlyLimitUsd"
                ELSE 0 END
            ) AS share
            FROM "ManagedKey" WHERE status = 'ACTIVE'
          ) k WHERE share >= ${NEAR_LIMIT_SHARE} ORDER BY share DESC, id LIMIT ${NEAR_LIMIT_LIST}`,
      ]);
      const keys = near.length ? await db.managedKey.findMany({ where: { id: { in: near.map((k) => k.id) } } }) : [];
      const order = new Map(near.map((k, i) => [k.id, i]));
      return {
        keyCounts,
        leaseCounts,
        spendTodayUsd: new Decimal(totals!.today),
        spendThisMonthUsd: new Decimal(totals!.month),
        dailyLimitUsd: totals!.daily === null ? null : new Decimal(totals!.daily),
        monthlyLimitUsd: totals!.monthly === null ? null : new Decimal(totals!.monthly),
        keysWithoutDailyLimit: totals!.noDaily,
        keysWithoutMonthlyLimit: totals!.noMonthly,
        keysNearLimit: keys.sort((a, b) => order.get(a.id)! - order.get(b.id)!),
        nearLimitShare: NEAR_LIMIT_SHARE,
      };
    },
  };
}
export type PoolSummaryService = ReturnType<typeof createPoolSummary>;

/**
 * ACTIVE leases by tier and key, for the metrics (mpk_leases_active). One grouped read over the
 * live leases (the partial index on ACTIVE and SUSPENDED ones), as many rows as tiers times keys.
 */
export const activeLeaseCounts = (db: Db) =>
  db.$queryRaw<{ tier: string; keyId: string; count: number }[]>`
    SELECT tier::text, "keyId"::text AS "keyId", count(*)::int AS count
    FROM "Lease" WHERE status = 'ACTIVE' GROUP BY 1, 2`;
