// GraphQL face of leases, tier policies and the pool's summary.
import { User } from '../auth/users.graphql.js';
import { encodeCursor } from '../core/paging.js';
import { builder, Framework, KeyStatus, LeaseStatus, Provider, Tier } from '../graphql/builder.js';
import { connectionOf, pageArgs } from '../graphql/connection.js';
import { ManagedKey } from '../keys/keys.graphql.js';
import type { TierPolicyService } from './policies.js';
import type { LeaseService } from './service.js';
import type { PoolSummaryService } from './summary.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    leases: LeaseService;
    tierPolicies: TierPolicyService;
    pool: PoolSummaryService;
  }
}

export const Lease = builder.prismaObject('Lease', {
  fields: (t) => ({
    id: t.exposeID('id'),
    cursor: t.string({
      description:
        "The lease's edge cursor in `leases` lists: a live client that hears of a new lease puts it in place with it.",
      resolve: (l) => encodeCursor({ at: l.grantedAt, id: l.id }),
    }),
    status: t.field({ type: LeaseStatus, resolve: (l) => l.status }),
    tier: t.field({ type: Tier, resolve: (l) => l.tier }),
    provider: t.field({ type: Provider, resolve: (l) => l.provider }),
    framework: t.field({ type: Framework, resolve: (l) => l.framework }),
    agentId: t.exposeString('agentId', { nullable: true }),
    user: t.field({ type: User, resolve: async (l, _, ctx) => (await ctx.services.leases.userOf(l))! }),
    key: t.field({
      type: ManagedKey,
      nullable: true,
      description: 'The key the lease draws on (admins, observers and workers).',
      resolve: (l, _, ctx) => ctx.services.leases.keyOf(ctx.identity, l),
    }),
    grantedAt: t.expose('grantedAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    endedAt: t.expose('endedAt', { type: 'DateTime', nullable: true }),
    endReason: t.exposeString('endReason', { nullable: true }),
    usageUsd: t.expose('usageUsd', { type: 'Decimal' }),
    requestCount: t.exposeInt('requestCount'),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    spendCapUsd: t.expose('spendCapUsd', { type: 'Decimal' }),
  }),
});

const LeaseConnection = connectionOf('Lease', Lease);

const TierPolicy = builder.prismaObject('TierPolicy', {
  fields: (t) => ({
    tier: t.field({ type: Tier, resolve: (p) => p.tier }),
    leaseDurationSeconds: t.exposeInt('leaseDurationSeconds'),
    maxActiveLeases: t.exposeInt('maxActiveLeases'),
    spendCapUsd: t.expose('spendCapUsd', { type: 'Decimal' }),
    requestsPerMinute: t.exposeInt('requestsPerMinute', {
      nullable: true,
      description:
        'Requests per minute each lease of the tier may send through the metering proxy (per server ' +
        'instance; over it, HTTP 429 with Retry-After). Null: no limit.',
    }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

type Resolved = Awaited<ReturnType<LeaseService['resolve']>>;
const ResolvedLease = builder.objectRef<Resolved>('ResolvedLease').implement({
  description: 'What a worker needs to start an agent. `apiKey` is the only place a provider key is ever returned.',
  fields: (t) => ({
    lease: t.field({ type: Lease, resolve: (r) => r.lease }),
    apiKey: t.exposeString('apiKey'),
    baseUrl: t.exposeString('baseUrl'),
    model: t.exposeString('model'),
    fallbackModels: t.exposeStringList('fallbackModels'),
    agentConfig: t.field({
      type: 'JSON',
      description: "The framework's config, with the key's overrides merged in.",
      resolve: (r) => r.agentConfig,
    }),
    env: t.field({
      type: 'JSON',
      description: 'Environment variables to inject into the agent.',
      resolve: (r) => r.env,
    }),
  }),
});

const RequestLeaseInput = builder.inputType('RequestLeaseInput', {
  fields: (t) => ({
    provider: t.field({ type: Provider, description: 'OPENROUTER by default.' }),
    framework: t.field({ type: Framework, description: 'OPENCLAW by default.' }),
    agentId: t.string({ description: 'Asking again for an agent that holds an active lease returns that lease.' }),
  }),
});

const TierPolicyInput = builder.inputType('TierPolicyInput', {
  fields: (t) => ({
    leaseDurationSeconds: t.int(),
    maxActiveLeases: t.int(),
    spendCapUsd: t.field({ type: 'Decimal' }),
    requestsPerMinute: t.int({ description: 'Null clears the limit; absent leaves it as it is.' }),
  }),
});

builder.queryFields((t) => ({
  leases: t.field({
    type: LeaseConnection,
    description: 'Newest first. A user sees only their own leases.',
    args: {
      ...pageArgs,
      status: t.arg({ type: LeaseStatus }),
      keyId: t.arg.id(),
      userId: t.arg.id(),
      agentId: t.arg.string(),
      tier: t.arg({ type: Tier }),
      provider: t.arg({ type: Provider }),
      framework: t.arg({ type: Framework }),
    },
    resolve: (_, args, ctx) => ctx.services.leases.list(ctx.identity, args),
  }),
  lease: t.field({
    type: Lease,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.leases.get(ctx.identity, id),
  }),
  tierPolicies: t.field({ type: [TierPolicy], resolve: (_, __, ctx) => ctx.services.tierPolicies.list(ctx.identity) }),
  resolveLease: t.field({
    type: ResolvedLease,
    description:
      'For workers, before every agent start: by lease id, or by the agent id of an active lease with its ' +
      "user's id (agent ids are unique per user only). A userId given with leaseId must be the lease's.",
    args: { leaseId: t.arg.id(), agentId: t.arg.string(), userId: t.arg.id() },
    resolve: (_, args, ctx) => ctx.services.leases.resolve(ctx.identity, args),
  }),
}));

builder.mutationFields((t) => ({
  requestLease: t.field({
    type: Lease,
    args: { input: t.arg({ type: RequestLeaseInput, required: true }) },
    resolve: (_, { input }, ctx) => ctx.services.leases.request(ctx.identity, input),
  }),
  releaseLease: t.field({
    type: Lease,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.leases.release(ctx.identity, id),
  }),
  extendLease: t.field({
    type: Lease,
    args: { id: t.arg.id({ required: true }), bySeconds: t.arg.int({ required: true }), reactivate: t.arg.boolean() },
    resolve: (_, { id, bySeconds, reactivate }, ctx) =>
      ctx.services.leases.extend(ctx.identity, id, bySeconds, reactivate ?? false),
  }),
  revokeLease: t.field({
    type: Lease,
    args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
    resolve: (_, { id, reason }, ctx) => ctx.services.leases.revoke(ctx.identity, id, reason),
  }),
  updateLeaseCap: t.field({
    type: Lease,
    description: 'Sets the lease’s spend cap; a suspended lease under its new cap becomes ACTIVE again.',
    args: { id: t.arg.id({ required: true }), spendCapUsd: t.arg({ type: 'Decimal', required: true }) },
    resolve: (_, { id, spendCapUsd }, ctx) => ctx.services.leases.updateCap(ctx.identity, id, spendCapUsd),
  }),
  setUserTier: t.field({
    type: User,
    args: { userId: t.arg.id({ required: true }), tier: t.arg({ type: Tier, required: true }) },
    resolve: (_, { userId, tier }, ctx) => ctx.services.tierPolicies.setUserTier(ctx.identity, String(userId), tier),
  }),
  updateTierPolicy: t.field({
    type: TierPolicy,
    args: { tier: t.arg({ type: Tier, required: true }), input: t.arg({ type: TierPolicyInput, required: true }) },
    resolve: (_, { tier, input }, ctx) => ctx.services.tierPolicies.update(ctx.identity, tier, input),
  }),
}));

const KeyCount = builder.objectRef<{ provider: string; status: string; count: number }>('KeyCount').implement({
  fields: (t) => ({
    provider: t.field({ type: Provider, resolve: (c) => c.provider as never }),
    status: t.field({ type: KeyStatus, resolve: (c) => c.status as never }),
    count: t.exposeInt('count'),
  }),
});

const LeaseCount = builder.objectRef<{ tier: string; status: string; count: number }>('LeaseCount').implement({
  fields: (t) => ({
    tier: t.field({ type: Tier, resolve: (c) => c.tier as never }),
    status: t.field({ type: LeaseStatus, resolve: (c) => c.status as never }),
    count: t.exposeInt('count'),
  }),
});

const PoolSummary = builder.objectRef<import('./summary.js').PoolSummary>('PoolSummary').implement({
  description: 'The pool at a glance. Spend windows are the current UTC day and month.',
  fields: (t) => ({
    keyCounts: t.field({
      type: [KeyCount],
      description: 'Keys by provider and status (combinations with none left out).',
      resolve: (s) => s.keyCounts,
    }),
    leaseCounts: t.field({
      type: [LeaseCount],
      description: 'ACTIVE and SUSPENDED leases by tier.',
      resolve: (s) => s.leaseCounts,
    }),
    spendTodayUsd: t.field({ type: 'Decimal', resolve: (s) => s.spendTodayUsd }),
    spendThisMonthUsd: t.field({ type: 'Decimal', resolve: (s) => s.spendThisMonthUsd }),
    dailyLimitUsd: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'Summed over ACTIVE keys with a daily limit; null when none has one.',
      resolve: (s) => s.dailyLimitUsd,
    }),
    monthlyLimitUsd: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'Summed over ACTIVE keys with a monthly limit.',
      resolve: (s) => s.monthlyLimitUsd,
    }),
    keysWithoutDailyLimit: t.exposeInt('keysWithoutDailyLimit', { description: 'ACTIVE keys with no daily limit.' }),
    keysWithoutMonthlyLimit: t.exposeInt('keysWithoutMonthlyLimit'),
    keysNearLimit: t.field({
      type: [ManagedKey],
      description:
        'ACTIVE keys at or above `nearLimitShare` of their daily or monthly limit, fullest first (50 at most).',
      resolve: (s) => s.keysNearLimit,
    }),
    nearLimitShare: t.exposeFloat('nearLimitShare'),
  }),
});

builder.queryFields((t) => ({
  poolSummary: t.field({
    type: PoolSummary,
    description: 'Keys, leases and spend of the whole pool (admins and observers).',
    resolve: (_, __, ctx) => ctx.services.pool.summary(ctx.identity),
  }),
}));
