// Lease state changes as single SQL statements: the status change, the exact counters on the key
// and the user, the lease event and the audit entry are written together or not at all.
//
// Lock order, everywhere: users, then keys, then leases (each set in id order). Grants follow it
// too, so concurrent grants, ends and batch expiries queue instead of deadlocking.
import { utcDate } from '../core/clock.js';
import { Prisma, type Tx } from '../db/client.js';
import type { LeaseEventRecord, LeaseEventType } from '../events/bus.js';

export type LeaseStatus = 'ACTIVE' | 'EXPIRED' | 'REVOKED' | 'RELEASED' | 'SUSPENDED';

export interface Actor {
  userId: string;
  role: 'ADMIN' | 'USER' | 'WORKER' | 'OBSERVER';
}

/** The scheduler's identity in audit entries. */
export const SYSTEM_ACTOR: Actor = { userId: 'system:scheduler', role: 'ADMIN' };

const END_TYPES: Record<Exclude<LeaseStatus, 'ACTIVE'>, LeaseEventType> = {
  EXPIRED: 'EXPIRED',
  REVOKED: 'REVOKED',
  RELEASED: 'RELEASED',
  SUSPENDED: 'SUSPENDED',
};

const eventColumns = Prisma.sql`id, type::text AS type, at, "leaseId"::text AS "leaseId", "userId", "keyId"::text AS "keyId", "agentId", "stopAgent", details`;

export interface EndLeasesOptions {
  /** A condition on `"Lease" l`. */
  where: Prisma.Sql;
  from: LeaseStatus[];
  to: Exclude<LeaseStatus, 'ACTIVE'>;
  reason: string;
  actor: Actor;
  now: Date;
  limit?: number;
}

/**
 * Ends every lease matching `where` whose status is in `from`. A lease that was ACTIVE frees its
 * slot on the key and the user. Returns the event rows written, in cursor order.
 */
export async function endLeases(tx: Tx, options: EndLeasesOptions): Promise<LeaseEventRecord[]> {
  const { where, from, to, reason, actor, now } = options;
  const limit = options.limit ?? 1000;
  const match = Prisma.sql`${where} AND l.status::text IN (${Prisma.join(from)})`;
  // Choose the batch first, then lock exactly its users and keys, in the global order.
  const batch = await tx.$queryRaw<{ id: string }[]>`
    SELECT l.id::text AS id FROM "Lease" l WHERE ${match} ORDER BY l."expiresAt", l.id LIMIT ${limit}`;
  if (batch.length === 0) return [];
  const ids = batch.map((b) => b.id);
  await tx.$queryRaw`SELECT 1 FROM "User" WHERE id IN (SELECT "userId" FROM "Lease" WHERE id = ANY(${ids}::uuid[])) ORDER BY id FOR UPDATE`;
  await tx.$queryRaw`SELECT 1 FROM "ManagedKey" WHERE id IN (SELECT "keyId" FROM "Lease" WHERE id = ANY(${ids}::uuid[])) ORDER BY id FOR UPDATE`;
  return tx.$queryRaw<LeaseEventRecord[]>`
    WITH target AS (
      -- Re-checked under the row lock: a lease another transaction ended meanwhile drops out.
      SELECT l.id, l.status AS "oldStatus" FROM "Lease" l WHERE l.id = ANY(${ids}::uuid[]) AND ${match} FOR UPDATE
    ), ended AS (
      UPDATE "Lease" l SET status = ${to}::"LeaseStatus", "endedAt" = ${now}, "endReason" = ${reason}, "updatedAt" = ${now}
      FROM target t WHERE l.id = t.id
      RETURNING l.id, l."userId", l."keyId", l."agentId", t."oldStatus"::text AS "oldStatus", l."expiresAt"
    ), freed AS (
      SELECT "keyId", "userId" FROM ended WHERE "oldStatus" = 'ACTIVE'
    ), keys AS (
      UPDATE "ManagedKey" k SET "activeLeaseCount" = k."activeLeaseCount" - f.n
      FROM (SELECT "keyId", count(*)::int AS n FROM freed GROUP BY 1) f WHERE k.id = f."keyId"
    ), users AS (
      UPDATE "User" u SET "activeLeaseCount" = u."activeLeaseCount" - f.n
      FROM (SELECT "userId", count(*)::int AS n FROM freed GROUP BY 1) f WHERE u.id = f."userId"
    ), audit AS (
      INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
      SELECT ${now}, ${actor.userId}, ${actor.role}::"Role", ${`lease.${to.toLowerCase()}`}, 'Lease', id::text,
             jsonb_build_object('reason', ${reason}::text, 'from', "oldStatus", 'keyId', "keyId", 'userId', "userId")
      FROM ended
    ), events AS (
      INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
      SELECT ${END_TYPES[to]}::"LeaseEventType", ${now}, id, "userId", "keyId", "agentId", true,
             jsonb_build_object('reason', ${reason}::text, 'from', "oldStatus", 'expiresAt', "expiresAt")
      FROM (SELECT * FROM ended ORDER BY "expiresAt", id) ordered
      RETURNING *
    )
    SELECT ${eventColumns} FROM events ORDER BY id`;
}

/**
 * Expires leases due at `now` (all, or those matching `where`), up to `limit`: ACTIVE ones, and
 * SUSPENDED ones too — a suspended lease can be brought back only before its expiry, so once due
 * it has ended, and it should not read as suspended (restorable) for ever.
 */
export function expireDue(tx: Tx, now: Date, options: { where?: Prisma.Sql; limit?: number } = {}) {
  const where = options.where ? Prisma.sql`l."expiresAt" <= ${now} AND ${options.where}` : Prisma.sql`l."expiresAt" <= ${now}`;
  return endLeases(tx, { where, from: ['ACTIVE', 'SUSPENDED'], to: 'EXPIRED', reason: 'expired', actor: SYSTEM_ACTOR, now, limit: options.limit });
}

/** Writes one event (and its audit entry) for a change that is not an end: GRANTED, EXTENDED. */
export async function recordLeaseEvent(
  tx: Tx,
  /** `action` null: the caller has audited the change itself. */
  event: { type: LeaseEventType; leaseId: string; now: Date; actor: Actor; action: string | null; details: Record<string, unknown> },
): Promise<LeaseEventRecord> {
  const details = JSON.stringify(event.details);
  const [row] = await tx.$queryRaw<LeaseEventRecord[]>`
    WITH lease AS (SELECT id, "userId", "keyId", "agentId" FROM "Lease" WHERE id = ${event.leaseId}::uuid),
    audit AS (
      INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
      SELECT ${event.now}, ${event.actor.userId}, ${event.actor.role}::"Role", ${event.action}, 'Lease', id::text, ${details}::jsonb FROM lease
      WHERE ${event.action}::text IS NOT NULL
    ), events AS (
      INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
      SELECT ${event.type}::"LeaseEventType", ${event.now}, id, "userId", "keyId", "agentId", false, ${details}::jsonb FROM lease
      RETURNING *
    )
    SELECT ${eventColumns} FROM events`;
  return row!;
}

/** SQL condition: the key can take one more lease now (active, under its cap and its spend limits). */
export function keyHasRoom(now: Date, alias = Prisma.raw('k')) {
  const day = utcDate(now, 'day');
  const month = utcDate(now, 'month');
  return Prisma.sql`${alias}.status = 'ACTIVE'
    AND (${alias}."maxActiveLeases" IS NULL OR ${alias}."activeLeaseCount" < ${alias}."maxActiveLeases")
    AND ${keyUnderLimits(day, month, alias)}`;
}

/** SQL condition: the key's spend in the current UTC day and month is under its limits. */
export function keyUnderLimits(day: string, month: string, alias = Prisma.raw('k')) {
  return Prisma.sql`(${alias}."dailyLimitUsd" IS NULL OR ${alias}."spendDay" IS DISTINCT FROM ${day}::date OR ${alias}."spendTodayUsd" < ${alias}."dailyLimitUsd")
    AND (${alias}."monthlyLimitUsd" IS NULL OR ${alias}."spendMonth" IS DISTINCT FROM ${month}::date OR ${alias}."spendThisMonthUsd" < ${alias}."monthlyLimitUsd")`;
}

