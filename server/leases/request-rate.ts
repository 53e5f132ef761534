// Per-lease request rate through the metering proxy: the tier policy's `requestsPerMinute`, as a
// token bucket per lease (a full minute's worth at once, refilled evenly). In memory, per instance:
// behind N instances a lease may send up to N times its rate. Unlike the rest of a tier policy, a
// change applies to every lease of the tier at once, since it limits traffic, not what was granted.
//
// What it reads stays in memory: the policies (refreshed every `refreshMs` while requests come, and
// at once after a change on this instance) and each lease's tier (fixed at grant). While no tier has
// a limit, a request costs a map lookup and nothing more.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { type BucketLimit, createTokenBuckets } from '../core/rate-limit.js';
import type { Db } from '../db/client.js';

const DEFAULT_REFRESH_MS = 10_000;
/** Leases whose tier is kept; past it the map starts over (a tier is one query away). */
const MAX_LEASES = 100_000;

export function createLeaseRequestLimits(deps: { db: Db; clock: Clock; logger: Logger; refreshMs?: number }) {
  const { db, clock, logger, refreshMs = DEFAULT_REFRESH_MS } = deps;
  const buckets = createTokenBuckets({ clock });
  /** The tiers that have a limit; undefined until read (or after a change on this instance). */
  let policies: Map<string, BucketLimit> | undefined;
  let loadedAt = 0;
  let loading: Promise<void> | undefined;
  let generation = 0;
  const tiers = new Map<string, string | null>();
  const tierReads = new Map<string, Promise<void>>();

  function loadPolicies(): Promise<void> {
    const mine = ++generation;
    const read = db.tierPolicy.findMany({ select: { tier: true, requestsPerMinute: true } }).then(
      (rows) => {
        if (mine !== generation) return;
        policies = new Map();
        for (const { tier, requestsPerMinute: rpm } of rows)
          if (rpm) policies.set(tier, { capacity: rpm, perSecond: rpm / 60 });
        loadedAt = clock.now().getTime();
      },
      (error: unknown) => {
        if (mine !== generation) return;
        // The database is away: requests go on unlimited (admission decides whether they go at
        // all) until the next try.
        logger.error({ err: error }, 'could not read the tier policies for request rate limits');
        policies ??= new Map();
        loadedAt = clock.now().getTime();
      },
    );
    const tracked = read.finally(() => {
      if (loading === tracked) loading = undefined;
    });
    loading = tracked;
    return tracked;
  }

  function readTier(leaseId: string): Promise<void> {
    let read = tierReads.get(leaseId);
    if (!read) {
      read = db.lease
        .findUnique({ where: { id: leaseId }, select: { tier: true } })
        .then(
          (lease) => {
            if (tiers.size >= MAX_LEASES) tiers.clear();
            tiers.set(leaseId, lease?.tier ?? null);
          },
          (error: unknown) => logger.error({ err: error, leaseId }, 'could not read a lease tier for its rate limit'),
        )
        .finally(() => tierReads.delete(leaseId));
      tierReads.set(leaseId, read);
    }
    return read;
  }

  /** 0 when the request may go (its token is taken), else the seconds until it may. */
  function check(leaseId: string): number | Promise<number> {
    if (!policies) return (loading ?? loadPolicies()).then(() => check(leaseId));
    if (!loading && clock.now().getTime() - loadedAt >= refreshMs) void loadPolicies();
    if (!policies.size) return 0;
    const tier = tiers.get(leaseId);
    // A tier that could not be read is not retried by this request: it goes unlimited.
    if (tier === undefined) return readTier(leaseId).then(() => (tiers.has(leaseId) ? check(leaseId) : 0));
    const limit = tier === null ? undefined : policies.get(tier);
    return limit ? buckets.take(leaseId, limit) : 0;
  }

  return {
    check,
    /** A tier policy changed on this instance: the next request reads the policies again. */
    policiesChanged() {
      policies = undefined;
      void loadPolicies();
    },
  };
}
export type LeaseRequestLimits = ReturnType<typeof createLeaseRequestLimits>;
