// Why a request on a lease may not go ahead, worded once for resolveLease (GraphQL) and the metering
// proxy (OpenAI-style errors), so that an agent hears the same reason from both. The rule that
// decides is SQL's mpk_lease_refusal (prisma/sql/mpk_lease_refusal.sql).
import { formatUsd } from '../core/money.js';

export type LeaseRefusal = 'LEASE_NOT_ACTIVE' | 'LEASE_SPEND_CAP_REACHED' | 'QUOTA_EXHAUSTED';

export const KEY_QUOTA_MESSAGE = "The lease's key has reached its daily or monthly spend limit";

/** A suspended lease, or one at its cap: an admin can raise the cap and it goes on. */
export const capReachedMessage = (usedUsd: string | number, capUsd: string | number) =>
  `The lease has spent $${formatUsd(usedUsd)} of its $${formatUsd(capUsd)} spend cap; an admin can raise the cap`;

/** An ended lease (or one whose key was disabled), for resolveLease. */
export function notActiveMessage(lease: { status: string; expiresAt: Date }, now: Date): string {
  if (lease.status !== 'ACTIVE' && lease.status !== 'SUSPENDED') return `Lease is ${lease.status}`;
  return lease.expiresAt <= now ? 'Lease has expired' : "The lease's key is disabled";
}
