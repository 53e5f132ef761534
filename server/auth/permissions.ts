// Who may call what: the one list. Every GraphQL operation (and the few fields that are narrower
// than their type) has a row; the services ask it through `authorize`, and a test checks that every
// operation in schema.graphql has a row and that each role gets exactly what its row says.
// Which rows a role then sees (a user's own leases, say) is the services' business.
import { MpkError } from '../core/errors.js';
import type { Identity, Role } from '../core/identity.js';

const EVERYONE = ['ADMIN', 'OBSERVER', 'USER', 'WORKER'] as const;
const READERS = ['ADMIN', 'OBSERVER'] as const;
const ADMIN = ['ADMIN'] as const;
const WORKER = ['WORKER'] as const;
const LEASE_HOLDERS = ['ADMIN', 'USER'] as const;
const LEASE_READERS = ['ADMIN', 'OBSERVER', 'WORKER', 'USER'] as const;

export const PERMISSIONS = {
  // Queries
  me: EVERYONE,
  tierPolicies: EVERYONE,
  managedKeys: READERS,
  managedKey: READERS,
  leases: LEASE_READERS,
  lease: LEASE_READERS,
  recentLeaseEvents: LEASE_READERS,
  usageRecords: LEASE_READERS,
  users: READERS,
  auditLog: READERS,
  poolSummary: READERS,
  spendSeries: READERS,
  resolveLease: WORKER,
  providerJobs: READERS,
  // Mutations
  createManagedKey: ADMIN,
  updateManagedKey: ADMIN,
  disableManagedKey: ADMIN,
  enableManagedKey: ADMIN,
  rotateManagedKeySecret: ADMIN,
  requestLease: LEASE_HOLDERS,
  releaseLease: LEASE_HOLDERS,
  extendLease: ADMIN,
  revokeLease: ADMIN,
  updateLeaseCap: ADMIN,
  setUserTier: ADMIN,
  updateTierPolicy: ADMIN,
  reportUsage: WORKER,
  retryProviderJob: ADMIN,
  // Subscriptions
  leaseEvents: LEASE_READERS,
  keyUsage: READERS,
  // Fields narrower than their type
  'Lease.key': ['ADMIN', 'OBSERVER', 'WORKER'],
  'Lease.mintedKey': ['ADMIN', 'OBSERVER', 'WORKER'],
  // HTTP routes beside GraphQL (GET /metrics also takes MPK_METRICS_TOKEN, or a listed address)
  'HTTP.metrics': READERS,
} as const satisfies Record<string, readonly Role[]>;

export type Operation = keyof typeof PERMISSIONS;

export const unauthenticated = (message = 'Authentication required') => new MpkError('UNAUTHENTICATED', message);

/** The caller, if their role may do `operation`: UNAUTHENTICATED without one, FORBIDDEN for another role. */
export function authorize(actor: Identity | null, operation: Operation): Identity {
  if (!actor) throw unauthenticated();
  if (!(PERMISSIONS[operation] as readonly Role[]).includes(actor.role))
    throw new MpkError('FORBIDDEN', `Role ${actor.role} may not do this`);
  return actor;
}

/** Whether the role may do `operation` (for fields that answer null rather than refuse). */
export const allows = (actor: Identity | null, operation: Operation) =>
  actor !== null && (PERMISSIONS[operation] as readonly Role[]).includes(actor.role);
