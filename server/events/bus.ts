// Lease events: rows of the durable log (written by the leases domain in the same transaction as
// the change) are handed here after commit and fanned out to listeners.
export const LEASE_EVENT_TYPES = ['GRANTED', 'EXTENDED', 'RELEASED', 'REVOKED', 'EXPIRED', 'SUSPENDED', 'USAGE'] as const;
export type LeaseEventType = (typeof LEASE_EVENT_TYPES)[number];

/** The types that end a lease and so tell the worker to stop the agent. */
export const STOP_AGENT_TYPES: ReadonlySet<LeaseEventType> = new Set(['RELEASED', 'REVOKED', 'EXPIRED', 'SUSPENDED']);

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
 * What state changes call after their transaction committed: the event rows are already in the
 * log, so this only has to wake the readers of the log, here and on other instances. Observers on
 * this instance hear the events at once, before the caller answers: a cache that must not outlive
 * a lease (the proxy's admission cache) drops it here, not a log read later.
 */
export function createEventBus(nudge: () => void) {
  const observers = new Set<(events: readonly LeaseEventRecord[]) => void>();
  return {
    publish(events: readonly LeaseEventRecord[]) {
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
