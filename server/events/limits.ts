// Per-user caps on what a caller may hold open on this instance: subscriptions (any transport) and
// WebSocket connections. Only USER callers are capped: staff tokens belong to the platform's own
// services and operators, whose fan-out the deployment sizes. Counts are per instance, in memory.
import { MpkError } from '../core/errors.js';
import type { Identity } from '../core/identity.js';

export interface SubscriberLimitConfig {
  /** Concurrent subscriptions per USER on one instance; 0 = no limit. */
  maxSubscriptionsPerUser: number;
  /** Concurrent WebSocket connections per USER on one instance; 0 = no limit. */
  maxConnectionsPerUser: number;
}

export const DEFAULT_SUBSCRIBER_LIMITS: SubscriberLimitConfig = {
  maxSubscriptionsPerUser: 100,
  maxConnectionsPerUser: 50,
};

export function createSubscriberLimits(config: SubscriberLimitConfig = DEFAULT_SUBSCRIBER_LIMITS) {
  const held = { subscriptions: new Map<string, number>(), connections: new Map<string, number>() };
  const open = { subscriptions: 0, connections: 0 };

  /**
   * One more of `kind` for the caller unless a USER would pass `max`; the release runs once
   * however often it is called.
   */
  function take(kind: keyof typeof open, actor: Identity | null, max: number): (() => void) | null {
    const counts = held[kind];
    const user = actor?.role === 'USER' ? actor.userId : null;
    if (user !== null) {
      const count = counts.get(user) ?? 0;
      if (max > 0 && count >= max) return null;
      counts.set(user, count + 1);
    }
    open[kind]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      open[kind]--;
      if (user === null) return;
      const left = (counts.get(user) ?? 1) - 1;
      if (left > 0) counts.set(user, left);
      else counts.delete(user);
    };
  }

  return {
    config,
    /**
     * Holds one subscription for `actor` until the returned release is called; refuses a USER at
     * the cap with SUBSCRIPTION_LIMIT.
     */
    subscription(actor: Identity | null): () => void {
      const release = take('subscriptions', actor, config.maxSubscriptionsPerUser);
      if (!release)
        throw new MpkError(
          'SUBSCRIPTION_LIMIT',
          `Too many open subscriptions: at most ${config.maxSubscriptionsPerUser} per user; end one first`,
        );
      return release;
    },
    /** Holds one WebSocket connection for `actor`, or null when a USER is at the cap. */
    connection: (actor: Identity | null) => take('connections', actor, config.maxConnectionsPerUser),
    /** What is held open now, across all callers (for tests and operators). */
    open: () => ({ ...open }),
  };
}
export type SubscriberLimits = ReturnType<typeof createSubscriberLimits>;
