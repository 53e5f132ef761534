// GraphQL face of the lease event log: the live stream, its recent past, and a lease's history.

import { builder, LeaseEventType } from '../graphql/builder.js';
import { Lease } from '../leases/leases.graphql.js';
import type { LiveEvents } from './live.js';
import { encodeEventCursor, type LoggedEvent } from './log.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    live: LiveEvents;
  }
}

const LeaseEvent = builder.objectRef<LoggedEvent>('LeaseEvent').implement({
  description: 'One entry of the durable lease event log. `stopAgent` is true for the events that end a lease.',
  fields: (t) => ({
    cursor: t.string({
      description: 'Pass as `after` to resume right after this event.',
      resolve: (e) => encodeEventCursor(e),
    }),
    type: t.field({ type: LeaseEventType, resolve: (e) => e.type }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
    leaseId: t.id({ resolve: (e) => e.leaseId }),
    keyId: t.id({ resolve: (e) => e.keyId }),
    userId: t.id({ resolve: (e) => e.userId }),
    agentId: t.string({ nullable: true, resolve: (e) => e.agentId }),
    stopAgent: t.boolean({ resolve: (e) => e.stopAgent }),
    details: t.field({ type: 'JSON', resolve: (e) => e.details }),
    lease: t.field({
      type: Lease,
      description: 'The lease as it is now.',
      resolve: async (e, _, ctx) => (await ctx.services.leases.leaseById(e.leaseId))!,
    }),
  }),
});

builder.queryFields((t) => ({
  recentLeaseEvents: t.field({
    type: [LeaseEvent],
    description:
      'The newest lease events, newest first (20 by default, 200 at most): where a live feed starts. ' +
      'Users see their own.',
    args: { first: t.arg.int(), keyId: t.arg.id(), userId: t.arg.id(), types: t.arg({ type: [LeaseEventType] }) },
    resolve: (_, args, ctx) => ctx.services.live.recent(ctx.identity, args),
  }),
}));

builder.subscriptionFields((t) => ({
  leaseEvents: t.field({
    type: LeaseEvent,
    description:
      'Lease events, live; with `after`, first every event since that cursor. Users hear only their own leases. ' +
      'A cursor older than retention kept (MPK_RETAIN_EVENTS_DAYS) is refused with CURSOR_EXPIRED: read the ' +
      'leases again, then subscribe without `after`.',
    args: {
      after: t.arg.string(),
      keyId: t.arg.id(),
      userId: t.arg.id(),
      types: t.arg({ type: [LeaseEventType] }),
    },
    subscribe: (_, args, ctx) => ctx.services.live.leaseEvents(ctx.identity, args),
    resolve: (e) => e,
  }),
}));

builder.objectField(Lease, 'events', (t) =>
  t.loadableList({
    type: LeaseEvent,
    description: "The lease's newest events, newest first (50 by default, 200 at most).",
    args: { first: t.arg.int(), types: t.arg({ type: [LeaseEventType] }) },
    // One loader per place in the query, so that every lease in a list shares the arguments;
    // not cached, because a subscription keeps its context while the history grows.
    byPath: true,
    loaderOptions: { cache: false },
    load: (ids: string[], ctx, args) => ctx.services.live.histories(ids, args),
    resolve: (lease) => lease.id,
  }),
);
