// The leases' data access: every statement that reads a lease for a change, changes a lease's
// status, or moves the key's and the user's active-lease counters lives here, and the lease service
// is its only caller. A change is one statement where it can be: the status change, the counters,
// the lease event and the audit entry are written together or not at all. The rules the statements
// apply (a key's room, its limits, a lease's cap) are SQL functions in prisma/sql/.
//
// Lock order, everywhere: users, then keys, then leases (each set in id order). Grants follow it
// too, so concurrent grants, ends and batch expiries queue instead of deadlocking.

import { utcDate } from '../core/clock.js';
import type { Identity } from '../core/identity.js';
import { type Db, type Lease, type ManagedKey, Prisma, type Tx } from '../db/client.js';
import type { Framework, LeaseEventType, LeaseStatus, Provider, ProviderJobKind } from '../db/enums.js';
import { sqlState } from '../db/errors.js';
import type { LeaseEventRecord } from '../events/bus.js';
import type { LeaseRefusal } from './refusals.js';

export type Actor = Pick<Identity, 'userId' | 'role'>;

/** The scheduler's identity in audit entries. */
export const SYSTEM_ACTOR: Actor = { userId: 'system:scheduler', role: 'ADMIN' };
/** The metering's identity in audit entries (a lease suspended at its cap). */
export const METERING_ACTOR: Actor = { userId: 'system:metering', role: 'ADMIN' };

const END_TYPES: Record<Exclude<LeaseStatus, 'ACTIVE'>, LeaseEventType> = {
  EXPIRED: 'EXPIRED',
  REVOKED: 'REVOKED',
  RELEASED: 'RELEASED',
  SUSPENDED: 'SUSPENDED',
};

const eventColumns = Prisma.sql`id, type::text AS type, at, "leaseId"::text AS "leaseId", "userId",
  "keyId"::text AS "keyId", "agentId", "stopAgent", details`;

/** The current UTC day and month, as the rule functions take them. */
const windows = (now: Date) => Prisma.sql`${utcDate(now, 'day')}::date, ${utcDate(now, 'month')}::date`;

export const findLease = (db: Tx | Db, id: string) => db.lease.findUnique({ where: { id } });

/** Locks a lease with its user and key, in the global lock order (user, key, lease). */
export async function lockLease(tx: Tx, id: string): Promise<Lease | null> {
  const peek = await findLease(tx, id);
  if (!peek) return null;
  await tx.$queryRaw`SELECT 1 FROM "User" WHERE id = ${peek.userId} FOR UPDATE`;
  await tx.$queryRaw`SELECT 1 FROM "ManagedKey" WHERE id = ${peek.keyId}::uuid FOR UPDATE`;
  await tx.$queryRaw`SELECT 1 FROM "Lease" WHERE id = ${id}::uuid FOR UPDATE`;
  return tx.lease.findUniqueOrThrow({ where: { id } });
}

// ---- grant -------------------------------------------------------------------------------------

export type GrantOutcome =
  | { outcome: 'GRANTED'; leaseId: string; eventId: bigint; details: Record<string, unknown> }
  | { outcome: 'EXISTING'; leaseId: string }
  | { outcome: 'OVERDUE' }
  | { outcome: 'TIER_LIMIT_REACHED'; tier: string; max: number }
  /** `mintCapacity`: a MINT key would have had room but for its cap on minted keys. */
  | { outcome: 'NO_KEY_AVAILABLE'; mintCapacity: boolean };

interface GrantRow {
  outcome: 'GRANTED' | 'EXISTING' | 'OVERDUE';
  lease_id: string | null;
  event_id: bigint | null;
  details: Record<string, unknown> | null;
}

/** SQLSTATEs `mpk_grant_lease` raises for its refusals (prisma/sql/mpk_grant_lease.sql). */
const TIER_LIMIT_REACHED = 'MK001';
const NO_KEY_AVAILABLE = 'MK002';

/**
 * The whole grant, one call to `mpk_grant_lease` (see its file for why): a new lease, the agent's
 * existing one, word that the user holds overdue leases, or a refusal.
 */
export async function grant(
  db: Db,
  input: {
    leaseId: string;
    actor: Identity;
    provider: Provider;
    framework: Framework;
    agentId: string | null;
    now: Date;
  },
): Promise<GrantOutcome> {
  const { leaseId, actor, provider, framework, agentId, now } = input;
  try {
    const [row] = await db.$queryRaw<GrantRow[]>`
      SELECT outcome, lease_id, event_id, details
      FROM mpk_grant_lease(${leaseId}::uuid, ${actor.userId}, ${actor.email ?? null}, ${actor.role}::"Role",
        ${provider}::"Provider", ${framework}::"Framework", ${agentId}, ${now}::timestamp(3), ${windows(now)})`;
    if (!row) throw new Error('mpk_grant_lease returned no row');
    if (row.outcome === 'GRANTED')
      return { outcome: 'GRANTED', leaseId: row.lease_id!, eventId: row.event_id!, details: row.details! };
    if (row.outcome === 'EXISTING') return { outcome: 'EXISTING', leaseId: row.lease_id! };
    return { outcome: 'OVERDUE' };
  } catch (error) {
    const state = sqlState(error);
    if (state?.code === TIER_LIMIT_REACHED) {
      const [tier = '', max = '0'] = (state.detail ?? '').split(':');
      return { outcome: 'TIER_LIMIT_REACHED', tier, max: Number(max) };
    }
    if (state?.code === NO_KEY_AVAILABLE)
      return { outcome: 'NO_KEY_AVAILABLE', mintCapacity: state.detail === 'MINT_CAPACITY' };
    throw error;
  }
}

// ---- ends --------------------------------------------------------------------------------------

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
 * slot on the key and the user. A lease with a minted key queues its provider job in the same
 * statement: DISABLE when suspended, DELETE when ended. Returns the event rows written, in cursor order.
 */
export async function endLeases(tx: Tx, options: EndLeasesOptions): Promise<LeaseEventRecord[]> {
  // Choose the batch first, then lock exactly its users and keys, in the global order.
  const batch = await tx.$queryRaw<ChosenLease[]>`
    SELECT ${chosenColumns} FROM "Lease" l WHERE ${matching(options)}
    ORDER BY l."expiresAt", l.id LIMIT ${options.limit ?? 1000}`;
  return endChosen(tx, batch, options);
}

/** A lease chosen to end, with the user and key whose rows its end changes (neither ever changes). */
interface ChosenLease {
  id: string;
  userId: string;
  keyId: string;
}
/** A ChosenLease's columns, of `"Lease" l`. */
const chosenColumns = Prisma.sql`l.id::text AS id, l."userId", l."keyId"::text AS "keyId"`;

/** The leases `options` end: those matching its `where` whose status is in its `from`. */
const matching = (options: EndLeasesOptions) => Prisma.sql`${options.where} AND ${statusIn(options.from)}`;

/** Ends the `chosen` leases (those of them still matching `options`), as `endLeases` does. */
async function endChosen(tx: Tx, chosen: ChosenLease[], options: EndLeasesOptions): Promise<LeaseEventRecord[]> {
  const { to, reason, actor, now } = options;
  if (chosen.length === 0) return [];
  const ids = chosen.map((l) => l.id);
  const match = matching(options);
  // The users' and keys' ids come with the batch: looking them up again by the leases' ids (a
  // thousand primary-key reads each) was a fifth of an expiry batch's time.
  await tx.$queryRaw`
    SELECT 1 FROM "User" WHERE id = ANY(${[...new Set(chosen.map((l) => l.userId))]}::text[])
    ORDER BY id FOR UPDATE`;
  await tx.$queryRaw`
    SELECT 1 FROM "ManagedKey" WHERE id = ANY(${[...new Set(chosen.map((l) => l.keyId))]}::uuid[])
    ORDER BY id FOR UPDATE`;
  return tx.$queryRaw<LeaseEventRecord[]>`
    WITH target AS (
      -- Re-checked under the row lock: a lease another transaction ended meanwhile drops out. The
      -- locked leases' old statuses come out as one object, lease id -> status, for the UPDATE.
      SELECT coalesce(jsonb_object_agg(locked.id::text, locked.status), '{}') AS statuses
      FROM (SELECT l.id, l.status FROM "Lease" l WHERE l.id = ANY(${ids}::uuid[]) AND ${match} FOR UPDATE) locked
    ), ended AS (
      -- No join to \`target\`: the UPDATE reads the chosen ids on the primary key and finds each old
      -- status in the object, so its plan does not hang on how many rows the planner guesses
      -- \`target\` holds. Joined, it hash-joined a scan of the whole table at 10k leases and, given
      -- the ids too, nest-looped at 10M, sorting the 1,000 ids again for each lease (30 ms a batch).
      UPDATE "Lease" l
      SET status = ${to}::"LeaseStatus", "endedAt" = ${now}, "endReason" = ${reason}, "updatedAt" = ${now}
      WHERE l.id = ANY(${ids}::uuid[]) AND (SELECT statuses FROM target) ? l.id::text
      RETURNING l.id, l."userId", l."keyId", l."agentId", (SELECT statuses FROM target) ->> l.id::text AS "oldStatus",
                l."expiresAt"
    ), freed AS (
      SELECT "keyId", "userId" FROM ended WHERE "oldStatus" = 'ACTIVE'
    ), keys AS (
      UPDATE "ManagedKey" k SET "activeLeaseCount" = k."activeLeaseCount" - f.n
      FROM (SELECT "keyId", count(*)::int AS n FROM freed GROUP BY 1) f WHERE k.id = f."keyId"
    ), users AS (
      UPDATE "User" u SET "activeLeaseCount" = u."activeLeaseCount" - f.n
      FROM (SELECT "userId", count(*)::int AS n FROM freed GROUP BY 1) f WHERE u.id = f."userId"
    ), audited AS (
      SELECT mpk_audit_each(
               ${now}, ${actor.userId}, ${actor.role}::"Role", ${`lease.${to.toLowerCase()}`}, 'Lease',
               array_agg(id::text ORDER BY "expiresAt", id),
               array_agg(jsonb_build_object('reason', ${reason}::text, 'from', "oldStatus", 'keyId', "keyId",
                                            'userId', "userId") ORDER BY "expiresAt", id)
             ) AS id
      FROM ended HAVING count(*) > 0
    ), queued AS (
      -- Only leases with a minted key call the function: a call per row is what an expiry batch of
      -- leases on SHARED keys (most of them) would otherwise pay for nothing.
      SELECT mpk_provider_job(id, ${to === 'SUSPENDED' ? 'DISABLE' : 'DELETE'}::"ProviderJobKind", ${now}) AS id
      FROM (SELECT e.id FROM ended e WHERE EXISTS (SELECT 1 FROM "MintedKey" m WHERE m."leaseId" = e.id) ORDER BY e.id) minted
    ), events AS (
      INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
      SELECT ${END_TYPES[to]}::"LeaseEventType", ${now}, id, "userId", "keyId", "agentId", true,
             jsonb_build_object('reason', ${reason}::text, 'from', "oldStatus", 'expiresAt', "expiresAt")
      FROM (SELECT * FROM ended ORDER BY "expiresAt", id) ordered
      RETURNING *
    )
    -- A SELECT in a WITH runs only if it is read: the audit entries and provider jobs are counted so
    -- that they are written. The counts sit in the WHERE, as one-time subqueries: joined in the FROM,
    -- the planner recounted them for every event row (a million rows read for a batch of 1,000).
    SELECT ${eventColumns} FROM events
    WHERE (SELECT count(*) FROM audited) >= 0 AND (SELECT count(*) FROM queued) >= 0
    ORDER BY id`;
}

/**
 * Expires leases due at `now` (all, or those matching `where`), up to `limit`: ACTIVE ones, and
 * SUSPENDED ones too — a suspended lease can be brought back only before its expiry, so once due
 * it has ended, and it should not read as suspended (restorable) for ever.
 */
export function expireDue(tx: Tx, now: Date, options: { where?: Prisma.Sql } = {}) {
  return endLeases(tx, expiring(now, options.where));
}

/** How due leases end: EXPIRED by the scheduler, those due at `now` (and matching `where`). */
const expiring = (now: Date, where?: Prisma.Sql): EndLeasesOptions => ({
  where: where ? Prisma.sql`l."expiresAt" <= ${now} AND ${where}` : Prisma.sql`l."expiresAt" <= ${now}`,
  from: EXPIRING,
  to: 'EXPIRED',
  reason: 'expired',
  actor: SYSTEM_ACTOR,
  now,
});

export interface ExpiryBatch {
  events: LeaseEventRecord[];
  /** More leases are due than this batch took. */
  more: boolean;
  /** When the next lease falls due after this batch (null: no live lease left). */
  next: Date | null;
}

/**
 * The expiry job's batch: up to `limit` leases due at `now`, expired as `expireDue` does. The
 * statement that chooses the batch (one due lease past it, if any) also reads the first live lease
 * not yet due: whether more are due, or when the next one is, is known without a further statement
 * (which, after the batch, would first step over the index entries the batch has just left dead).
 */
export async function expireDueBatch(tx: Tx, now: Date, limit: number): Promise<ExpiryBatch> {
  const live = await tx.$queryRaw<(ChosenLease & { expiresAt: Date })[]>`
    (SELECT ${chosenColumns}, l."expiresAt" FROM "Lease" l
     WHERE ${statusIn(EXPIRING)} AND l."expiresAt" <= ${now} ORDER BY l."expiresAt", l.id LIMIT ${limit + 1})
    UNION ALL
    (SELECT ${chosenColumns}, l."expiresAt" FROM "Lease" l
     WHERE ${statusIn(EXPIRING)} AND l."expiresAt" > ${now} ORDER BY l."expiresAt", l.id LIMIT 1)`;
  const due = live.filter((l) => l.expiresAt <= now);
  const events = await endChosen(tx, due.slice(0, limit), expiring(now));
  const more = due.length > limit;
  return { events, more, next: more ? now : (live.find((l) => l.expiresAt > now)?.expiresAt ?? null) };
}

/** The statuses a lease expires from. */
const EXPIRING: LeaseStatus[] = ['ACTIVE', 'SUSPENDED'];

/**
 * `l.status IN (...)` with the statuses written as enum literals, not a bound array: the planner
 * can then prove that ACTIVE and SUSPENDED rows are the live index's rows (its predicate) and use it.
 */
function statusIn(statuses: readonly LeaseStatus[]): Prisma.Sql {
  if (!statuses.length || statuses.some((s) => !/^[A-Z]+$/.test(s))) throw new Error(`bad statuses ${statuses}`);
  return Prisma.raw(`l.status IN (${statuses.map((s) => `'${s}'::"LeaseStatus"`).join(', ')})`);
}

/** When the next lease falls due, if any does (the expiry job arms its timer for it). */
export async function nextExpiry(db: Db): Promise<Date | null> {
  const [next] = await db.$queryRaw<
    { at: Date | null }[]
  >`SELECT min(l."expiresAt") AS at FROM "Lease" l WHERE ${statusIn(EXPIRING)}`;
  return next?.at ?? null;
}

/** Suspends those of the leases that have spent their cap; returns the events. */
export function suspendOverCap(tx: Tx, leaseIds: string[], now: Date) {
  return endLeases(tx, {
    where: Prisma.sql`l.id = ANY(${leaseIds}::uuid[]) AND mpk_lease_over_cap(l)`,
    from: ['ACTIVE'],
    to: 'SUSPENDED',
    reason: 'spend cap reached',
    actor: METERING_ACTOR,
    now,
  });
}

// ---- back to ACTIVE, extend, cap ----------------------------------------------------------------

/**
 * Makes an ended lease ACTIVE again inside the caller's transaction (which holds the user, key
 * and lease locks), if its user's tier and its key still have room: which of the two refused, or
 * null when it is back. A minted key follows: a suspended lease's key is enabled again; an expired
 * lease's key was (or is queued to be) deleted, so a new one is minted and counted.
 */
export async function bringBack(
  tx: Tx,
  lease: Lease,
  now: Date,
  data: { expiresAt?: Date } = {},
): Promise<'TIER' | 'KEY' | null> {
  const minted = await tx.mintedKey.findUnique({ where: { leaseId: lease.id }, select: { id: true } });
  const remint = minted !== null && lease.status !== 'SUSPENDED';
  // A suspended lease keeps its minted key, which the key's count already holds: the room it needs
  // is the room it would have without it.
  const held = minted !== null && !remint ? 1 : 0;
  const [room] = await tx.$queryRaw<{ tier: boolean; key: boolean }[]>`
    SELECT mpk_user_has_room(${lease.userId}) AS tier,
           mpk_key_has_room(jsonb_populate_record(k, jsonb_build_object('mintedKeyCount', k."mintedKeyCount" - ${held}::int)),
                            ${windows(now)}) AS key
    FROM "ManagedKey" k
    WHERE k.id = ${lease.keyId}::uuid`;
  if (!room?.tier) return 'TIER';
  if (!room.key) return 'KEY';
  await tx.lease.update({
    where: { id: lease.id },
    data: { status: 'ACTIVE', endedAt: null, endReason: null, ...data },
  });
  await tx.$executeRaw`
    UPDATE "ManagedKey" SET "activeLeaseCount" = "activeLeaseCount" + 1,
      "mintedKeyCount" = "mintedKeyCount" + ${remint ? 1 : 0}
    WHERE id = ${lease.keyId}::uuid`;
  await tx.$executeRaw`UPDATE "User" SET "activeLeaseCount" = "activeLeaseCount" + 1 WHERE id = ${lease.userId}`;
  if (minted) {
    await mintedKeyFollows(tx, lease.id, now);
    await queueProviderJob(tx, lease.id, remint ? 'CREATE' : 'ENABLE', now);
  }
  return null;
}

/** Queues a provider job on the lease's minted key, if it has one (mpk_provider_job). */
async function queueProviderJob(tx: Tx, leaseId: string, kind: ProviderJobKind, now: Date) {
  await tx.$queryRaw`SELECT mpk_provider_job(${leaseId}::uuid, ${kind}::"ProviderJobKind", ${now}::timestamp(3))`;
}

/**
 * The lease's minted key (if any) takes the lease's expiry and the limit mpk_minted_limit gives now:
 * what its next provider job will set.
 */
async function mintedKeyFollows(tx: Tx, leaseId: string, now: Date) {
  await tx.$executeRaw`
    UPDATE "MintedKey" m SET "expiresAt" = l."expiresAt", "limitUsd" = mpk_minted_limit(l, k, ${windows(now)}),
      "updatedAt" = ${now}
    FROM "Lease" l JOIN "ManagedKey" k ON k.id = l."keyId"
    WHERE l.id = ${leaseId}::uuid AND m."leaseId" = l.id`;
}

/** Moves an ACTIVE lease's expiry; its minted key's expiry follows (a SET_EXPIRY job). */
export async function setExpiry(tx: Tx, id: string, expiresAt: Date, now: Date) {
  await tx.lease.update({ where: { id }, data: { expiresAt } });
  await mintedKeyFollows(tx, id, now);
  await queueProviderJob(tx, id, 'SET_EXPIRY', now);
}

/**
 * Sets the cap and says whether the lease has spent it (the rule is `mpk_lease_over_cap`). A minted
 * key's provider-side limit follows (a SET_LIMIT job, queued before any DISABLE or ENABLE the new
 * cap brings about).
 */
export async function setCap(tx: Tx, id: string, cap: Prisma.Decimal, now: Date): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ over: boolean }[]>`
    UPDATE "Lease" l SET "spendCapUsd" = ${cap}, "updatedAt" = ${now}
    WHERE l.id = ${id}::uuid
    RETURNING mpk_lease_over_cap(l) AS over`;
  await mintedKeyFollows(tx, id, now);
  await queueProviderJob(tx, id, 'SET_LIMIT', now);
  return row?.over ?? false;
}

/** Writes one event (and its audit entry) for a change that is not an end: GRANTED, EXTENDED. */
export async function recordLeaseEvent(
  tx: Tx,
  /** `action` null: the caller has audited the change itself. */
  event: {
    type: LeaseEventType;
    leaseId: string;
    now: Date;
    actor: Actor;
    action: string | null;
    details: Record<string, unknown>;
  },
): Promise<LeaseEventRecord> {
  const details = JSON.stringify(event.details);
  const [row] = await tx.$queryRaw<LeaseEventRecord[]>`
    WITH lease AS (SELECT id, "userId", "keyId", "agentId" FROM "Lease" WHERE id = ${event.leaseId}::uuid),
    audited AS (
      SELECT mpk_audit(${event.now}, ${event.actor.userId}, ${event.actor.role}::"Role", ${event.action}, 'Lease',
                       id::text, ${details}::jsonb) AS id
      FROM lease WHERE ${event.action}::text IS NOT NULL
    ), events AS (
      INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
      SELECT ${event.type}::"LeaseEventType", ${event.now}, id, "userId", "keyId", "agentId", false, ${details}::jsonb
      FROM lease
      RETURNING *
    )
    -- A SELECT in a WITH runs only if it is read: the audit entry is counted so that it is written.
    SELECT ${eventColumns} FROM events, (SELECT count(*) FROM audited) written`;
  return row!;
}

// ---- resolution ---------------------------------------------------------------------------------

export type ResolvedRow = Lease & { refusal: LeaseRefusal | null; key: ManagedKey };

/**
 * A worker's resolution of a lease (by `match` on `"Lease" l`): the lease with its key and why it
 * may not be used (mpk_lease_refusal); when nothing stands in the way, the lease's and the key's
 * lastUsedAt are stamped and the resolution audited, in the same statement.
 */
export async function resolveRow(
  db: Db,
  match: Prisma.Sql,
  now: Date,
  worker: Actor,
): Promise<ResolvedRow | undefined> {
  const [row] = await db.$queryRaw<ResolvedRow[]>`
    WITH pick AS (
      -- The ACTIVE lease if there is one, else the newest: each branch is one step down an index
      -- (the live leases' (userId, agentId) and (userId, agentId, grantedAt) for an agent), however long
      -- the agent's history.
      SELECT id FROM (
        (SELECT l.id, 0 AS rank FROM "Lease" l WHERE ${match} AND l.status = 'ACTIVE'
         ORDER BY l."grantedAt" DESC LIMIT 1)
        UNION ALL
        (SELECT l.id, 1 AS rank FROM "Lease" l WHERE ${match} ORDER BY l."grantedAt" DESC LIMIT 1)
      ) c ORDER BY rank LIMIT 1
    ), cur AS (
      SELECT l.*, row_to_json(k.*)::jsonb AS key,
             mpk_lease_refusal(l, k, ${now}, ${windows(now)}) AS refusal
      FROM pick JOIN "Lease" l ON l.id = pick.id JOIN "ManagedKey" k ON k.id = l."keyId"
    ), ok AS (SELECT id, "keyId" FROM cur WHERE refusal IS NULL),
    stamp_lease AS (UPDATE "Lease" SET "lastUsedAt" = ${now} FROM ok WHERE "Lease".id = ok.id),
    stamp_key AS (UPDATE "ManagedKey" SET "lastUsedAt" = ${now} FROM ok WHERE "ManagedKey".id = ok."keyId"),
    audited AS (
      SELECT mpk_audit(${now}, ${worker.userId}, ${worker.role}::"Role", 'lease.resolve', 'Lease', id::text,
                       jsonb_build_object('keyId', "keyId")) AS id
      FROM ok
    )
    -- A SELECT in a WITH runs only if it is read: the audit entry is counted so that it is written.
    SELECT cur.* FROM cur, (SELECT count(*) FROM audited) written`;
  return row;
}
