// Users are known by their token's subject and get a row (tier FREE) on first sight.
import type { Db } from '../db/client.js';
import type { Identity } from './authenticator.js';
import { requireRole } from './authenticator.js';

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
  };
}
export type UserService = ReturnType<typeof createUserService>;
