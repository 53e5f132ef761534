// Users are known by their token's subject and get a row (tier FREE) on first sight.
import { pageOf, timeKeyset, type PageRequest } from '../core/paging.js';
import { filterText } from '../core/text.js';
import type { Db, Prisma, User } from '../db/client.js';
import type { Identity, Role } from './authenticator.js';
import { requireRole } from './authenticator.js';

export interface UserFilter extends PageRequest {
  /** Part of a user id or email, any case. */
  search?: string | null;
  tier?: 'FREE' | 'PRO' | 'ENTERPRISE' | null;
  role?: Role | null;
}

export function createUserService(deps: { db: Db }) {
  const { db } = deps;
  return {
    /** The caller's row, created on first sight; role and email follow the latest token. */
    async me(actor: Identity | null) {
      const identity = requireRole(actor, 'ADMIN', 'USER', 'WORKER', 'OBSERVER');
      return db.user.upsert({
        where: { id: identity.userId },
        create: { id: identity.userId, email: identity.email ?? null, role: identity.role },
        update: { email: identity.email ?? null, role: identity.role },
      });
    },

    /** Every user MPK knows, newest first, for admins and observers. */
    async list(actor: Identity | null, filter: UserFilter) {
      requireRole(actor, 'ADMIN', 'OBSERVER');
      const search = filterText(filter.search, 'search', 200);
      const where: Prisma.UserWhereInput = {
        ...(search ? { OR: [{ id: { contains: search, mode: 'insensitive' } }, { email: { contains: search, mode: 'insensitive' } }] } : {}),
        ...(filter.tier ? { tier: filter.tier } : {}),
        ...(filter.role ? { role: filter.role } : {}),
      };
      return pageOf(filter, {
        keyset: timeKeyset('createdAt'),
        positionOf: (u: User) => ({ at: u.createdAt, id: u.id }),
        fetch: (cursor, take) => db.user.findMany({ where: { AND: [where, cursor.where ?? {}] }, orderBy: cursor.orderBy, take }),
        count: () => db.user.count({ where }),
      });
    },
  };
}
export type UserService = ReturnType<typeof createUserService>;
