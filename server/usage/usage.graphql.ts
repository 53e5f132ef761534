// GraphQL face of metering: workers report usage; admins set a lease's cap.
import { builder } from '../graphql/builder.js';
import { Lease } from '../leases/leases.graphql.js';
import type { UsageService } from './service.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    usage: UsageService;
  }
}

const UsageReport = builder.objectRef<{ lease: import('../db/client.js').Lease; duplicate: boolean }>('UsageReport').implement({
  fields: (t) => ({
    lease: t.field({ type: Lease, resolve: (r) => r.lease }),
    duplicate: t.exposeBoolean('duplicate', { description: 'This requestId was already reported for the lease: counted once.' }),
  }),
});

const ReportUsageInput = builder.inputType('ReportUsageInput', {
  fields: (t) => ({
    leaseId: t.id({ required: true }),
    requestId: t.string({ required: true, description: 'Unique per lease: a report repeated with the same id counts once.' }),
    costUsd: t.field({ type: 'Decimal', required: true }),
    model: t.string(),
    promptTokens: t.int(),
    completionTokens: t.int(),
  }),
});

builder.mutationFields((t) => ({
  reportUsage: t.field({
    type: UsageReport,
    description: 'For workers whose agents call the provider directly with the resolved key.',
    args: { input: t.arg({ type: ReportUsageInput, required: true }) },
    resolve: (_, { input }, ctx) => ctx.services.usage.report(ctx.identity, { ...input, leaseId: String(input.leaseId) }),
  }),
  updateLeaseCap: t.field({
    type: Lease,
    description: 'Sets the lease’s spend cap; a suspended lease under its new cap becomes ACTIVE again.',
    args: { id: t.arg.id({ required: true }), spendCapUsd: t.arg({ type: 'Decimal', required: true }) },
    resolve: (_, { id, spendCapUsd }, ctx) => ctx.services.usage.updateLeaseCap(ctx.identity, String(id), spendCapUsd),
  }),
}));
