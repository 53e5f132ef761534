// Minted keys as the rest of MPK sees them: a lease's minted key (masked), the secret for
// resolveLease, the provider job queue for admins and observers, and an admin's retry of a job that
// failed for good. The jobs themselves run in runner.ts.
import type { AuditService } from '../audit/service.js';
import { authorize } from '../auth/permissions.js';
import type { Clock } from '../core/clock.js';
import { MpkError, notFound } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { isUuid } from '../core/ids.js';
import { Decimal } from '../core/money.js';
import { emptyPage, type PageRequest, pageOfModel, serialKeyset } from '../core/paging.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db, Lease, MintedKey, Prisma, ProviderJob } from '../db/client.js';
import type { ProviderJobStatus } from '../db/enums.js';
import { estimatedRows } from '../db/estimate.js';

export interface ProviderJobFilter extends PageRequest {
  keyId?: string | null;
  leaseId?: string | null;
  status?: ProviderJobStatus | null;
}

/** How long resolveLease waits for a minted key still being created, and what it tells the worker then. */
export const KEY_NOT_READY_WAIT_MS = 3000;
export const KEY_NOT_READY_RETRY_SECONDS = 2;

/** Venice documents a key's usage over the trailing seven days only (GET /api_keys/{id}). */
export const VENICE_USAGE_WINDOW_MS = 7 * 86_400_000;

/**
 * A lease's drift: what the provider says its minted keys spent less what MPK metered on the lease
 * (the sign of the keys' drift, `driftTodayUsd`: positive when the provider counted spend MPK did not
 * meter), both as of the provider's last reading: `leaseUsageUsd` is MPK's figure at that time. Null with no reading, and on Venice once the key is older than the seven
 * days its figure covers (the figure then leaves out the key's first days).
 */
export function mintedKeyDrift(input: {
  provider: string;
  leaseUsageUsd: Decimal.Value;
  providerUsageUsd: Decimal.Value | null;
  providerCheckedAt: Date | null;
  providerCreatedAt: Date | null;
}): Decimal | null {
  const { providerUsageUsd, providerCheckedAt, providerCreatedAt } = input;
  if (providerUsageUsd === null || providerCheckedAt === null) return null;
  if (
    input.provider === 'VENICE' &&
    (providerCreatedAt === null || providerCheckedAt.getTime() - providerCreatedAt.getTime() > VENICE_USAGE_WINDOW_MS)
  )
    return null;
  return new Decimal(providerUsageUsd).minus(new Decimal(input.leaseUsageUsd));
}

export function createMintingService(deps: {
  db: Db;
  clock: Clock;
  keyring: Keyring;
  audit: Pick<AuditService, 'record'>;
  /** Wakes the job runner on this instance (a retried job is due now). */
  nudge: () => void;
  /** How long resolveLease waits for a PENDING minted key (tests shorten it). */
  waitMs?: number;
}) {
  const { db, clock, keyring, audit } = deps;
  const waitMs = deps.waitMs ?? KEY_NOT_READY_WAIT_MS;

  /** The minted secret, if the key is there: created, and not being replaced by a newer CREATE. */
  async function readySecret(leaseId: string): Promise<string | null> {
    const [row] = await db.$queryRaw<{ id: string; secretCiphertext: string | null; ready: boolean }[]>`
      SELECT m.id::text AS id, m."secretCiphertext",
             m.status = 'ACTIVE' AND m."secretCiphertext" IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM "ProviderJob" j WHERE j."mintedKeyId" = m.id AND j.kind = 'CREATE'
                                 AND j.status <> 'DONE') AS ready
      FROM "MintedKey" m WHERE m."leaseId" = ${leaseId}::uuid`;
    if (!row?.ready || !row.secretCiphertext) return null;
    // The only place a minted secret leaves its ciphertext: resolveLease's apiKey.
    return keyring.decrypt(row.secretCiphertext, row.id);
  }

  return {
    /**
     * The secret of the lease's minted key for resolveLease (DIRECT). A key still being created is
     * waited for briefly (the runner makes it within moments unless the provider's rate holds it
     * back); then KEY_NOT_READY with a retry hint, a refusal a worker retries, not an error.
     */
    async mintedSecret(leaseId: string): Promise<string> {
      const deadline = performance.now() + waitMs;
      for (;;) {
        const secret = await readySecret(leaseId);
        if (secret !== null) return secret;
        if (performance.now() >= deadline)
          throw new MpkError(
            'KEY_NOT_READY',
            `The lease's provider key is still being created; try again in ${KEY_NOT_READY_RETRY_SECONDS} s`,
            { retryAfterSeconds: KEY_NOT_READY_RETRY_SECONDS },
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    },

    /** A lease's minted key, for Lease.mintedKey (its masked form only); null on a SHARED key. */
    mintedKeyOf: (lease: Pick<Lease, 'id'>) => db.mintedKey.findUnique({ where: { leaseId: lease.id } }),

    /**
     * The lease's drift against its minted key's own figure at the provider (mintedKeyDrift). MPK's
     * side is what it metered up to the reading, from the ledger: requests since then are in neither
     * figure, so a busy lease shows no drift that is only the time between the two. An ended lease's
     * key is read once more just before its deletion (the DELETE job), so that figure is final.
     */
    async driftOf(
      minted: Pick<
        MintedKey,
        'leaseId' | 'mintingKeyId' | 'providerUsageUsd' | 'providerCheckedAt' | 'providerCreatedAt'
      >,
    ) {
      const checkedAt = minted.providerCheckedAt;
      if (minted.providerUsageUsd === null || checkedAt === null) return null;
      const [[metered], key] = await Promise.all([
        db.$queryRaw<{ usd: string }[]>`
          SELECT COALESCE(SUM("costUsd"), 0)::text AS usd FROM "UsageRecord"
          WHERE "leaseId" = ${minted.leaseId}::uuid AND at <= ${checkedAt}`,
        db.managedKey.findUnique({ where: { id: minted.mintingKeyId }, select: { provider: true } }),
      ]);
      if (!metered || !key) return null;
      return mintedKeyDrift({ ...minted, provider: key.provider, leaseUsageUsd: metered.usd });
    },

    async jobs(actor: Identity | null, filter: ProviderJobFilter) {
      authorize(actor, 'providerJobs');
      if ((filter.keyId && !isUuid(filter.keyId)) || (filter.leaseId && !isUuid(filter.leaseId)))
        return emptyPage<ProviderJob>(filter);
      // Prisma leaves out a field whose filter is undefined.
      const where: Prisma.ProviderJobWhereInput = {
        mintingKeyId: filter.keyId || undefined,
        leaseId: filter.leaseId || undefined,
        status: filter.status ?? undefined,
      };
      return pageOfModel(filter, {
        model: db.providerJob,
        estimateAll: () => estimatedRows(db, 'ProviderJob'),
        where,
        keyset: serialKeyset(),
        positionOf: (j: ProviderJob) => ({ at: j.createdAt, id: String(j.id) }),
      });
    },

    /** Puts an IRRECOVERABLE job back in the queue, due now, with its tries counted afresh. */
    async retry(actor: Identity | null, id: string) {
      const admin = authorize(actor, 'retryProviderJob');
      if (!/^\d{1,18}$/.test(id)) throw notFound('Provider job');
      const now = clock.now();
      const job = await db.$transaction(async (tx) => {
        const { count } = await tx.providerJob.updateMany({
          where: { id: BigInt(id), status: 'IRRECOVERABLE' },
          data: { status: 'PENDING', attempts: 0, runAfter: now, claimedUntil: null, updatedAt: now },
        });
        const found = await tx.providerJob.findUnique({ where: { id: BigInt(id) } });
        if (!found) throw notFound('Provider job');
        if (count === 0)
          throw new MpkError('CONFLICT', `Only an IRRECOVERABLE job can be retried; this one is ${found.status}`);
        await audit.record(tx, admin, {
          action: 'providerJob.retry',
          targetType: 'ProviderJob',
          targetId: id,
          details: { kind: found.kind, leaseId: found.leaseId, lastError: found.lastError },
        });
        return found;
      });
      deps.nudge();
      return job;
    },
  };
}
export type MintingService = ReturnType<typeof createMintingService>;
