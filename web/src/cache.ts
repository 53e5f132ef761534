// The normalized cache (Graphcache). Entities with an id are shared by every page, so a lease or a
// key that a subscription delivers updates every table that shows it, in place. Objects without
// an id of their own (pages, edges, aggregates) live inside their parent. A lease granted anywhere
// is put at the head of the lease lists it belongs in.
import { type Cache, cacheExchange, type Data, type KeyingConfig, type Variables } from '@urql/exchange-graphcache';
import type { DocumentNode } from 'graphql';
import { LeaseListQuery, MyLeasesQuery } from './api/documents';
import type { LeaseListQueryVariables, LeaseStatus } from './gql/graphql';

const embedded = () => null;

interface LeaseLike {
  id: string;
  cursor: string;
  status: LeaseStatus;
  tier?: string;
  provider?: string;
  framework?: string;
  agentId?: string | null;
  user?: { id: string } | null;
  key?: { id: string } | null;
}

interface ListPage {
  leases: {
    totalCount: number;
    totalCountIsEstimate?: boolean;
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
    edges: { __typename?: string; cursor: string; node: LeaseLike }[];
  };
}

/** Whether a lease belongs in a list asked for with these arguments. */
function belongs(lease: LeaseLike, args: LeaseListQueryVariables): boolean {
  if (args.after || args.before || args.last != null) return false; // only the first page shows what is new
  return (
    (!args.status || args.status === lease.status) &&
    (!args.tier || args.tier === lease.tier) &&
    (!args.provider || args.provider === lease.provider) &&
    (!args.framework || args.framework === lease.framework) &&
    (!args.agentId || args.agentId === lease.agentId) &&
    (!args.userId || args.userId === lease.user?.id) &&
    (!args.keyId || args.keyId === lease.key?.id)
  );
}

/** Puts a new lease at the head of every cached first page it belongs in, keeping the page's size. */
export function insertLease(cache: Cache, lease: LeaseLike) {
  for (const field of cache.inspectFields('Query')) {
    if (field.fieldName !== 'leases') continue;
    const args = (field.arguments ?? {}) as LeaseListQueryVariables;
    if (!belongs(lease, args)) continue;
    for (const query of [LeaseListQuery, MyLeasesQuery] as unknown as DocumentNode[]) {
      cache.updateQuery({ query, variables: args as Variables }, (data) => {
        const page = data as unknown as ListPage | null;
        if (!page?.leases || page.leases.edges.some((e) => e.node.id === lease.id)) return data;
        const size = args.first ?? 50;
        const edges = [{ __typename: 'LeaseEdge', cursor: lease.cursor, node: lease }, ...page.leases.edges];
        const trimmed = edges.length > size;
        const kept = edges.slice(0, size);
        page.leases = {
          ...page.leases,
          // An estimate (or the count's cap) stays as the server gave it.
          totalCount: page.leases.totalCount + (page.leases.totalCountIsEstimate ? 0 : 1),
          edges: kept,
          pageInfo: {
            ...page.leases.pageInfo,
            hasNextPage: page.leases.pageInfo.hasNextPage || trimmed,
            startCursor: kept[0]?.cursor ?? null,
            endCursor: kept.at(-1)?.cursor ?? null,
          },
        };
        return page as unknown as Data;
      });
    }
  }
}

/** How entities are told apart: by id (the default), or embedded in their parent. */
const KEYS: KeyingConfig = {
  PageInfo: embedded,
  AuditEntryConnection: embedded,
  AuditEntryEdge: embedded,
  LeaseConnection: embedded,
  LeaseEdge: embedded,
  ManagedKeyConnection: embedded,
  ManagedKeyEdge: embedded,
  UserConnection: embedded,
  UserEdge: embedded,
  UsageRecordConnection: embedded,
  UsageRecordEdge: embedded,
  ProviderJobConnection: embedded,
  ProviderJobEdge: embedded,
  // A lease's minted key has no id of its own in the API: it lives inside its lease.
  MintedKey: embedded,
  KeyUsage: embedded,
  ProviderUsage: embedded,
  PoolSummary: embedded,
  KeyCount: embedded,
  LeaseCount: embedded,
  SpendPoint: embedded,
  UsageReport: embedded,
  ResolvedLease: embedded,
  TierPolicy: (policy) => policy.tier as string,
  LeaseEvent: (event) => event.cursor as string,
};

/** A fresh cache per session: nothing one sign-in read is shown to the next. */
export const createCache = () =>
  cacheExchange({
    keys: KEYS,
    updates: {
      Subscription: {
        leaseEvents(result, _args, cache) {
          const event = result.leaseEvents as { type: string; lease: LeaseLike } | undefined;
          if (event?.type === 'GRANTED') insertLease(cache, event.lease);
        },
      },
      Mutation: {
        requestLease(result, _args, cache) {
          const lease = result.requestLease as LeaseLike | undefined;
          if (lease) insertLease(cache, lease);
        },
        // A new key: the key lists are asked again (a key is rare; its place in a list is the server's).
        createManagedKey(_result, _args, cache) {
          for (const field of cache.inspectFields('Query')) {
            if (field.fieldName === 'managedKeys') cache.invalidate('Query', field.fieldName, field.arguments);
          }
        },
      },
    },
  });
