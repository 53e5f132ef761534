// Lease events: rows of the durable log (written by the leases domain in the same transaction as
// the change) are handed here after commit and fanned out to listeners.
import type { LeaseEventType } from '../db/enums.js';

export type { LeaseEventType };

export interface LeaseEventRecord {
  id: bigint;
  type: LeaseEventType;
  at: Date;
  leaseId: string;
  userId: string;
  keyId: string;
  agentId: string | null;
  stopAgent: boolean;
  details: unknown;
}

/**
 * What state changes call after their transaction committed. The event rows are already in the
 * log (written with the change), so nothing is sent from here: `committed` tells this instance's
 * observers at once, before the caller answers — a cache that must not outlive a lease (the proxy's
 * admission cache) drops it here, not a log read later — and wakes the log's readers, here and,
 * through the nudges, on the other instances.
 */
export function createEventBus(nudge: () => void) {
  const observers = new Set<(events: readonly LeaseEventRecord[]) => void>();
  return {
    committed(events: readonly LeaseEventRecord[]) {
      if (events.length === 0) return;
      for (const observe of observers) observe(events);
      nudge();
    },
    observe(observer: (events: readonly LeaseEventRecord[]) => void): () => void {
      observers.add(observer);
      return () => observers.delete(observer);
    },
  };
}
export type EventBus = ReturnType<typeof createEventBus>;
