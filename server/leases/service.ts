// Leases: grant on the least-used eligible key, release, extend, revoke, and the worker's
// resolution. Every change is one transaction; its event rows are published after commit.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Identity } from '../auth/authenticator.js';
import { requireRole } from '../auth/authenticator.js';
import { type Clock, utcDate } from '../core/clock.js';
import { badInput, MpkError, notFound } from '../core/errors.js';
import { emptyPage, pageOf, timeKeyset, type PageRequest } from '../core/paging.js';
import { filterText } from '../core/text.js';
import { Prisma, type Db, type Lease, type ManagedKey, type Tx } from '../db/client.js';
import { inTransaction } from '../db/transaction.js';
import type { EventBus, LeaseEventRecord } from '../events/bus.js';
import { isUuid } from '../core/ids.js';
import type { KeyService } from '../keys/service.js';
import type { LeaseTokens } from './lease-token.js';
import { renderAgentConfig, type FrameworkName, type ProviderName } from './renderers.js';
import { endLeases, expireDue, keyHasRoom, keyUnderLimits, recordLeaseEvent, type Actor, type LeaseStatus } from './transitions.js';

const PROVIDERS = ['OPENROUTER', 'VENICE', 'OPENAI_COMPATIBLE'] as const;
const FRAMEWORKS = ['OPENCLAW', 'ELIZA', 'GENERIC'] as const;
const MAX_EXTENSION_SECONDS = 10 * 366 * 24 * 3600;

export interface RequestLeaseInput {
  provider?: ProviderName | null;
  framework?: FrameworkName | null;
  agentId?: string | null;
}

export interface LeaseFilter extends PageRequest {
  status?: LeaseStatus | null;
  keyId?: string | null;
  userId?: string | null;
  agentId?: string | null;
  tier?: 'FREE' | 'PRO' | 'ENTERPRISE' | null;
  provider?: ProviderName | null;
  framework?: FrameworkName | null;
}

const agentIdSchema = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

function parseAgentId(value: string | null | undefined): string | null {
  if (value == null) return null;
  const parsed = agentIdSchema.safeParse(value);
  if (!parsed.success) throw badInput('agentId', `agentId ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

const notActive = (message: string) => new MpkError('LEASE_NOT_ACTIVE', message);

/** A refusal that still commits what the transaction did on the way (an overdue lease expired). */
class Refused {
  constructor(readonly error: MpkError) {}
}

interface GrantResult {
  outcome: 'GRANTED' | 'EXISTING' | 'OVERDUE';
  lease_id: string | null;
  event_id: bigint | null;
  tier: string;
  max_active: number;
  details: Record<string, unknown> | null;
}

// Audit entries are written by the transitions' SQL, in the same statement as each change.
export function createLeaseService(deps: {
  db: Db;
  clock: Clock;
  keys: KeyService;
  events: EventBus;
  tokens: LeaseTokens;
  /** The metering proxy's base URL as agents reach it (known once the server listens). */
  proxyBaseUrl: () => string;
}) {
  const { db, clock, keys, events, tokens } = deps;

  /** Runs a state change and publishes the event rows it wrote once it has committed. */
  async function change<T>(work: (tx: Tx, written: LeaseEventRecord[]) => Promise<T | Refused>): Promise<T> {
    let written: LeaseEventRecord[] = [];
    const result = await inTransaction(db, (tx) => {
      written = [];
      return work(tx, written);
    });
    events.publish(written);
    if (result instanceof Refused) throw result.error;
    return result;
  }

  const findLease = (tx: Tx | Db, id: string) => (isUuid(id) ? tx.lease.findUnique({ where: { id } }) : Promise.resolve(null));

  /** Locks a lease with its user and key, in the global lock order (user, key, lease). */
  async function lockLease(tx: Tx, id: string): Promise<Lease> {
    const peek = await findLease(tx, id);
    if (!peek) throw notFound('Lease');
    await tx.$queryRaw`SELECT 1 FROM "User" WHERE id = ${peek.userId} FOR UPDATE`;
    await tx.$queryRaw`SELECT 1 FROM "ManagedKey" WHERE id = ${peek.keyId}::uuid FOR UPDATE`;
    await tx.$queryRaw`SELECT 1 FROM "Lease" WHERE id = ${id}::uuid FOR UPDATE`;
    return tx.lease.findUniqueOrThrow({ where: { id } });
  }

  /**
   * Makes an ended lease ACTIVE again inside the caller's transaction (which holds the user, key
   * and lease locks), if its user's tier and its key still have room; otherwise the refusal.
   */
  async function bringBack(tx: Tx, lease: Lease, now: Date, data: { expiresAt?: Date } = {}): Promise<MpkError | null> {
    const [limits] = await tx.$queryRaw<{ active: number; max: number }[]>`
      SELECT u."activeLeaseCount" AS active, p."maxActiveLeases" AS max FROM "User" u JOIN "TierPolicy" p ON p.tier = u.tier WHERE u.id = ${lease.userId}`;
    if (!limits || limits.active >= limits.max) return new MpkError('TIER_LIMIT_REACHED', 'The user already holds as many active leases as their tier allows');
    const [room] = await tx.$queryRaw<{ ok: boolean }[]>`SELECT ${keyHasRoom(now)} AS ok FROM "ManagedKey" k WHERE k.id = ${lease.keyId}::uuid`;
    if (!room?.ok) return new MpkError('NO_KEY_AVAILABLE', "The lease's key is disabled, full, or over its spend limit");
    await tx.lease.update({ where: { id: lease.id }, data: { status: 'ACTIVE', endedAt: null, endReason: null, ...data } });
    await tx.$executeRaw`UPDATE "ManagedKey" SET "activeLeaseCount" = "activeLeaseCount" + 1 WHERE id = ${lease.keyId}::uuid`;
    await tx.$executeRaw`UPDATE "User" SET "activeLeaseCount" = "activeLeaseCount" + 1 WHERE id = ${lease.userId}`;
    return null;
  }

  /** Ends one lease; LEASE_NOT_ACTIVE unless its status is one of `from`. */
  async function endOne(actor: Actor, id: string, to: 'RELEASED' | 'REVOKED', reason: string, from: LeaseStatus[], ownerOnly: boolean) {
    return change(async (tx, written) => {
      const lease = await lockLease(tx, id);
      if (ownerOnly && lease.userId !== actor.userId) throw notFound('Lease');
      const now = clock.now();
      // A lease past its expiry is expired, whether or not the scheduler has got to it yet.
      if (lease.status === 'ACTIVE' && lease.expiresAt <= now) {
        written.push(...(await expireDue(tx, now, { where: Prisma.sql`l.id = ${id}::uuid` })));
        return new Refused(notActive('Lease is EXPIRED'));
      }
      if (!from.includes(lease.status)) throw notActive(`Lease is ${lease.status}`);
      written.push(...(await endLeases(tx, { where: Prisma.sql`l.id = ${id}::uuid`, from, to, reason, actor, now })));
      return tx.lease.findUniqueOrThrow({ where: { id } });
    });
  }

  async function grant(actor: Identity, provider: ProviderName, framework: FrameworkName, agentId: string | null): Promise<Lease> {
    for (;;) {
      const now = clock.now();
      const id = randomUUID();
      // The whole grant is one call (prisma/migrations/*_grant_function): see there for why.
      const [result] = await db.$queryRaw<GrantResult[]>`
        SELECT * FROM mpk_grant_lease(${id}::uuid, ${actor.userId}, ${actor.email ?? null}, ${actor.role}::"Role",
          ${provider}::"Provider", ${framework}::"Framework", ${agentId}, ${now}::timestamp(3),
          ${utcDate(now, 'day')}::date, ${utcDate(now, 'month')}::date)`.catch((error: Error) => {
        const refusal = /mpk:(TIER_LIMIT_REACHED|NO_KEY_AVAILABLE)(?::(\w+):(\d+))?/.exec(error.message);
        if (refusal?.[1] === 'TIER_LIMIT_REACHED') throw new MpkError('TIER_LIMIT_REACHED', `Tier ${refusal[2]} allows ${refusal[3]} active lease(s)`);
        if (refusal?.[1] === 'NO_KEY_AVAILABLE') throw new MpkError('NO_KEY_AVAILABLE', `No ${provider} key has room for another lease right now`);
        throw error;
      });
      switch (result?.outcome) {
        case 'GRANTED':
          events.publish([
            { id: result.event_id!, type: 'GRANTED', at: now, leaseId: id, userId: actor.userId, keyId: String(result.details!.keyId), agentId, stopAgent: false, details: result.details },
          ]);
          return db.lease.findUniqueOrThrow({ where: { id } });
        case 'EXISTING':
          return db.lease.findUniqueOrThrow({ where: { id: result.lease_id! } });
        case 'OVERDUE':
          // Leases past their expiry count as ended, whether or not the scheduler got to them.
          await change(async (tx, written) => {
            written.push(...(await expireDue(tx, now, { where: Prisma.sql`l."userId" = ${actor.userId}` })));
          });
          continue;
        default:
          throw new Error(`mpk_grant_lease returned ${JSON.stringify(result?.outcome)}`);
      }
    }
  }

  return {
    lockLease,
    bringBack,
    leaseById: (id: string) => findLease(db, id),

    async request(actor: Identity | null, input: RequestLeaseInput) {
      const caller = requireRole(actor, 'USER', 'ADMIN');
      const provider = input.provider ?? 'OPENROUTER';
      const framework = input.framework ?? 'OPENCLAW';
      if (!PROVIDERS.includes(provider)) throw badInput('provider', `Unknown provider ${provider}`);
      if (!FRAMEWORKS.includes(framework)) throw badInput('framework', `Unknown framework ${framework}`);
      return grant(caller, provider, framework, parseAgentId(input.agentId));
    },

    async release(actor: Identity | null, id: string) {
      const caller = requireRole(actor, 'USER', 'ADMIN');
      return endOne(caller, id, 'RELEASED', caller.role === 'ADMIN' ? 'released by admin' : 'released by user', ['ACTIVE', 'SUSPENDED'], caller.role !== 'ADMIN');
    },

    async revoke(actor: Identity | null, id: string, reason?: string | null) {
      const admin = requireRole(actor, 'ADMIN');
      const why = reason?.trim().slice(0, 500) || 'revoked by admin';
      return endOne(admin, id, 'REVOKED', why, ['ACTIVE', 'SUSPENDED'], false);
    },

    /** Adds time to an ACTIVE lease; with `reactivate`, brings an EXPIRED one back if tier and key allow. */
    async extend(actor: Identity | null, id: string, bySeconds: number, reactivate = false) {
      const admin = requireRole(actor, 'ADMIN');
      if (!Number.isInteger(bySeconds) || bySeconds < 1 || bySeconds > MAX_EXTENSION_SECONDS) {
        throw badInput('bySeconds', `bySeconds must be a whole number from 1 to ${MAX_EXTENSION_SECONDS}`);
      }
      return change(async (tx, written) => {
        let lease = await lockLease(tx, id);
        const now = clock.now();
        if (lease.status === 'ACTIVE' && lease.expiresAt <= now) {
          written.push(...(await expireDue(tx, now, { where: Prisma.sql`l.id = ${id}::uuid` })));
          lease = await tx.lease.findUniqueOrThrow({ where: { id } });
        }
        if (lease.status === 'ACTIVE') {
          const expiresAt = new Date(lease.expiresAt.getTime() + bySeconds * 1000);
          await tx.lease.update({ where: { id }, data: { expiresAt } });
          written.push(
            await recordLeaseEvent(tx, {
              type: 'EXTENDED', leaseId: id, now, actor: admin, action: 'lease.extend',
              details: { bySeconds, from: lease.expiresAt.toISOString(), expiresAt: expiresAt.toISOString(), reactivated: false },
            }),
          );
          return tx.lease.findUniqueOrThrow({ where: { id } });
        }
        if (lease.status !== 'EXPIRED') return new Refused(notActive(`A ${lease.status} lease cannot be extended`));
        if (!reactivate) return new Refused(notActive('Lease is EXPIRED: pass reactivate: true to bring it back'));

        const expiresAt = new Date(now.getTime() + bySeconds * 1000);
        const refusal = await bringBack(tx, lease, now, { expiresAt });
        if (refusal) return new Refused(refusal);
        written.push(
          await recordLeaseEvent(tx, {
            type: 'EXTENDED', leaseId: id, now, actor: admin, action: 'lease.reactivate',
            details: { bySeconds, from: lease.expiresAt.toISOString(), expiresAt: expiresAt.toISOString(), reactivated: true },
          }),
        );
        return tx.lease.findUniqueOrThrow({ where: { id } });
      });
    },

    /** Disables a key and, in the same transaction, revokes its leases with the reason. */
    async disableKey(actor: Identity | null, keyId: string, reason?: string | null) {
      const admin = requireRole(actor, 'ADMIN');
      const why = keys.validateReason(reason) ?? 'key disabled by admin';
      return change(async (tx, written) => {
        const key = await keys.setStatusInTx(tx, admin, keyId, 'DISABLED', why);
        written.push(
          ...(await endLeases(tx, {
            where: Prisma.sql`l."keyId" = ${keyId}::uuid`, from: ['ACTIVE', 'SUSPENDED'], to: 'REVOKED', reason: why, actor: admin, now: clock.now(), limit: 1_000_000,
          })),
        );
        return tx.managedKey.findUniqueOrThrow({ where: { id: key.id } });
      });
    },

    async list(actor: Identity | null, filter: LeaseFilter) {
      const caller = requireRole(actor, 'ADMIN', 'OBSERVER', 'WORKER', 'USER');
      // A malformed key id or another user's id matches nothing: an empty page, not an error.
      if (filter.keyId && !isUuid(filter.keyId)) return emptyPage<Lease>(filter);
      if (caller.role === 'USER' && filter.userId && filter.userId !== caller.userId) return emptyPage<Lease>(filter);
      const agentId = filterText(filter.agentId, 'agentId');
      const userId = filterText(filter.userId, 'userId');
      const where: Prisma.LeaseWhereInput = {
        ...(filter.status ? { status: filter.status } : {}),
        ...(filter.keyId ? { keyId: filter.keyId } : {}),
        ...(agentId ? { agentId } : {}),
        ...(filter.tier ? { tier: filter.tier } : {}),
        ...(filter.provider ? { provider: filter.provider } : {}),
        ...(filter.framework ? { framework: filter.framework } : {}),
        // A user sees only their own leases, whatever filter they pass.
        ...(caller.role === 'USER' ? { userId: caller.userId } : userId ? { userId } : {}),
      };
      return pageOf(filter, {
        keyset: timeKeyset('grantedAt'),
        positionOf: (l: Lease) => ({ at: l.grantedAt, id: l.id }),
        fetch: (cursor, take) => db.lease.findMany({ where: { AND: [where, cursor.where ?? {}] }, orderBy: cursor.orderBy, take }),
        count: () => db.lease.count({ where }),
      });
    },

    async get(actor: Identity | null, id: string) {
      const caller = requireRole(actor, 'ADMIN', 'OBSERVER', 'WORKER', 'USER');
      const lease = await findLease(db, id);
      // Another user's lease does not exist, as far as a user can tell.
      if (!lease || (caller.role === 'USER' && lease.userId !== caller.userId)) throw notFound('Lease');
      return lease;
    },

    async keyOf(actor: Identity | null, lease: Lease) {
      requireRole(actor, 'ADMIN', 'OBSERVER', 'WORKER');
      // findUnique calls made in the same tick are batched into one query by Prisma.
      return db.managedKey.findUnique({ where: { id: lease.keyId } });
    },

    userOf: (lease: Lease) => db.user.findUnique({ where: { id: lease.userId } }),

    /**
     * The worker's call before every agent start: the lease must be ACTIVE, unexpired (checked
     * here, not left to the scheduler), on an ACTIVE key that is under its spend limits.
     * Checking, stamping lastUsedAt and auditing take one statement.
     */
    async resolve(actor: Identity | null, by: { leaseId?: string | null; agentId?: string | null }) {
      const worker = requireRole(actor, 'WORKER');
      const now = clock.now();
      let match: Prisma.Sql;
      if (by.leaseId) {
        if (!isUuid(by.leaseId)) throw notFound('Lease');
        match = Prisma.sql`l.id = ${by.leaseId}::uuid`;
      } else if (by.agentId) {
        match = Prisma.sql`l."agentId" = ${parseAgentId(by.agentId)}`;
      } else {
        throw badInput('leaseId', 'Give leaseId or agentId');
      }
      const day = utcDate(now, 'day');
      const month = utcDate(now, 'month');
      const [row] = await db.$queryRaw<(Lease & { usable: boolean; underLimits: boolean; key: ManagedKey })[]>`
        WITH cur AS (
          SELECT l.*, row_to_json(k.*)::jsonb AS key,
                 (l.status = 'ACTIVE' AND l."expiresAt" > ${now} AND k.status = 'ACTIVE') AS usable,
                 ${keyUnderLimits(day, month)} AS "underLimits"
          FROM "Lease" l JOIN "ManagedKey" k ON k.id = l."keyId"
          WHERE ${match}
          ORDER BY (l.status = 'ACTIVE') DESC, l."grantedAt" DESC LIMIT 1
        ), ok AS (SELECT id, "keyId" FROM cur WHERE usable AND "underLimits"),
        stamp_lease AS (UPDATE "Lease" SET "lastUsedAt" = ${now} FROM ok WHERE "Lease".id = ok.id),
        stamp_key AS (UPDATE "ManagedKey" SET "lastUsedAt" = ${now} FROM ok WHERE "ManagedKey".id = ok."keyId"),
        audit AS (
          INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
          SELECT ${now}, ${worker.userId}, 'WORKER', 'lease.resolve', 'Lease', id::text, jsonb_build_object('keyId', "keyId") FROM ok
        )
        SELECT * FROM cur`;
      if (!row) throw notFound('Lease');
      if (!row.usable) {
        const why = row.status !== 'ACTIVE' ? `Lease is ${row.status}` : row.expiresAt <= now ? 'Lease has expired' : 'The lease\'s key is disabled';
        throw notActive(why);
      }
      if (!row.underLimits) throw new MpkError('QUOTA_EXHAUSTED', "The lease's key has reached its daily or monthly spend limit");
      const key = row.key as unknown as ManagedKey & {
        fallbackModels: string[];
        config: { frameworks?: Record<string, Record<string, unknown>>; delivery?: 'PROXY' | 'DIRECT' };
      };
      const model = key.defaultModel ?? key.fallbackModels[0];
      if (!model) throw new MpkError('CONFLICT', 'The lease\'s key has no default model configured');
      const fallbackModels = key.fallbackModels.filter((m) => m !== model);
      const { usable: _u, underLimits: _l, key: _k, ...leaseRow } = row;
      const lease = { ...leaseRow, lastUsedAt: now } as Lease;
      // PROXY (the default): the agent gets a lease token and MPK's metering proxy, so every
      // request is checked and metered. DIRECT: the provider key itself, metered by reportUsage.
      const direct = key.config?.delivery === 'DIRECT';
      const apiKey = direct ? keys.revealSecret({ id: key.id, secretCiphertext: key.secretCiphertext }) : tokens.mint(lease.id);
      const baseUrl = direct ? key.baseUrl : deps.proxyBaseUrl();
      const rendered = renderAgentConfig({
        framework: lease.framework,
        provider: key.provider,
        baseUrl,
        apiKey,
        model,
        fallbackModels,
        overrides: key.config?.frameworks?.[lease.framework],
      });
      return { lease, apiKey, baseUrl, delivery: direct ? ('DIRECT' as const) : ('PROXY' as const), model, fallbackModels, ...rendered };
    },

    /** Used by the scheduler: expires a batch of due leases, returning the events written. */
    expireDueBatch: (limit: number) => change(async (tx, written) => {
      const expired = await expireDue(tx, clock.now(), { limit });
      written.push(...expired);
      return expired;
    }),
  };
}
export type LeaseService = ReturnType<typeof createLeaseService>;
