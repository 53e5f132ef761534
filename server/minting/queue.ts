// The provider job queue's data access: claiming, finishing and failing jobs, and the minted-key
// rows and counters their outcomes change. Jobs are written by the lease changes that call for them
// (mpk_provider_job, in the lease's own transaction); everything after that happens here.
//
// Lock order, as in leases/store.ts: keys before minted keys; a job's row is locked by its claim.
import type { Db, MintedKey, Tx } from '../db/client.js';
import type { MintedKeyStatus, ProviderJobKind } from '../db/enums.js';

export interface ClaimedJob {
  id: bigint;
  kind: ProviderJobKind;
  mintedKeyId: string;
  leaseId: string;
  mintingKeyId: string;
  /** This run included. */
  attempts: number;
}

/**
 * Claims up to `limit` due jobs: PENDING ones, and RUNNING ones whose runner did not finish in time
 * (it died), each the oldest unfinished job of its minted key (a key's jobs run in order; an
 * IRRECOVERABLE one holds the rest back until it is retried). SKIP LOCKED: two claimers never take
 * the same job and never wait on each other.
 */
export function claim(db: Db, now: Date, claimMs: number, limit: number): Promise<ClaimedJob[]> {
  const until = new Date(now.getTime() + claimMs);
  return db.$queryRaw<ClaimedJob[]>`
    WITH due AS (
      SELECT j.id FROM "ProviderJob" j
      WHERE j.status IN ('PENDING'::"ProviderJobStatus", 'RUNNING'::"ProviderJobStatus") AND j."runAfter" <= ${now}
        AND (j.status = 'PENDING' OR j."claimedUntil" <= ${now})
        AND NOT EXISTS (
          SELECT 1 FROM "ProviderJob" e WHERE e."mintedKeyId" = j."mintedKeyId" AND e.id < j.id AND e.status <> 'DONE')
      ORDER BY j."runAfter", j.id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE "ProviderJob" j
    SET status = 'RUNNING', attempts = j.attempts + 1, "claimedUntil" = ${until}, "updatedAt" = ${now}
    FROM due WHERE j.id = due.id
    RETURNING j.id, j.kind::text AS kind, j."mintedKeyId"::text AS "mintedKeyId", j."leaseId"::text AS "leaseId",
              j."mintingKeyId"::text AS "mintingKeyId", j.attempts`;
}

/** When the next job falls due, if any is waiting (the runner arms its timer for it). */
export async function nextDue(db: Db): Promise<Date | null> {
  const [row] = await db.$queryRaw<{ at: Date | null }[]>`
    SELECT min(coalesce(greatest(j."runAfter", j."claimedUntil"), j."runAfter")) AS at FROM "ProviderJob" j
    WHERE j.status IN ('PENDING'::"ProviderJobStatus", 'RUNNING'::"ProviderJobStatus")`;
  return row?.at ?? null;
}

/** What a job works on: its minted key, its minting key and its lease's spend. */
export async function contextOf(db: Db, job: ClaimedJob) {
  const [row] = await db.$queryRaw<
    {
      provider: 'OPENROUTER' | 'VENICE' | 'OPENAI_COMPATIBLE';
      baseUrl: string;
      secretCiphertext: string;
      leaseUsageUsd: string;
      deleteQueued: boolean;
    }[]
  >`
    SELECT k.provider::text AS provider, k."baseUrl", k."secretCiphertext", l."usageUsd"::text AS "leaseUsageUsd",
           EXISTS (SELECT 1 FROM "ProviderJob" d WHERE d."mintedKeyId" = ${job.mintedKeyId}::uuid AND d.id > ${job.id}
                     AND d.kind = 'DELETE' AND d.status <> 'DONE'
                     AND NOT EXISTS (SELECT 1 FROM "ProviderJob" c WHERE c."mintedKeyId" = d."mintedKeyId"
                                       AND c.id > d.id AND c.kind = 'CREATE')) AS "deleteQueued"
    FROM "ManagedKey" k, "Lease" l WHERE k.id = ${job.mintingKeyId}::uuid AND l.id = ${job.leaseId}::uuid`;
  const minted = await db.mintedKey.findUniqueOrThrow({ where: { id: job.mintedKeyId } });
  return { ...row!, minted };
}

/** Creations recorded on the minting key in the 60 s before `now`, and when the oldest of them was. */
export async function creationsInLastMinute(db: Db, mintingKeyId: string, now: Date) {
  const [row] = await db.$queryRaw<{ n: number; oldest: Date | null }[]>`
    SELECT count(*)::int AS n, min("providerCreatedAt") AS oldest FROM "MintedKey"
    WHERE "mintingKeyId" = ${mintingKeyId}::uuid AND "providerCreatedAt" > ${new Date(now.getTime() - 60_000)}`;
  return row!;
}

/** The job is ours still (not re-claimed after its claim ran out): the guard of every outcome. */
const ours = (job: ClaimedJob) => ({ id: job.id, status: 'RUNNING' as const, attempts: job.attempts });

/** The job is done; `changes` to its minted key are written with it. */
export async function done(tx: Tx, job: ClaimedJob, now: Date, changes: Partial<MintedKey> = {}): Promise<boolean> {
  const { count } = await tx.providerJob.updateMany({
    where: ours(job),
    data: { status: 'DONE', claimedUntil: null, lastError: null, updatedAt: now },
  });
  if (count === 0) return false;
  if (Object.keys(changes).length) await tx.mintedKey.update({ where: { id: job.mintedKeyId }, data: changes });
  return true;
}

/**
 * The minted key is gone at the provider (deleted, or past its provider-side expiry): its status
 * says how, and its minting key counts one fewer (once: a key already gone is not counted again).
 */
export async function gone(
  tx: Tx,
  job: ClaimedJob,
  now: Date,
  status: Extract<MintedKeyStatus, 'DELETED' | 'EXPIRED'>,
) {
  await tx.$queryRaw`SELECT 1 FROM "ManagedKey" WHERE id = ${job.mintingKeyId}::uuid FOR UPDATE`;
  if (!(await done(tx, job, now))) return;
  await tx.$executeRaw`
    WITH ended AS (
      UPDATE "MintedKey" SET status = ${status}::"MintedKeyStatus", "deletedAt" = ${now}, "updatedAt" = ${now}
      WHERE id = ${job.mintedKeyId}::uuid AND status NOT IN ('DELETED', 'EXPIRED')
      RETURNING "mintingKeyId"
    )
    UPDATE "ManagedKey" k SET "mintedKeyCount" = k."mintedKeyCount" - 1 FROM ended WHERE k.id = ended."mintingKeyId"`;
}

/** Not now, and not a failure (Venice's creation rate): back to PENDING until `runAfter`. */
export async function defer(db: Db, job: ClaimedJob, now: Date, runAfter: Date) {
  await db.providerJob.updateMany({
    where: ours(job),
    data: { status: 'PENDING', attempts: job.attempts - 1, runAfter, claimedUntil: null, updatedAt: now },
  });
}

/**
 * The minting key has made as many keys as its provider allows for now: its waiting creations are
 * put off until `until` in one statement (they keep their order), rather than claimed one by one.
 */
export async function deferCreations(db: Db, mintingKeyId: string, now: Date, until: Date) {
  await db.$executeRaw`
    UPDATE "ProviderJob" SET "runAfter" = ${until}, "updatedAt" = ${now}
    WHERE "mintingKeyId" = ${mintingKeyId}::uuid AND kind = 'CREATE' AND status = 'PENDING' AND "runAfter" < ${until}`;
}

/** A failed try that will be tried again at `runAfter`. */
export async function retryLater(db: Db, job: ClaimedJob, now: Date, runAfter: Date, lastError: string) {
  await db.providerJob.updateMany({
    where: ours(job),
    data: { status: 'PENDING', runAfter, claimedUntil: null, lastError, updatedAt: now },
  });
}

/** The last try failed: IRRECOVERABLE until an admin retries it. Whether this call made it so. */
export async function giveUp(tx: Tx, job: ClaimedJob, now: Date, lastError: string): Promise<boolean> {
  const { count } = await tx.providerJob.updateMany({
    where: ours(job),
    data: { status: 'IRRECOVERABLE', claimedUntil: null, lastError, updatedAt: now },
  });
  return count > 0;
}

/** Unfinished jobs by status (the metrics' gauge). */
export const unfinishedCounts = (db: Db) =>
  db.$queryRaw<{ status: string; count: number }[]>`
    SELECT status::text AS status, count(*)::int AS count FROM "ProviderJob" WHERE status <> 'DONE' GROUP BY 1`;
