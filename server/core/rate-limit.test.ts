// The token bucket on a clock that moves only when told: burst, refill, the wait it names, what a
// refusal costs (nothing), a changed limit, and the bound on how many keys it keeps.
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import { createTokenBuckets } from './rate-limit.js';

describe('token buckets', () => {
  it('admits the burst, then one request per refill, naming the wait; a refusal takes nothing', () => {
    const clock = createManualClock();
    const buckets = createTokenBuckets({ clock });
    const limit = { capacity: 3, perSecond: 2 };
    expect([1, 2, 3].map(() => buckets.take('a', limit))).toEqual([0, 0, 0]);
    expect(buckets.take('a', limit)).toBeCloseTo(0.5);
    expect(buckets.take('a', limit)).toBeCloseTo(0.5);
    clock.advance(500);
    expect(buckets.take('a', limit)).toBe(0);
    expect(buckets.take('a', limit)).toBeCloseTo(0.5);
    // Another key has its own bucket; a cost of 2 waits for two tokens.
    expect(buckets.take('b', limit, 2)).toBe(0);
    expect(buckets.take('b', limit, 2)).toBeCloseTo(0.5);
    // Idle for long, the bucket is full again, never fuller.
    clock.advance(3_600_000);
    expect([1, 2, 3, 4].map(() => buckets.take('a', limit) === 0)).toEqual([true, true, true, false]);
  });

  it('a lowered limit takes effect at once; a rate of 0 never refills', () => {
    const clock = createManualClock();
    const buckets = createTokenBuckets({ clock });
    expect(buckets.take('a', { capacity: 100, perSecond: 1 })).toBe(0);
    const lower = { capacity: 2, perSecond: 1 };
    expect([1, 2, 3].map(() => buckets.take('a', lower) === 0)).toEqual([true, true, false]);
    const never = { capacity: 1, perSecond: 0 };
    expect(buckets.take('z', never)).toBe(0);
    clock.advance(10_000);
    expect(buckets.take('z', never)).toBe(Number.POSITIVE_INFINITY);
  });

  it('keeps at most maxKeys buckets: full ones go first, then the oldest', () => {
    const clock = createManualClock();
    const buckets = createTokenBuckets({ clock, maxKeys: 10 });
    const limit = { capacity: 1, perSecond: 1 };
    for (let i = 0; i < 10; i++) buckets.take(`k${i}`, limit);
    expect(buckets.size).toBe(10);
    // All ten are empty: a new key makes room by dropping the oldest half.
    buckets.take('new', limit);
    expect(buckets.size).toBe(6);
    expect(buckets.take('k9', limit)).toBeGreaterThan(0);
    // Once refilled, they are dropped before any that is still in use.
    clock.advance(1000);
    for (let i = 0; i < 4; i++) buckets.take(`m${i}`, limit);
    buckets.take('last', limit);
    expect(buckets.size).toBe(5);
    expect(buckets.take('m0', limit)).toBeGreaterThan(0);
  });
});
