// The audit trail, for admins and observers.
import { builder, Role } from '../graphql/builder.js';
import { connectionOf, pageArgs } from '../graphql/connection.js';
import type { AuditService } from './service.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    audit: AuditService;
  }
}

const AuditEntry = builder.prismaObject('AuditEntry', {
  fields: (t) => ({
    id: t.id({ resolve: (e) => e.id.toString() }),
    at: t.expose('at', { type: 'DateTime' }),
    actorId: t.exposeString('actorId'),
    actorRole: t.field({ type: Role, resolve: (e) => e.actorRole }),
    action: t.exposeString('action'),
    targetType: t.exposeString('targetType'),
    targetId: t.exposeString('targetId', { nullable: true }),
    details: t.field({ type: 'JSON', resolve: (e) => e.details }),
  }),
});

const AuditEntryConnection = connectionOf('AuditEntry', AuditEntry);

builder.queryFields((t) => ({
  auditLog: t.field({
    type: AuditEntryConnection,
    description: 'Every admin and worker action, newest first (admins and observers). Filters combine.',
    args: {
      ...pageArgs,
      targetId: t.arg.id({ description: 'Only entries about this target.' }),
      targetType: t.arg.string({
        description: 'Only entries about this kind of target: ManagedKey, Lease, User, TierPolicy.',
      }),
      actorId: t.arg.string({
        description: 'Only entries by this actor (a user id, or system:scheduler / system:metering).',
      }),
      action: t.arg.string({ description: 'Only this action, such as managedKey.disable or lease.revoke.' }),
    },
    resolve: (_, args, ctx) => ctx.services.audit.list(ctx.identity, args),
  }),
}));
