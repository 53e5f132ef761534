// GraphQL face of minted keys: a lease's minted key (masked), the provider job queue and its retry.
import { authorize } from '../auth/permissions.js';
import { MINTED_KEY_STATUSES, PROVIDER_JOB_KINDS, PROVIDER_JOB_STATUSES } from '../db/enums.js';
import { builder } from '../graphql/builder.js';
import { connectionOf, pageArgs } from '../graphql/connection.js';
import { ManagedKey } from '../keys/keys.graphql.js';
import { Lease } from '../leases/leases.graphql.js';
import type { MintingService } from './service.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    minting: MintingService;
  }
}

const MintedKeyStatus = builder.enumType('MintedKeyStatus', { values: MINTED_KEY_STATUSES });
const ProviderJobKind = builder.enumType('ProviderJobKind', { values: PROVIDER_JOB_KINDS });
const ProviderJobStatus = builder.enumType('ProviderJobStatus', { values: PROVIDER_JOB_STATUSES });

const MintedKey = builder.prismaObject('MintedKey', {
  description:
    'A provider key minted for one lease on a MINT key. Its secret is never returned here: only `maskedKey` ' +
    '(resolveLease hands the secret to the worker).',
  fields: (t) => ({
    status: t.field({ type: MintedKeyStatus, resolve: (m) => m.status }),
    maskedKey: t.exposeString('maskedKey', { nullable: true, description: 'Null until the key is created.' }),
    providerKeyId: t.exposeString('providerKeyId', {
      nullable: true,
      description: "The provider's id for the key (OpenRouter's hash, Venice's id); null until created.",
    }),
    name: t.exposeString('name'),
    limitUsd: t.expose('limitUsd', {
      type: 'Decimal',
      nullable: true,
      description: 'The provider-side spend limit MPK sets (the lease cap, within the key window).',
    }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'The provider-side expiry MPK sets.' }),
    providerCreatedAt: t.expose('providerCreatedAt', { type: 'DateTime', nullable: true }),
    deletedAt: t.expose('deletedAt', { type: 'DateTime', nullable: true }),
    providerUsageUsd: t.expose('providerUsageUsd', {
      type: 'Decimal',
      nullable: true,
      description:
        "What the provider says this lease's provider keys spent, at `providerCheckedAt` (reconciliation, and " +
        "a final reading just before an ended lease's key is deleted). Venice reports the last seven days only.",
    }),
    providerCheckedAt: t.expose('providerCheckedAt', { type: 'DateTime', nullable: true }),
    providerError: t.exposeString('providerError', {
      nullable: true,
      description: "Why the last reading failed, in MPK's words; null after a good one.",
    }),
    driftUsd: t.field({
      type: 'Decimal',
      nullable: true,
      description:
        '`providerUsageUsd` less what MPK metered on the lease up to `providerCheckedAt` (provider minus MPK, as ' +
        "the keys' drift): positive when the provider counted spend MPK did not meter. Null before a reading, and " +
        "on Venice once the key is older than the seven days Venice's figure covers.",
      resolve: (m, _, ctx) => ctx.services.minting.driftOf(m),
    }),
  }),
});

builder.objectField(Lease, 'mintedKey', (t) =>
  t.field({
    type: MintedKey,
    nullable: true,
    description: "The lease's own provider key, on a MINT key (admins, observers and workers); null on a SHARED key.",
    resolve: (lease, _, ctx) => {
      authorize(ctx.identity, 'Lease.mintedKey');
      return ctx.services.minting.mintedKeyOf(lease);
    },
  }),
);

const ProviderJob = builder.prismaObject('ProviderJob', {
  description: "A call to a provider's key-management API on a minted key, queued with the lease change that needs it.",
  fields: (t) => ({
    id: t.id({ resolve: (j) => String(j.id) }),
    kind: t.field({ type: ProviderJobKind, resolve: (j) => j.kind }),
    status: t.field({ type: ProviderJobStatus, resolve: (j) => j.status }),
    attempts: t.exposeInt('attempts'),
    runAfter: t.expose('runAfter', { type: 'DateTime', description: 'Not run before this time (backoff, rate).' }),
    lastError: t.exposeString('lastError', {
      nullable: true,
      description: "Why the last try failed, in MPK's words (never the provider's answer).",
    }),
    leaseId: t.exposeID('leaseId'),
    keyId: t.exposeID('mintingKeyId', { description: 'The minting key.' }),
    lease: t.field({
      type: Lease,
      nullable: true,
      resolve: (j, _, ctx) => ctx.services.leases.leaseById(j.leaseId),
    }),
    key: t.field({
      type: ManagedKey,
      nullable: true,
      resolve: (j, _, ctx) => ctx.services.keys.get(ctx.identity, j.mintingKeyId),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ProviderJobConnection = connectionOf('ProviderJob', ProviderJob);

builder.queryFields((t) => ({
  providerJobs: t.field({
    type: ProviderJobConnection,
    description: 'The provider job queue, newest first; by minting key, lease or status.',
    args: {
      ...pageArgs,
      keyId: t.arg.id(),
      leaseId: t.arg.id(),
      status: t.arg({ type: ProviderJobStatus }),
    },
    resolve: (_, args, ctx) => ctx.services.minting.jobs(ctx.identity, args),
  }),
}));

builder.mutationFields((t) => ({
  retryProviderJob: t.field({
    type: ProviderJob,
    description: 'Puts an IRRECOVERABLE job back in the queue, due now, its tries counted afresh.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.minting.retry(ctx.identity, String(id)),
  }),
}));
