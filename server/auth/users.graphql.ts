// The caller's own user record.
import { builder, Role, Tier } from '../graphql/builder.js';
import type { UserService } from './users.js';

declare module '../graphql/context.js' {
  interface ServiceRegistry {
    users: UserService;
  }
}

export const User = builder.prismaObject('User', {
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email', { nullable: true }),
    role: t.field({ type: Role, resolve: (u) => u.role }),
    tier: t.field({ type: Tier, resolve: (u) => u.tier }),
    activeLeaseCount: t.exposeInt('activeLeaseCount'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  me: t.field({
    type: User,
    description: 'The caller, as known to MPK (created on first sight with tier FREE).',
    resolve: (_, __, ctx) => ctx.services.users.me(ctx.identity),
  }),
}));
