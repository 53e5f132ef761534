// GraphQL face of the key registry: types and operations, each calling the key service.
import { builder, KeyMode, KeyStatus, Provider } from '../graphql/builder.js';
import { connectionOf, pageArgs } from '../graphql/connection.js';
import type { KeyService } from './service.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    keys: KeyService;
  }
}

export const ManagedKey = builder.prismaObject('ManagedKey', {
  description: 'A provider API key in the pool. The secret itself is never returned: only `maskedKey`.',
  fields: (t) => ({
    id: t.exposeID('id'),
    provider: t.field({ type: Provider, resolve: (k) => k.provider }),
    label: t.exposeString('label'),
    maskedKey: t.exposeString('maskedKey'),
    baseUrl: t.exposeString('baseUrl'),
    defaultModel: t.exposeString('defaultModel', { nullable: true }),
    fallbackModels: t.exposeStringList('fallbackModels'),
    config: t.field({ type: 'JSON', resolve: (k) => k.config }),
    dailyLimitUsd: t.expose('dailyLimitUsd', { type: 'Decimal', nullable: true }),
    monthlyLimitUsd: t.expose('monthlyLimitUsd', { type: 'Decimal', nullable: true }),
    maxActiveLeases: t.exposeInt('maxActiveLeases', { nullable: true }),
    status: t.field({ type: KeyStatus, resolve: (k) => k.status }),
    disabledReason: t.exposeString('disabledReason', { nullable: true }),
    activeLeaseCount: t.exposeInt('activeLeaseCount'),
    mode: t.field({ type: KeyMode, resolve: (k) => k.mode }),
    maxMintedKeys: t.exposeInt('maxMintedKeys', {
      nullable: true,
      description: 'MINT keys: how many minted keys may exist at once; null = no cap.',
    }),
    mintedKeyCount: t.exposeInt('mintedKeyCount', {
      description: 'MINT keys: minted keys not yet confirmed gone at the provider (pending ones included).',
    }),
    spendTodayUsd: t.field({ type: 'Decimal', resolve: (k, _, ctx) => ctx.services.keys.spendOf(k).today }),
    spendThisMonthUsd: t.field({ type: 'Decimal', resolve: (k, _, ctx) => ctx.services.keys.spendOf(k).month }),
    remainingTodayUsd: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'What the daily limit still allows today (UTC); null without a limit.',
      resolve: (k, _, ctx) => ctx.services.keys.spendOf(k).remainingToday,
    }),
    remainingThisMonthUsd: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'What the monthly limit still allows this month (UTC); null without a limit.',
      resolve: (k, _, ctx) => ctx.services.keys.spendOf(k).remainingThisMonth,
    }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ManagedKeyConnection = connectionOf('ManagedKey', ManagedKey);

const CreateManagedKeyInput = builder.inputType('CreateManagedKeyInput', {
  fields: (t) => ({
    provider: t.field({ type: Provider, required: true }),
    label: t.string({ required: true }),
    apiKey: t.string({ required: true }),
    baseUrl: t.string(),
    defaultModel: t.string(),
    fallbackModels: t.stringList(),
    config: t.field({
      type: 'JSON',
      description:
        '{ frameworks?: { OPENCLAW|ELIZA|GENERIC: object }, prices?: { model: { prompt, completion } }, ' +
        'delivery?: PROXY|DIRECT }',
    }),
    dailyLimitUsd: t.field({ type: 'Decimal' }),
    monthlyLimitUsd: t.field({ type: 'Decimal' }),
    maxActiveLeases: t.int(),
    mode: t.field({
      type: KeyMode,
      description:
        'SHARED by default. MINT: apiKey is an OpenRouter management key or a Venice ADMIN key, and every ' +
        'lease gets a provider key of its own.',
    }),
    maxMintedKeys: t.int({ description: 'MINT keys: minted keys at once (Venice: 500 unless given; else no cap).' }),
  }),
});

const UpdateManagedKeyInput = builder.inputType('UpdateManagedKeyInput', {
  description: 'Only the fields given change; null clears a limit, the default model or the lease cap.',
  fields: (t) => ({
    label: t.string(),
    baseUrl: t.string(),
    defaultModel: t.string(),
    fallbackModels: t.stringList(),
    config: t.field({ type: 'JSON' }),
    dailyLimitUsd: t.field({ type: 'Decimal' }),
    monthlyLimitUsd: t.field({ type: 'Decimal' }),
    maxActiveLeases: t.int(),
    maxMintedKeys: t.int(),
  }),
});

builder.queryFields((t) => ({
  managedKeys: t.field({
    type: ManagedKeyConnection,
    args: { ...pageArgs, provider: t.arg({ type: Provider }), status: t.arg({ type: KeyStatus }) },
    resolve: (_, args, ctx) => ctx.services.keys.list(ctx.identity, args),
  }),
  managedKey: t.field({
    type: ManagedKey,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.keys.get(ctx.identity, id),
  }),
}));

builder.mutationFields((t) => ({
  createManagedKey: t.field({
    type: ManagedKey,
    args: { input: t.arg({ type: CreateManagedKeyInput, required: true }) },
    resolve: (_, { input }, ctx) => ctx.services.keys.create(ctx.identity, input),
  }),
  updateManagedKey: t.field({
    type: ManagedKey,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateManagedKeyInput, required: true }) },
    resolve: (_, { id, input }, ctx) => ctx.services.keys.update(ctx.identity, id, input),
  }),
  enableManagedKey: t.field({
    type: ManagedKey,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.keys.enable(ctx.identity, id),
  }),
  disableManagedKey: t.field({
    type: ManagedKey,
    description:
      'Disables the key and revokes its active and suspended leases with the reason ' +
      '(in one transaction, by the leases).',
    args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
    resolve: (_, { id, reason }, ctx) => ctx.services.leases.disableKey(ctx.identity, id, reason),
  }),
  rotateManagedKeySecret: t.field({
    type: ManagedKey,
    args: { id: t.arg.id({ required: true }), apiKey: t.arg.string({ required: true }) },
    resolve: (_, { id, apiKey }, ctx) => ctx.services.keys.rotateSecret(ctx.identity, id, apiKey),
  }),
}));

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    keyUsage: import('./usage-feed.js').KeyUsageFeed;
  }
}

const KeyUsage = builder.objectRef<import('../db/client.js').ManagedKey>('KeyUsage').implement({
  description: "A key's load and spend, pushed when they change (at most 4 times a second per key).",
  fields: (t) => ({
    key: t.field({ type: ManagedKey, resolve: (k) => k }),
    activeLeaseCount: t.exposeInt('activeLeaseCount'),
    spendTodayUsd: t.field({ type: 'Decimal', resolve: (k, _, ctx) => ctx.services.keys.spendOf(k).today }),
    spendThisMonthUsd: t.field({ type: 'Decimal', resolve: (k, _, ctx) => ctx.services.keys.spendOf(k).month }),
  }),
});

builder.subscriptionFields((t) => ({
  keyUsage: t.field({
    type: KeyUsage,
    description: 'One key (its current state first, then changes), or every key that changes.',
    args: { keyId: t.arg.id() },
    subscribe: (_, { keyId }, ctx) => ctx.services.keyUsage.keyUsage(ctx.identity, keyId ?? null),
    resolve: (key) => key,
  }),
}));

const ProviderUsage = builder.objectRef<import('../db/client.js').ManagedKey>('ProviderUsage').implement({
  description: "What the provider reports for the key (reconciliation job), and how far MPK's metering is from it.",
  fields: (t) => ({
    checkedAt: t.field({ type: 'DateTime', nullable: true, resolve: (k) => k.providerCheckedAt }),
    error: t.string({ nullable: true, description: 'Why the last check failed.', resolve: (k) => k.providerError }),
    usageTodayUsd: t.field({ type: 'Decimal', nullable: true, resolve: (k) => k.providerUsageDailyUsd }),
    usageThisMonthUsd: t.field({ type: 'Decimal', nullable: true, resolve: (k) => k.providerUsageMonthlyUsd }),
    limitUsd: t.field({ type: 'Decimal', nullable: true, resolve: (k) => k.providerLimitUsd }),
    limitRemainingUsd: t.field({ type: 'Decimal', nullable: true, resolve: (k) => k.providerLimitRemainingUsd }),
    balanceUsd: t.field({ type: 'Decimal', nullable: true, resolve: (k) => k.providerBalanceUsd }),
    driftTodayUsd: t.field({
      type: 'Decimal',
      nullable: true,
      description: "The provider's figure for today minus MPK's (positive: spend MPK did not meter).",
      resolve: (k, _, ctx) =>
        k.providerUsageDailyUsd === null ? null : k.providerUsageDailyUsd.minus(ctx.services.keys.spendOf(k).today),
    }),
    driftThisMonthUsd: t.field({
      type: 'Decimal',
      nullable: true,
      resolve: (k, _, ctx) =>
        k.providerUsageMonthlyUsd === null ? null : k.providerUsageMonthlyUsd.minus(ctx.services.keys.spendOf(k).month),
    }),
  }),
});

builder.objectField(ManagedKey, 'providerUsage', (t) =>
  t.field({
    type: ProviderUsage,
    nullable: true,
    description:
      "Null until the provider has been asked, and always on a MINT key: its leases' spend lands on their minted keys, read per lease (Lease.mintedKey.providerUsageUsd, driftUsd).",
    resolve: (k) => (k.providerCheckedAt ? k : null),
  }),
);
