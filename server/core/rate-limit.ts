// Token buckets by key (a user, a lease): `capacity` requests at once, refilled at `perSecond`.
// In memory, per instance: N instances behind a load balancer admit up to N times the rate, which
// is what a limit against one caller's flood needs (it bounds the load each instance takes).
import type { Clock } from './clock.js';

export interface BucketLimit {
  /** Requests admitted at once from a full bucket (the burst). */
  capacity: number;
  /** Tokens added per second, up to `capacity`. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms. */
  at: number;
  limit: BucketLimit;
}

/** Buckets kept before the full ones (idle keys) are dropped: a full bucket is the same as none. */
const DEFAULT_MAX_KEYS = 100_000;

const level = (bucket: Bucket, now: number) =>
  Math.min(bucket.limit.capacity, bucket.tokens + ((now - bucket.at) / 1000) * bucket.limit.perSecond);

export function createTokenBuckets(options: { clock: Clock; maxKeys?: number }) {
  const { clock, maxKeys = DEFAULT_MAX_KEYS } = options;
  const buckets = new Map<string, Bucket>();

  /** Drops the buckets that have refilled, then (a flood of distinct keys) the oldest half. */
  function prune(now: number) {
    for (const [key, bucket] of buckets) if (level(bucket, now) >= bucket.limit.capacity) buckets.delete(key);
    for (const key of buckets.keys()) {
      if (buckets.size <= maxKeys / 2) break;
      buckets.delete(key);
    }
  }

  return {
    /**
     * Takes `cost` tokens from `key`'s bucket: 0 when they were there (and are now taken), else the
     * seconds until they will be (nothing is taken: a refused request costs nothing).
     */
    take(key: string, limit: BucketLimit, cost = 1): number {
      const now = clock.now().getTime();
      let bucket = buckets.get(key);
      if (!bucket) {
        if (buckets.size >= maxKeys) prune(now);
        bucket = { tokens: limit.capacity, at: now, limit };
        buckets.set(key, bucket);
      }
      bucket.tokens = level(bucket, now);
      bucket.at = now;
      if (bucket.limit !== limit) {
        // The limit changed (a tier policy): keep what was used, within the new capacity.
        bucket.tokens = Math.min(bucket.tokens, limit.capacity);
        bucket.limit = limit;
      }
      if (bucket.tokens >= cost) {
        bucket.tokens -= cost;
        return 0;
      }
      if (limit.perSecond <= 0) return Number.POSITIVE_INFINITY;
      return (Math.min(cost, limit.capacity) - bucket.tokens) / limit.perSecond;
    },
    get size() {
      return buckets.size;
    },
  };
}
export type TokenBuckets = ReturnType<typeof createTokenBuckets>;
