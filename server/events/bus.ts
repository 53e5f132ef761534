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

export type LeaseEventListener = (events: readonly LeaseEventRecord[]) => void;

export function createEventBus() {
  const listeners = new Set<LeaseEventListener>();
  return {
    /** Called after the writing transaction committed, never before. */
    publish(events: readonly LeaseEventRecord[]) {
      if (events.length === 0) return;
      for (const listener of listeners) listener(events);
    },
    listen(listener: LeaseEventListener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
export type EventBus = ReturnType<typeof createEventBus>;
