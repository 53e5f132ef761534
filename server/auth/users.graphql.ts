// Users: the caller's own record, and the list admins and observers page through.
import { builder, Role, Tier } from '../graphql/builder.js';
import { connectionOf, pageArgs } from '../graphql/connection.js';
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

const UserConnection = connectionOf('User', User);

const UserFilter = builder.inputType('UserFilter', {
  fields: (t) => ({
    search: t.string({ description: 'Part of the user id or email, any case.' }),
    tier: t.field({ type: Tier }),
    role: t.field({ type: Role }),
  }),
});

builder.queryFields((t) => ({
  me: t.field({
    type: User,
    description: 'The caller, as known to MPK (created on first sight with tier FREE).',
    resolve: (_, __, ctx) => ctx.services.users.me(ctx.identity),
  }),
  users: t.field({
    type: UserConnection,
    description: 'Every user MPK knows, newest first (admins and observers).',
    args: { ...pageArgs, filter: t.arg({ type: UserFilter }) },
    resolve: (_, { filter, ...page }, ctx) => ctx.services.users.list(ctx.identity, { ...page, ...filter }),
  }),
}));
