// The provider job runner: a scheduler job (it runs on the leading instance only) that works through
// the queue of provider calls on minted keys. Woken at once when a lease changes on this instance or
// another (every job is written with a lease event), by a timer armed for the next job due (backoff,
// Retry-After, Venice's creation rate), and by a poll as a safety net.
//
// Why a queue rather than a call in the mutation: a grant must not wait for, or fail with, a provider;
// creations must be spread at Venice's 20 a minute; and a crash must lose nothing. The job is written
// in the lease's own transaction, so a lease change without its provider call cannot commit, and a
// claimed job whose runner died is claimed again once its claim runs out.
//
// Jobs run one at a time, in due order: a provider call takes milliseconds to a second, and one at a
// time keeps the creation-rate count exact without locks across calls.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { ProviderRequestError, reasonOf } from '../core/provider-request.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/client.js';
import { inTransaction } from '../db/transaction.js';
import type { EventBus, LeaseEventRecord } from '../events/bus.js';
import { maskKey } from '../keys/input.js';
import type { LeaseService } from '../leases/service.js';
import type { Metrics } from '../metrics/metrics.js';
import { type MintingClient, mintingClient } from './providers.js';
import * as queue from './queue.js';
import type { SweptKey } from './sweep.js';
import { createUsageReading } from './usage-reading.js';

/** Venice allows 20 key creations a minute an account. */
export const VENICE_CREATIONS_PER_MINUTE = 20;
/** How long a claim lasts: longer than a job's provider calls (10 s each at most) can take. */
const CLAIM_MS = 60_000;
/** How often the orphan sweep runs while this instance leads. */
const SWEEP_MS = 10 * 60_000;
const BATCH = 20;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 5 * 60_000;

/** The scheduler's identity for what the runner writes (events, audit entries). */
export const MINTING_ACTOR = { userId: 'system:minting', role: 'ADMIN' as const };

/** Exponential backoff after the `attempts`-th failure, or the provider's Retry-After if longer. */
export function backoffMs(attempts: number, retryAfterMs: number | null): number {
  const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
  return Math.max(exponential, retryAfterMs ?? 0);
}

export function createProviderJobRunner(deps: {
  db: Db;
  clock: Clock;
  keyring: Keyring;
  logger: Logger;
  events: EventBus;
  leases: Pick<LeaseService, 'recordEventInTx'>;
  /** Tries before a job is IRRECOVERABLE. */
  maxAttempts: number;
  pollMs?: number;
  claimMs?: number;
  /** The orphan sweep (sweep.ts), run between jobs every `sweepMs` and when the runner starts. */
  sweep?: () => Promise<SweptKey[]>;
  sweepMs?: number;
  metrics?: Pick<Metrics, 'providerJobRun'>;
}) {
  const { db, clock, keyring, logger, events, leases, maxAttempts } = deps;
  const pollMs = deps.pollMs ?? 2000;
  const claimMs = deps.claimMs ?? CLAIM_MS;
  const sweepMs = deps.sweepMs ?? SWEEP_MS;
  const readUsage = createUsageReading({ db, logger });
  let active = false;
  let running: Promise<number> | undefined;
  let again = false;
  let poll: NodeJS.Timeout | undefined;
  let sweeping: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Jobs and sweeps take turns: a sweep never judges a key while a job of this runner handles it.
  let lane: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const turn = lane.then(work);
    lane = turn.catch(() => undefined);
    return turn;
  };

  /** The minting key's management client (its secret is sealed bound to the minting key's id). */
  const clientOf = (
    ctx: { provider: Parameters<typeof mintingClient>[0]; baseUrl: string; secretCiphertext: string },
    keyId: string,
  ): MintingClient => mintingClient(ctx.provider, ctx.baseUrl, keyring.decrypt(ctx.secretCiphertext, keyId));

  /** The provider-side limit of the current provider key: what the lease may still spend on it. */
  function currentLimit(minted: { limitUsd: unknown; earlierKeysUsageUsd: unknown }): number | null {
    if (minted.limitUsd === null) return null;
    return Math.max(0, Number(minted.limitUsd) - Number(minted.earlierKeysUsageUsd));
  }

  /** Runs one claimed job to its outcome: 'deferred' when it was put off (not a failure), else done. */
  async function run(job: queue.ClaimedJob): Promise<'deferred' | undefined> {
    const ctx = await queue.contextOf(db, job);
    const { minted } = ctx;
    const now = clock.now();
    const client = clientOf(ctx, job.mintingKeyId);
    switch (job.kind) {
      case 'CREATE': {
        // The lease has ended meanwhile (its DELETE waits behind): a key made now would only be deleted.
        if (ctx.deleteQueued) {
          await inTransaction(db, (tx) => queue.done(tx, job, now));
          return;
        }
        if (ctx.provider === 'VENICE') {
          const recent = await queue.creationsInLastMinute(db, job.mintingKeyId, now);
          if (recent.n >= VENICE_CREATIONS_PER_MINUTE) {
            const until = new Date(recent.oldest!.getTime() + 60_000);
            await queue.defer(db, job, now, until);
            await queue.deferCreations(db, job.mintingKeyId, now, until);
            return 'deferred';
          }
        }
        const created = await client.create({
          name: minted.name,
          limitUsd: currentLimit(minted),
          expiresAt: minted.expiresAt,
        });
        await inTransaction(db, (tx) =>
          queue.done(tx, job, now, {
            providerKeyId: created.providerKeyId,
            secretCiphertext: keyring.encrypt(created.secret, minted.id),
            maskedKey: maskKey(created.secret),
            status: 'ACTIVE',
            providerCreatedAt: now,
            deletedAt: null,
          }),
        );
        return;
      }
      case 'SET_EXPIRY': {
        if (!minted.providerKeyId || minted.status === 'DELETED' || minted.status === 'EXPIRED') break;
        if (client.canMoveExpiry) {
          await client.setExpiry(minted.providerKeyId, minted.expiresAt);
          break;
        }
        await replace(job, client, minted, now);
        return;
      }
      case 'SET_LIMIT':
        if (!minted.providerKeyId || minted.status === 'DELETED' || minted.status === 'EXPIRED') break;
        // A disabled Venice key's limit is its off switch: the new limit goes on with ENABLE.
        if (minted.status === 'DISABLED' && ctx.provider === 'VENICE') break;
        await client.setLimit(minted.providerKeyId, currentLimit(minted));
        break;
      case 'DISABLE':
        if (!minted.providerKeyId || minted.status !== 'ACTIVE') break;
        await client.disable(minted.providerKeyId);
        await inTransaction(db, (tx) => queue.done(tx, job, now, { status: 'DISABLED' }));
        return;
      case 'ENABLE':
        if (!minted.providerKeyId || minted.status !== 'DISABLED') break;
        await client.enable(minted.providerKeyId, currentLimit(minted));
        await inTransaction(db, (tx) => queue.done(tx, job, now, { status: 'ACTIVE' }));
        return;
      case 'DELETE': {
        if (minted.status === 'DELETED' || minted.status === 'EXPIRED') break;
        if (!minted.providerKeyId) {
          await inTransaction(db, (tx) => queue.gone(tx, job, now, 'DELETED'));
          return;
        }
        // The final reading, while the key is still there to read: requests since the last periodic
        // one are counted, so the ended lease's drift is final. A failed reading (stored in MPK's
        // words) does not hold the deletion back, and a 404 is left to the deletion's own 404 (gone
        // already), so that no answer to the reading keeps a key alive. Read, then delete: a run again
        // after a crash reads again, harmlessly (a 404 then, if the key was deleted).
        await readUsage(() => client, minted, now);
        let outcome: 'deleted' | 'gone' | 'expired';
        try {
          outcome = await client.remove(minted.providerKeyId);
        } catch (error) {
          // Past its provider-side expiry the key no longer works, whatever the provider says now.
          if (minted.expiresAt > now) throw error;
          outcome = 'expired';
        }
        await inTransaction(db, (tx) => queue.gone(tx, job, now, outcome === 'expired' ? 'EXPIRED' : 'DELETED'));
        return;
      }
    }
    await inTransaction(db, (tx) => queue.done(tx, job, now));
  }

  /**
   * OpenRouter cannot move an expiry: a new key with the new expiry (and what is left of the limit)
   * takes the old one's place, then the old one is deleted. Recorded before the deletion: a crash in
   * between leaves the old key to its own provider-side expiry and to the orphan sweep, never a
   * lease without a working key.
   */
  async function replace(
    job: queue.ClaimedJob,
    client: MintingClient,
    minted: Awaited<ReturnType<typeof queue.contextOf>>['minted'],
    now: Date,
  ) {
    const oldId = minted.providerKeyId!;
    const spent = (await client.usage(oldId)) ?? 0;
    const earlier = Number(minted.earlierKeysUsageUsd) + spent;
    const created = await client.create({
      name: minted.name,
      limitUsd: currentLimit({ limitUsd: minted.limitUsd, earlierKeysUsageUsd: earlier }),
      expiresAt: minted.expiresAt,
    });
    const recorded = await inTransaction(db, (tx) =>
      queue.done(tx, job, now, {
        providerKeyId: created.providerKeyId,
        secretCiphertext: keyring.encrypt(created.secret, minted.id),
        maskedKey: maskKey(created.secret),
        earlierKeysUsageUsd: earlier.toFixed(12) as never,
        providerCreatedAt: now,
      }),
    );
    if (!recorded) return;
    if (minted.status === 'DISABLED') await client.disable(created.providerKeyId).catch(() => undefined);
    await client
      .remove(oldId)
      .catch((error) =>
        logger.warn(
          { jobId: String(job.id), reason: reasonOf(error, 'unknown') },
          'a replaced minted key could not be deleted; it expires at the provider on its own',
        ),
      );
  }

  async function failed(job: queue.ClaimedJob, error: unknown) {
    const now = clock.now();
    // MPK's own words only: a provider's body or an unexpected error's text may quote a key.
    const reason = reasonOf(error, 'the job failed unexpectedly');
    if (!(error instanceof ProviderRequestError))
      logger.error({ err: error, jobId: String(job.id) }, 'provider job failed');
    if (job.attempts < maxAttempts) {
      const retryAfter = error instanceof ProviderRequestError ? error.retryAfterMs : null;
      await queue.retryLater(db, job, now, new Date(now.getTime() + backoffMs(job.attempts, retryAfter)), reason);
      deps.metrics?.providerJobRun(job.kind, 'retry');
      return;
    }
    let written: LeaseEventRecord | undefined;
    await inTransaction(db, async (tx) => {
      written = undefined;
      if (!(await queue.giveUp(tx, job, now, reason))) return;
      written = await leases.recordEventInTx(tx, {
        type: 'PROVIDER_JOB_FAILED',
        leaseId: job.leaseId,
        now,
        actor: MINTING_ACTOR,
        action: 'providerJob.failed',
        details: { jobId: String(job.id), kind: job.kind, attempts: job.attempts, error: reason },
      });
    });
    if (written) events.committed([written]);
    deps.metrics?.providerJobRun(job.kind, 'irrecoverable');
    logger.warn(
      { jobId: String(job.id), kind: job.kind, leaseId: job.leaseId, reason },
      'provider job is IRRECOVERABLE',
    );
  }

  /**
   * Runs every job due now, batch after batch, until a claim finds none: a job that finishes lets
   * the next one of its minted key be claimed. A failed or deferred job is due later, not now.
   */
  async function drainOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const jobs = await queue.claim(db, clock.now(), claimMs, BATCH);
      if (jobs.length === 0) return total;
      for (const job of jobs) {
        try {
          deps.metrics?.providerJobRun(job.kind, (await run(job)) ?? 'done');
        } catch (error) {
          await failed(job, error);
        }
      }
      total += jobs.length;
    }
  }

  function arm(at: Date | null) {
    clearTimeout(timer);
    timer = undefined;
    if (!active || !at) return;
    const wait = at.getTime() - clock.now().getTime();
    if (wait < pollMs) timer = setTimeout(() => void runNow(), Math.max(0, wait));
  }

  /** Runs what is due now (a run in progress is followed by one more); how many jobs ran. */
  function runNow(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = exclusive(async () => {
      let total = 0;
      try {
        do {
          again = false;
          total += await drainOnce();
        } while (again);
      } catch (error) {
        logger.error({ err: error }, 'provider job queue failed; trying again at the next poll');
      } finally {
        running = undefined;
        arm(await queue.nextDue(db).catch(() => null));
      }
      return total;
    });
    return running;
  }

  /** Runs the orphan sweep now, between jobs; what it deleted. */
  function sweepNow(): Promise<SweptKey[]> {
    const sweep = deps.sweep;
    if (!sweep) return Promise.resolve([]);
    return exclusive(() =>
      sweep().catch((error) => {
        logger.error({ err: error }, 'orphan sweep failed; trying again at the next one');
        return [];
      }),
    );
  }

  return {
    name: 'provider-jobs',
    runNow,
    sweepNow,
    /** Wakes the runner (a lease changed: a job may be waiting); nothing when it is not running here. */
    nudge() {
      if (active) void runNow();
    },
    start() {
      active = true;
      poll = setInterval(() => void runNow(), pollMs);
      sweeping = setInterval(() => void sweepNow(), sweepMs);
      void runNow();
      void sweepNow();
    },
    async stop() {
      active = false;
      clearInterval(poll);
      clearInterval(sweeping);
      clearTimeout(timer);
      await lane;
    },
  };
}
export type ProviderJobRunner = ReturnType<typeof createProviderJobRunner>;
