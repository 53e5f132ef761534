// Leases: grant on the least-used eligible key, release, extend, revoke, re-cap, suspend at the
// cap, and the worker's resolution. Every change is one transaction through the lease store
// (store.ts); its event rows are announced once it has committed.

import { z } from 'zod';
import type { AuditService } from '../audit/service.js';
import { authorize } from '../auth/permissions.js';
import type { Clock } from '../core/clock.js';
import { badInput, MpkError, notFound } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { isUuid, uuidv7 } from '../core/ids.js';
import { parseUsd } from '../core/money.js';
import { emptyPage, type PageRequest, pageOfModel, timeKeyset } from '../core/paging.js';
import { filterText } from '../core/text.js';
import { type Db, type Lease, type ManagedKey, Prisma, type Tx } from '../db/client.js';
import { FRAMEWORKS, type Framework, type LeaseStatus, PROVIDERS, type Provider, type Tier } from '../db/enums.js';
import { estimatedRows } from '../db/estimate.js';
import { inTransaction } from '../db/transaction.js';
import type { EventBus, LeaseEventRecord } from '../events/bus.js';
import type { KeyService } from '../keys/service.js';
import type { Metrics } from '../metrics/metrics.js';
import type { LeaseTokens } from './lease-token.js';
import { capReachedMessage, KEY_QUOTA_MESSAGE, notActiveMessage } from './refusals.js';
import { renderAgentConfig } from './renderers.js';
import * as store from './store.js';

const MAX_EXTENSION_SECONDS = 10 * 366 * 24 * 3600;

export interface RequestLeaseInput {
  provider?: Provider | null;
  framework?: Framework | null;
  agentId?: string | null;
}

export interface LeaseFilter extends PageRequest {
  status?: LeaseStatus | null;
  keyId?: string | null;
  userId?: string | null;
  agentId?: string | null;
  tier?: Tier | null;
  provider?: Provider | null;
  framework?: Framework | null;
}

const agentIdSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

function parseAgentId(value: string | null | undefined): string | null {
  if (value == null) return null;
  const parsed = agentIdSchema.safeParse(value);
  if (!parsed.success) throw badInput('agentId', `agentId ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

const notActive = (message: string) => new MpkError('LEASE_NOT_ACTIVE', message);

function refusalError(row: store.ResolvedRow, now: Date): MpkError {
  switch (row.refusal) {
    case 'LEASE_SPEND_CAP_REACHED':
      return new MpkError(
        'LEASE_SPEND_CAP_REACHED',
        capReachedMessage(row.usageUsd.toString(), row.spendCapUsd.toString()),
      );
    case 'QUOTA_EXHAUSTED':
      return new MpkError('QUOTA_EXHAUSTED', KEY_QUOTA_MESSAGE);
    default:
      return notActive(notActiveMessage(row, now));
  }
}
const noRoom = (refusal: 'TIER' | 'KEY') =>
  refusal === 'TIER'
    ? new MpkError('TIER_LIMIT_REACHED', 'The user already holds as many active leases as their tier allows')
    : new MpkError('NO_KEY_AVAILABLE', "The lease's key is disabled, full, or over its spend limit");

/** A refusal that still commits what the transaction did on the way (an overdue lease expired). */
class Refused {
  constructor(readonly error: MpkError) {}
}

export function createLeaseService(deps: {
  db: Db;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  keys: Pick<KeyService, 'setStatusInTx' | 'validateReason' | 'revealSecret'>;
  events: EventBus;
  tokens: LeaseTokens;
  /** The metering proxy's base URL as agents reach it (known once the server listens). */
  proxyBaseUrl: () => string;
  /** Counts refusals by code (grants are counted from the events). */
  metrics?: Pick<Metrics, 'leaseRefused'>;
  /**
   * The secret of a lease's minted key (a lease on a MINT key), waiting briefly for its creation;
   * KEY_NOT_READY when it is not there in time (server/minting/service.ts).
   */
  mintedSecret?: (leaseId: string) => Promise<string>;
}) {
  const { db, clock, audit, keys, events, tokens } = deps;

  /** Runs a state change and announces the event rows it wrote once it has committed. */
  async function change<T>(work: (tx: Tx, written: LeaseEventRecord[]) => Promise<T | Refused>): Promise<T> {
    let written: LeaseEventRecord[] = [];
    const result = await inTransaction(db, (tx) => {
      written = [];
      return work(tx, written);
    });
    events.committed(written);
    if (result instanceof Refused) throw result.error;
    return result;
  }

  async function locked(tx: Tx, id: string): Promise<Lease> {
    const lease = isUuid(id) ? await store.lockLease(tx, id) : null;
    if (!lease) throw notFound('Lease');
    return lease;
  }

  /** The lease goes on: with more time, back from expiry or suspension, or under a new cap. */
  function extended(
    tx: Tx,
    leaseId: string,
    event: { now: Date; actor: Identity; action: string | null; details: Record<string, unknown> },
  ) {
    return store.recordLeaseEvent(tx, { type: 'EXTENDED', leaseId, ...event });
  }

  /** Ends one lease; LEASE_NOT_ACTIVE unless its status is one of `from`. */
  function endOne(
    actor: Identity,
    id: string,
    to: 'RELEASED' | 'REVOKED',
    reason: string,
    from: LeaseStatus[],
    ownerOnly: boolean,
  ) {
    return change(async (tx, written) => {
      const lease = await locked(tx, id);
      if (ownerOnly && lease.userId !== actor.userId) throw notFound('Lease');
      const now = clock.now();
      // A lease past its expiry is expired, whether or not the scheduler has got to it yet.
      if (lease.status === 'ACTIVE' && lease.expiresAt <= now) {
        written.push(...(await store.expireDue(tx, now, { where: Prisma.sql`l.id = ${id}::uuid` })));
        return new Refused(notActive('Lease is EXPIRED'));
      }
      if (!from.includes(lease.status)) throw notActive(`Lease is ${lease.status}`);
      written.push(
        ...(await store.endLeases(tx, { where: Prisma.sql`l.id = ${id}::uuid`, from, to, reason, actor, now })),
      );
      return tx.lease.findUniqueOrThrow({ where: { id } });
    });
  }

  async function grant(
    actor: Identity,
    provider: Provider,
    framework: Framework,
    agentId: string | null,
  ): Promise<Lease> {
    for (;;) {
      const now = clock.now();
      const result = await store.grant(db, { leaseId: uuidv7(), actor, provider, framework, agentId, now });
      switch (result.outcome) {
        case 'GRANTED':
          events.committed([
            {
              id: result.eventId,
              type: 'GRANTED',
              at: now,
              leaseId: result.leaseId,
              userId: actor.userId,
              keyId: String(result.details.keyId),
              agentId,
              stopAgent: false,
              details: result.details,
            },
          ]);
          return db.lease.findUniqueOrThrow({ where: { id: result.leaseId } });
        case 'EXISTING':
          return db.lease.findUniqueOrThrow({ where: { id: result.leaseId } });
        case 'TIER_LIMIT_REACHED':
          deps.metrics?.leaseRefused('requestLease', result.outcome);
          throw new MpkError('TIER_LIMIT_REACHED', `Tier ${result.tier} allows ${result.max} active lease(s)`);
        case 'NO_KEY_AVAILABLE':
          deps.metrics?.leaseRefused('requestLease', result.outcome);
          throw new MpkError(
            'NO_KEY_AVAILABLE',
            result.mintCapacity
              ? `No ${provider} key has room for another lease right now: its minting key holds as many minted keys as it may (mint capacity)`
              : `No ${provider} key has room for another lease right now`,
            result.mintCapacity ? { reason: 'MINT_CAPACITY' } : {},
          );
        case 'OVERDUE':
          // Leases past their expiry count as ended, whether or not the scheduler got to them.
          await change(async (tx, written) => {
            written.push(...(await store.expireDue(tx, now, { where: Prisma.sql`l."userId" = ${actor.userId}` })));
          });
          continue;
      }
    }
  }

  return {
    leaseById: (id: string) => (isUuid(id) ? store.findLease(db, id) : Promise.resolve(null)),

    async request(actor: Identity | null, input: RequestLeaseInput) {
      const caller = authorize(actor, 'requestLease');
      const provider = input.provider ?? 'OPENROUTER';
      const framework = input.framework ?? 'OPENCLAW';
      if (!PROVIDERS.includes(provider)) throw badInput('provider', `Unknown provider ${provider}`);
      if (!FRAMEWORKS.includes(framework)) throw badInput('framework', `Unknown framework ${framework}`);
      return grant(caller, provider, framework, parseAgentId(input.agentId));
    },

    async release(actor: Identity | null, id: string) {
      const caller = authorize(actor, 'releaseLease');
      return endOne(
        caller,
        id,
        'RELEASED',
        caller.role === 'ADMIN' ? 'released by admin' : 'released by user',
        ['ACTIVE', 'SUSPENDED'],
        caller.role !== 'ADMIN',
      );
    },

    async revoke(actor: Identity | null, id: string, reason?: string | null) {
      const admin = authorize(actor, 'revokeLease');
      const why = reason?.trim().slice(0, 500) || 'revoked by admin';
      return endOne(admin, id, 'REVOKED', why, ['ACTIVE', 'SUSPENDED'], false);
    },

    /** Adds time to an ACTIVE lease; with `reactivate`, brings an EXPIRED one back if tier and key allow. */
    async extend(actor: Identity | null, id: string, bySeconds: number, reactivate = false) {
      const admin = authorize(actor, 'extendLease');
      if (!Number.isInteger(bySeconds) || bySeconds < 1 || bySeconds > MAX_EXTENSION_SECONDS) {
        throw badInput('bySeconds', `bySeconds must be a whole number from 1 to ${MAX_EXTENSION_SECONDS}`);
      }
      return change(async (tx, written) => {
        let lease = await locked(tx, id);
        const now = clock.now();
        if (lease.status === 'ACTIVE' && lease.expiresAt <= now) {
          written.push(...(await store.expireDue(tx, now, { where: Prisma.sql`l.id = ${id}::uuid` })));
          lease = await tx.lease.findUniqueOrThrow({ where: { id } });
        }
        const reactivated = lease.status === 'EXPIRED';
        let expiresAt: Date;
        if (lease.status === 'ACTIVE') {
          expiresAt = new Date(lease.expiresAt.getTime() + bySeconds * 1000);
          await store.setExpiry(tx, id, expiresAt, now);
        } else {
          if (!reactivated) return new Refused(notActive(`A ${lease.status} lease cannot be extended`));
          if (!reactivate) return new Refused(notActive('Lease is EXPIRED: pass reactivate: true to bring it back'));
          expiresAt = new Date(now.getTime() + bySeconds * 1000);
          const refusal = await store.bringBack(tx, lease, now, { expiresAt });
          if (refusal) return new Refused(noRoom(refusal));
        }
        written.push(
          await extended(tx, id, {
            now,
            actor: admin,
            action: reactivated ? 'lease.reactivate' : 'lease.extend',
            details: {
              bySeconds,
              from: lease.expiresAt.toISOString(),
              expiresAt: expiresAt.toISOString(),
              reactivated,
            },
          }),
        );
        return tx.lease.findUniqueOrThrow({ where: { id } });
      });
    },

    /**
     * Sets a lease's spend cap. A SUSPENDED lease under its new cap comes back to ACTIVE if it has
     * not expired and its user's tier and its key still have room; an ACTIVE one at or over its
     * new cap is suspended. Either way an event says so, so that every instance's proxy (which
     * enforces caps) and every screen (which shows them) hears of the new cap.
     */
    async updateCap(actor: Identity | null, id: string, spendCapUsd: string): Promise<Lease> {
      const admin = authorize(actor, 'updateLeaseCap');
      const cap = parseUsd(spendCapUsd, 'spendCapUsd');
      return change(async (tx, written) => {
        const now = clock.now();
        const current = await locked(tx, id);
        if (current.status !== 'ACTIVE' && current.status !== 'SUSPENDED')
          throw notActive(`Lease is ${current.status}`);
        const over = await store.setCap(tx, id, cap, now);
        await audit.record(tx, admin, {
          action: 'lease.updateCap',
          targetType: 'Lease',
          targetId: id,
          details: { changes: { spendCapUsd: { from: current.spendCapUsd.toString(), to: cap.toString() } } },
        });
        if (current.status === 'SUSPENDED' && !over) {
          if (current.expiresAt <= now) throw notActive('Lease has expired while suspended');
          const refusal = await store.bringBack(tx, current, now);
          if (refusal) throw noRoom(refusal);
          written.push(
            await extended(tx, id, {
              now,
              actor: admin,
              action: 'lease.resume',
              details: { resumed: true, spendCapUsd: cap.toString(), expiresAt: current.expiresAt.toISOString() },
            }),
          );
        } else {
          const suspended = current.status === 'ACTIVE' && over ? await store.suspendOverCap(tx, [id], now) : [];
          // Still active (or still suspended): an event all the same (audited above).
          written.push(
            ...(suspended.length
              ? suspended
              : [
                  await extended(tx, id, { now, actor: admin, action: null, details: { spendCapUsd: cap.toString() } }),
                ]),
          );
        }
        return tx.lease.findUniqueOrThrow({ where: { id } });
      });
    },

    /**
     * Suspends those of the leases that have spent their cap: its own transaction, whose
     * conditional update ends a lease once however many callers race to it. For the ledger.
     */
    suspendOverCap: (leaseIds: string[]) =>
      change(async (tx, written) => {
        written.push(...(await store.suspendOverCap(tx, leaseIds, clock.now())));
      }),

    /** Disables a key and, in the same transaction, revokes its leases with the reason. */
    async disableKey(actor: Identity | null, keyId: string, reason?: string | null) {
      const admin = authorize(actor, 'disableManagedKey');
      const why = keys.validateReason(reason) ?? 'key disabled by admin';
      return change(async (tx, written) => {
        const key = await keys.setStatusInTx(tx, admin, keyId, 'DISABLED', why);
        written.push(
          ...(await store.endLeases(tx, {
            where: Prisma.sql`l."keyId" = ${keyId}::uuid`,
            from: ['ACTIVE', 'SUSPENDED'],
            to: 'REVOKED',
            reason: why,
            actor: admin,
            now: clock.now(),
            limit: 1_000_000,
          })),
        );
        return tx.managedKey.findUniqueOrThrow({ where: { id: key.id } });
      });
    },

    async list(actor: Identity | null, filter: LeaseFilter) {
      const caller = authorize(actor, 'leases');
      // A malformed key id or another user's id matches nothing: an empty page, not an error.
      if (filter.keyId && !isUuid(filter.keyId)) return emptyPage<Lease>(filter);
      if (caller.role === 'USER' && filter.userId && filter.userId !== caller.userId) return emptyPage<Lease>(filter);
      const agentId = filterText(filter.agentId, 'agentId');
      const userId = filterText(filter.userId, 'userId');
      // Prisma leaves out a field whose filter is undefined.
      const where: Prisma.LeaseWhereInput = {
        status: filter.status ?? undefined,
        keyId: filter.keyId || undefined,
        agentId: agentId ?? undefined,
        tier: filter.tier ?? undefined,
        provider: filter.provider ?? undefined,
        framework: filter.framework ?? undefined,
        // A user sees only their own leases, whatever filter they pass.
        userId: caller.role === 'USER' ? caller.userId : (userId ?? undefined),
      };
      return pageOfModel(filter, {
        model: db.lease,
        estimateAll: () => estimatedRows(db, 'Lease'),
        where,
        keyset: timeKeyset('grantedAt'),
        positionOf: (l: Lease) => ({ at: l.grantedAt, id: l.id }),
      });
    },

    async get(actor: Identity | null, id: string) {
      const caller = authorize(actor, 'lease');
      const lease = isUuid(id) ? await store.findLease(db, id) : null;
      // Another user's lease does not exist, as far as a user can tell.
      if (!lease || (caller.role === 'USER' && lease.userId !== caller.userId)) throw notFound('Lease');
      return lease;
    },

    async keyOf(actor: Identity | null, lease: Lease) {
      authorize(actor, 'Lease.key');
      // findUnique calls made in the same tick are batched into one query by Prisma.
      return db.managedKey.findUnique({ where: { id: lease.keyId } });
    },

    userOf: (lease: Lease) => db.user.findUnique({ where: { id: lease.userId } }),

    /**
     * The worker's call before every agent start: the lease must be ACTIVE, unexpired (checked
     * here, not left to the scheduler), on an ACTIVE key that is under its spend limits.
     * Checking, stamping lastUsedAt and auditing take one statement. An agent id is one user's
     * name for their agent (two users may both run `agent-1`), so it resolves only with that user.
     */
    async resolve(
      actor: Identity | null,
      by: { leaseId?: string | null; agentId?: string | null; userId?: string | null },
    ) {
      const worker = authorize(actor, 'resolveLease');
      const now = clock.now();
      const userId = filterText(by.userId, 'userId');
      // With a lease id, a user id (optional) must be the lease's: a worker's check that it has
      // the lease it thinks it has.
      const ofUser = userId === null ? Prisma.empty : Prisma.sql` AND l."userId" = ${userId}`;
      let match: Prisma.Sql;
      if (by.leaseId) {
        if (!isUuid(by.leaseId)) throw notFound('Lease');
        match = Prisma.sql`l.id = ${by.leaseId}::uuid${ofUser}`;
      } else if (by.agentId) {
        const agentId = parseAgentId(by.agentId);
        if (userId === null) throw badInput('userId', 'Give userId with agentId: agent ids are unique per user only');
        match = Prisma.sql`l."agentId" = ${agentId}${ofUser}`;
      } else {
        throw badInput('leaseId', 'Give leaseId, or agentId with userId');
      }
      const row = await store.resolveRow(db, match, now, worker);
      if (!row) throw notFound('Lease');
      if (row.refusal) {
        deps.metrics?.leaseRefused('resolveLease', row.refusal);
        throw refusalError(row, now);
      }
      const key = row.key as unknown as Omit<ManagedKey, 'mode'> & {
        mode: 'SHARED' | 'MINT';
        fallbackModels: string[];
        config: { frameworks?: Record<string, Record<string, unknown>>; delivery?: 'PROXY' | 'DIRECT' };
      };
      const model = key.defaultModel ?? key.fallbackModels[0];
      if (!model) throw new MpkError('CONFLICT', "The lease's key has no default model configured");
      const fallbackModels = key.fallbackModels.filter((m) => m !== model);
      const { refusal: _r, key: _k, ...leaseRow } = row;
      const lease = { ...leaseRow, lastUsedAt: now } as Lease;
      // PROXY (the default): the agent gets a lease token and MPK's metering proxy, so every
      // request is checked and metered. DIRECT: the provider key itself, metered by reportUsage; on
      // a MINT key, the lease's own minted key, never the minting key (a management key).
      const direct = key.config?.delivery === 'DIRECT';
      let apiKey: string;
      if (!direct) apiKey = tokens.mint(lease.id);
      else if (key.mode === 'MINT') {
        if (!deps.mintedSecret) throw new Error('minted keys are not wired');
        apiKey = await deps.mintedSecret(lease.id);
      } else apiKey = keys.revealSecret({ id: key.id, secretCiphertext: key.secretCiphertext });
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
      return {
        lease,
        apiKey,
        baseUrl,
        delivery: direct ? ('DIRECT' as const) : ('PROXY' as const),
        model,
        fallbackModels,
        ...rendered,
      };
    },

    /** Writes a lease event (and its audit entry) in the caller's transaction: the provider job runner's. */
    recordEventInTx: store.recordLeaseEvent,

    /** When the next lease falls due (for the expiry job's timer). */
    nextExpiry: () => store.nextExpiry(db),

    /** Used by the scheduler: expires a batch of due leases, returning the events written. */
    expireDueBatch: (limit: number) =>
      change(async (tx, written) => {
        const batch = await store.expireDueBatch(tx, clock.now(), limit);
        written.push(...batch.events);
        return batch;
      }),
  };
}
export type LeaseService = ReturnType<typeof createLeaseService>;
