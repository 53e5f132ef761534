// Tier policies: lease length, agent limit (active leases), per-lease spend cap and per-lease
// request rate per tier. A change applies to new leases only (a lease keeps the tier, expiry and
// cap it was granted with), except the request rate, which every lease of the tier follows at once.
import { z } from 'zod';
import type { AuditService } from '../audit/service.js';
import { authorize } from '../auth/permissions.js';
import { badInput } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { parseUsd } from '../core/money.js';
import type { Db } from '../db/client.js';
import { TIERS, type Tier } from '../db/enums.js';
import { inTransaction } from '../db/transaction.js';

export interface TierPolicyInput {
  leaseDurationSeconds?: number | null;
  maxActiveLeases?: number | null;
  spendCapUsd?: string | null;
  /** Null clears the limit. */
  requestsPerMinute?: number | null;
}

const TEN_YEARS = 10 * 366 * 24 * 3600;
const MAX_REQUESTS_PER_MINUTE = 1_000_000;

function validate(input: TierPolicyInput) {
  const int = (field: keyof TierPolicyInput, min: number, max: number) => {
    const value = input[field];
    if (value === undefined) return undefined;
    if (value === null) throw badInput(field, `${field} cannot be cleared`);
    const parsed = z.number().int().min(min).max(max).safeParse(value);
    if (!parsed.success) throw badInput(field, `${field} must be a whole number from ${min} to ${max}`);
    return parsed.data;
  };
  if (input.spendCapUsd === null) throw badInput('spendCapUsd', 'spendCapUsd cannot be cleared');
  return {
    leaseDurationSeconds: int('leaseDurationSeconds', 60, TEN_YEARS),
    maxActiveLeases: int('maxActiveLeases', 0, 10_000),
    spendCapUsd: input.spendCapUsd === undefined ? undefined : parseUsd(input.spendCapUsd, 'spendCapUsd'),
    requestsPerMinute: input.requestsPerMinute === null ? null : int('requestsPerMinute', 1, MAX_REQUESTS_PER_MINUTE),
  };
}

export function createTierPolicyService(deps: {
  db: Db;
  audit: AuditService;
  /** Told after a policy change commits (the proxy's request rate limits re-read the policies). */
  onChanged?: () => void;
}) {
  const { db, audit, onChanged } = deps;
  return {
    async list(actor: Identity | null) {
      authorize(actor, 'tierPolicies');
      const rows = await db.tierPolicy.findMany();
      return TIERS.map((tier) => rows.find((r) => r.tier === tier)!).filter(Boolean);
    },

    async update(actor: Identity | null, tier: Tier, input: TierPolicyInput) {
      const admin = authorize(actor, 'updateTierPolicy');
      const changes = validate(input);
      const updated = await inTransaction(db, async (tx) => {
        const [current] = await tx.$queryRaw<
          { tier: string }[]
        >`SELECT tier FROM "TierPolicy" WHERE tier = ${tier}::"Tier" FOR UPDATE`;
        if (!current) throw badInput('tier', `Unknown tier ${tier}`);
        return audit.recordUpdate(
          tx,
          admin,
          { action: 'tierPolicy.update', targetType: 'TierPolicy', targetId: tier },
          {
            before: await tx.tierPolicy.findUniqueOrThrow({ where: { tier } }),
            changes,
            write: () => tx.tierPolicy.update({ where: { tier }, data: changes }),
          },
        );
      });
      onChanged?.();
      return updated;
    },

    async setUserTier(actor: Identity | null, userId: string, tier: Tier) {
      const admin = authorize(actor, 'setUserTier');
      if (!userId || userId.length > 256) throw badInput('userId', 'userId must be 1 to 256 characters');
      return inTransaction(db, async (tx) => {
        const before = await tx.user.findUnique({ where: { id: userId } });
        // An admin may set the tier of a user MPK has not seen yet: the row waits for them.
        const user = await tx.user.upsert({ where: { id: userId }, create: { id: userId, tier }, update: { tier } });
        if (before?.tier !== tier) {
          await audit.record(tx, admin, {
            action: 'user.setTier',
            targetType: 'User',
            targetId: userId,
            details: { changes: { tier: { from: before?.tier ?? null, to: tier } } },
          });
        }
        return user;
      });
    },
  };
}
export type TierPolicyService = ReturnType<typeof createTierPolicyService>;
