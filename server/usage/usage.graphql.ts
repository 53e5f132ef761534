// GraphQL face of metering: workers report usage; the ledger read back as usage records, spend
// series and each user's spend this month.
import { User } from '../auth/users.graphql.js';
import { builder, Provider } from '../graphql/builder.js';
import { connectionOf, pageArgs } from '../graphql/connection.js';
import { Lease } from '../leases/leases.graphql.js';
import type { UsageHistory } from './history.js';
import { MAX_SERIES_DAYS } from './history.js';
import type { MeteredRequest, UsageService } from './service.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    usage: UsageService;
    usageHistory: UsageHistory;
  }
}

const UsageReport = builder
  .objectRef<{ lease: import('../db/client.js').Lease; duplicate: boolean }>('UsageReport')
  .implement({
    fields: (t) => ({
      lease: t.field({ type: Lease, resolve: (r) => r.lease }),
      duplicate: t.exposeBoolean('duplicate', {
        description: 'This requestId was already reported for the lease: counted once.',
      }),
    }),
  });

const ReportUsageInput = builder.inputType('ReportUsageInput', {
  fields: (t) => ({
    leaseId: t.id({ required: true }),
    requestId: t.string({
      required: true,
      description: 'Unique per lease: a report repeated with the same id counts once.',
    }),
    costUsd: t.field({ type: 'Decimal', required: true }),
    model: t.string(),
    promptTokens: t.int(),
    completionTokens: t.int(),
  }),
});

const CostSource = builder.enumType('CostSource', {
  description: "Where a request's cost came from.",
  values: {
    REPORTED: { description: 'Reported by a worker (reportUsage).' },
    PROVIDER: { description: "The provider's own figure in its response." },
    PRICE: { description: "Tokens times the key's configured prices." },
    ESTIMATED: {
      description:
        "The client left before the provider said: tokens counted from what streamed, times the key's prices.",
    },
    NONE: { description: 'No figure was available: tokens only, flagged.' },
  } as const,
});

const UsageRecord = builder.prismaObject('UsageRecord', {
  description: 'One metered request in the ledger.',
  fields: (t) => ({
    id: t.id({ resolve: (r) => r.id.toString() }),
    at: t.expose('at', { type: 'DateTime' }),
    requestId: t.exposeString('requestId', {
      description: "The worker's id (reportUsage), or MPK's own for a proxied request (x-mpk-request-id).",
    }),
    providerRequestId: t.exposeString('providerRequestId', {
      nullable: true,
      description: "The provider's id for a proxied request's answer, for reconciliation (providers may repeat it).",
    }),
    model: t.exposeString('model', { nullable: true }),
    promptTokens: t.exposeInt('promptTokens', { nullable: true }),
    completionTokens: t.exposeInt('completionTokens', { nullable: true }),
    costUsd: t.expose('costUsd', { type: 'Decimal' }),
    costSource: t.field({
      type: CostSource,
      resolve: (r) => r.costSource as MeteredRequest['costSource'],
    }),
    leaseId: t.id({ resolve: (r) => r.leaseId }),
    keyId: t.id({ resolve: (r) => r.keyId }),
  }),
});

const UsageRecordConnection = connectionOf('UsageRecord', UsageRecord);

const SpendGrouping = builder.enumType('SpendGrouping', { values: ['DAY', 'MODEL'] as const });

const SpendPoint = builder.objectRef<import('./history.js').SpendPoint>('SpendPoint').implement({
  description: 'Spend in one UTC day, or by one model, over the requested window.',
  fields: (t) => ({
    day: t.exposeString('day', { nullable: true, description: "The UTC day ('2026-11-26') of a DAY point." }),
    model: t.exposeString('model', {
      nullable: true,
      description: 'The model of a MODEL point; null for requests that named none.',
    }),
    costUsd: t.field({ type: 'Decimal', resolve: (p) => p.costUsd }),
    requests: t.exposeInt('requests'),
    promptTokens: t.exposeInt('promptTokens'),
    completionTokens: t.exposeInt('completionTokens'),
  }),
});

builder.queryFields((t) => ({
  usageRecords: t.field({
    type: UsageRecordConnection,
    description:
      "A lease's or a key's metered requests, newest first (admins, observers, workers). Users: their own leases only.",
    args: { ...pageArgs, leaseId: t.arg.id(), keyId: t.arg.id() },
    resolve: (_, args, ctx) => ctx.services.usageHistory.records(ctx.identity, args),
  }),
  spendSeries: t.field({
    type: [SpendPoint],
    description:
      `Spend over the last \`days\` UTC days (today included, ${MAX_SERIES_DAYS} at most) ` +
      `for a key, a provider or the whole pool: per day (zeros included) or per model.`,
    args: {
      keyId: t.arg.id(),
      provider: t.arg({ type: Provider }),
      days: t.arg.int({ description: '30 by default.' }),
      groupBy: t.arg({ type: SpendGrouping, description: 'DAY by default.' }),
    },
    resolve: (_, args, ctx) => ctx.services.usageHistory.spendSeries(ctx.identity, args),
  }),
}));

builder.objectField(User, 'spendThisMonthUsd', (t) =>
  t.loadable({
    type: 'Decimal',
    description: "What this user's leases have spent in the current UTC month.",
    // Not cached: a subscription keeps its context for its lifetime, and spend moves.
    loaderOptions: { cache: false },
    load: (ids: string[], ctx) => ctx.services.usageHistory.spendThisMonthByUser(ids),
    resolve: (user) => user.id,
  }),
);

builder.mutationFields((t) => ({
  reportUsage: t.field({
    type: UsageReport,
    description: 'For workers whose agents call the provider directly with the resolved key.',
    args: { input: t.arg({ type: ReportUsageInput, required: true }) },
    resolve: (_, { input }, ctx) =>
      ctx.services.usage.report(ctx.identity, { ...input, leaseId: String(input.leaseId) }),
  }),
}));
