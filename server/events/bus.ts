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
 * log, so this only has to wake the readers of the log, here and on other instances.
 */
export function createEventBus(nudge: () => void) {
  return {
    publish(events: readonly LeaseEventRecord[]) {
      if (events.length > 0) nudge();
    },
  };
}
export type EventBus = ReturnType<typeof createEventBus>;
