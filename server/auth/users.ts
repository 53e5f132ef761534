// Users are known by their token's subject and get a row (tier FREE) on first sight.

import type { Clock } from '../core/clock.js';
import type { Identity, Role } from '../core/identity.js';
import { type PageRequest, pageOfModel, timeKeyset } from '../core/paging.js';
import { filterText } from '../core/text.js';
import type { Db, Prisma, User } from '../db/client.js';
import { estimatedRows } from '../db/estimate.js';
import { authorize } from './permissions.js';

export interface UserFilter extends PageRequest {
  /** Part of a user id or email, any case. */
  search?: string | null;
  tier?: 'FREE' | 'PRO' | 'ENTERPRISE' | null;
  role?: Role | null;
}

export function createUserService(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;
  return {
    /**
     * The caller's row, created on first sight; the role follows the latest token, and so does the
     * email unless the token has none (the rule is mpk_see_user, which grants apply too).
     */
    async me(actor: Identity | null) {
      const identity = authorize(actor, 'me');
      const [user] = await db.$queryRaw<User[]>`
        SELECT *
        FROM mpk_see_user(${identity.userId}, ${identity.email ?? null}, ${identity.role}::"Role",
                          ${clock.now()}::timestamp(3))`;
      return user!;
    },

    /** Every user MPK knows, newest first, for admins and observers. */
    async list(actor: Identity | null, filter: UserFilter) {
      authorize(actor, 'users');
      const search = filterText(filter.search, 'search', 200);
      const where: Prisma.UserWhereInput = {
        ...(search
          ? {
              OR: [
                { id: { contains: search, mode: 'insensitive' } },
                { email: { contains: search, mode: 'insensitive' } },
              ],
            }
          : {}),
        // Prisma leaves out a field whose filter is undefined.
        tier: filter.tier ?? undefined,
        role: filter.role ?? undefined,
      };
      return pageOfModel(filter, {
        model: db.user,
        estimateAll: () => estimatedRows(db, 'User'),
        where,
        keyset: timeKeyset('createdAt'),
        positionOf: (u: User) => ({ at: u.createdAt, id: u.id }),
      });
    },
  };
}
export type UserService = ReturnType<typeof createUserService>;
