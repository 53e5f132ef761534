// The spend ledger. A report is one UsageRecord, unique per (lease, requestId); the lease's totals
// and the key's spend in the current UTC day and month are increments in the same transaction,
// never read-then-write. A lease whose usage reaches its cap is suspended, once.
import { z } from 'zod';
import type { Identity } from '../auth/authenticator.js';
import { requireRole } from '../auth/authenticator.js';
import type { Clock } from '../core/clock.js';
import { badInput, MpkError, notFound } from '../core/errors.js';
import { parseUsd } from '../core/money.js';
import { Prisma, type Db, type Lease } from '../db/client.js';
import { inTransaction, withRetry } from '../db/transaction.js';
import type { EventBus, LeaseEventRecord } from '../events/bus.js';
import { isUuid } from '../core/ids.js';
import type { LeaseService } from '../leases/service.js';
import { utcDate } from '../core/clock.js';
import { endLeases, recordLeaseEvent } from '../leases/transitions.js';

export interface MeteredRequest {
  requestId: string;
  costUsd: Prisma.Decimal;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  /** REPORTED (reportUsage), PROVIDER (the response's own cost), PRICE (tokens x price), NONE (flagged). */
  costSource: 'REPORTED' | 'PROVIDER' | 'PRICE' | 'NONE';
  /**
   * When the request was metered, if before it is written (the proxy writes behind): its spend
   * belongs to that UTC day and month, even when its batch lands after midnight.
   */
  at?: Date;
}

export interface ReportUsageInput {
  leaseId: string;
  requestId: string;
  costUsd: string;
  model?: string | null;
  promptTokens?: number | null;
  completionTokens?: number | null;
}

const requestIdSchema = z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const tokens = z.number().int('must be a whole number').min(0, 'must not be negative').max(1_000_000_000, 'is too large');

function field<T>(schema: z.ZodType<T>, value: unknown, name: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badInput(name, `${name} ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

export function createUsageService(deps: { db: Db; clock: Clock; events: EventBus; leases: LeaseService }) {
  const { db, clock, events, leases } = deps;

  /** Suspends those of the leases whose usage has reached their cap; returns the events. */
  const suspendIfCapped = (tx: Prisma.TransactionClient, leaseIds: string[], now: Date) =>
    endLeases(tx, {
      where: Prisma.sql`l.id = ANY(${leaseIds}::uuid[]) AND l."usageUsd" >= l."spendCapUsd"`,
      from: ['ACTIVE'],
      to: 'SUSPENDED',
      reason: 'spend cap reached',
      actor: { userId: 'system:metering', role: 'ADMIN' },
      now,
    });

  /**
   * The ledger's one write path: records many requests in one statement, each counted once per
   * (lease, requestId), with per-lease and per-key sums as increments. Returns how many counted.
   */
  async function recordBatch(batch: readonly (MeteredRequest & { leaseId: string })[], reportedBy: string): Promise<number> {
    if (batch.length === 0) return 0;
    const rows = JSON.stringify(
      batch.map((b) => ({
        leaseId: b.leaseId, requestId: b.requestId, model: b.model, promptTokens: b.promptTokens,
        completionTokens: b.completionTokens, costUsd: b.costUsd.toString(), costSource: b.costSource, at: b.at?.toISOString() ?? null,
      })),
    );
    const now = clock.now();
    // One statement (see the mpk_record_usage migration): atomic on its own, and the rows it
    // locks are held for its body only. Retried like a transaction if picked as a deadlock victim.
    const logged = await withRetry(() =>
      db.$queryRaw<(LeaseEventRecord & { capped: string[] })[]>`
        SELECT * FROM mpk_record_usage(${rows}::jsonb, ${now}, ${utcDate(now, 'day')}::date, ${utcDate(now, 'month')}::date, ${reportedBy})`,
    );
    const written: LeaseEventRecord[] = logged.map(({ capped: _c, ...e }) => e);
    // The statement says which leases crossed their cap: only then is there anything to suspend.
    // Suspension is its own transaction: its conditional update ends a lease once however many
    // batches race to it, and a lease left over its cap by a crash here is suspended by its next
    // batch (the proxy refuses it meanwhile).
    const capped = logged[0]?.capped ?? [];
    if (capped.length) written.push(...(await inTransaction(db, (tx) => suspendIfCapped(tx, capped, now))));
    const recorded = logged.reduce((n, e) => n + (e.details as { requests: number }).requests, 0);
    events.publish(written);
    return recorded;
  }

  return {
    async report(actor: Identity | null, input: ReportUsageInput): Promise<{ lease: Lease; duplicate: boolean }> {
      const worker = requireRole(actor, 'WORKER');
      const entry: MeteredRequest = {
        requestId: field(requestIdSchema, input.requestId, 'requestId'),
        costUsd: parseUsd(input.costUsd, 'costUsd'),
        model: input.model == null ? null : field(z.string().min(1).max(200), input.model, 'model'),
        promptTokens: input.promptTokens == null ? null : field(tokens, input.promptTokens, 'promptTokens'),
        completionTokens: input.completionTokens == null ? null : field(tokens, input.completionTokens, 'completionTokens'),
        costSource: 'REPORTED',
      };
      const leaseId = input.leaseId;
      if (!isUuid(leaseId) || !(await db.lease.findUnique({ where: { id: leaseId }, select: { id: true } }))) throw notFound('Lease');
      const recorded = await recordBatch([{ ...entry, leaseId }], worker.userId);
      return { lease: await db.lease.findUniqueOrThrow({ where: { id: leaseId } }), duplicate: recorded === 0 };
    },

    /** What the metering proxy measured, many requests at once. */
    recordBatch: (batch: readonly (MeteredRequest & { leaseId: string })[]) => recordBatch(batch, 'system:proxy'),

    /**
     * Sets a lease's spend cap. A SUSPENDED lease under its new cap comes back to ACTIVE if it has
     * not expired and its user's tier and its key still have room; an ACTIVE one at or over its
     * new cap is suspended.
     */
    async updateLeaseCap(actor: Identity | null, leaseId: string, spendCapUsd: string): Promise<Lease> {
      const admin = requireRole(actor, 'ADMIN');
      const cap = parseUsd(spendCapUsd, 'spendCapUsd');
      if (!isUuid(leaseId)) throw notFound('Lease');
      let written: LeaseEventRecord[] = [];
      const lease = await inTransaction(db, async (tx) => {
        written = [];
        const now = clock.now();
        const current = await leases.lockLease(tx, leaseId);
        if (current.status !== 'ACTIVE' && current.status !== 'SUSPENDED') throw new MpkError('LEASE_NOT_ACTIVE', `Lease is ${current.status}`);
        await tx.lease.update({ where: { id: leaseId }, data: { spendCapUsd: cap } });
        await tx.auditEntry.create({
          data: { at: now, actorId: admin.userId, actorRole: admin.role, action: 'lease.updateCap', targetType: 'Lease', targetId: leaseId,
            details: { changes: { spendCapUsd: { from: current.spendCapUsd.toString(), to: cap.toString() } } } },
        });
        if (current.status === 'SUSPENDED' && current.usageUsd.lessThan(cap)) {
          if (current.expiresAt <= now) throw new MpkError('LEASE_NOT_ACTIVE', 'Lease has expired while suspended');
          const refusal = await leases.bringBack(tx, current, now);
          if (refusal) throw refusal;
          written.push(
            await recordLeaseEvent(tx, {
              type: 'EXTENDED', leaseId, now, actor: admin, action: 'lease.resume',
              details: { resumed: true, spendCapUsd: cap.toString(), expiresAt: current.expiresAt.toISOString() },
            }),
          );
        } else {
          const suspended = await suspendIfCapped(tx, [leaseId], now);
          // Still active (or still suspended): an event all the same, so that whoever enforces
          // the cap (every instance's proxy) and whoever shows it hears of the new one.
          written.push(...(suspended.length ? suspended : [await recordLeaseEvent(tx, {
            type: 'EXTENDED', leaseId, now, actor: admin, action: null, details: { spendCapUsd: cap.toString() },
          })]));
        }
        return tx.lease.findUniqueOrThrow({ where: { id: leaseId } });
      });
      events.publish(written);
      return lease;
    },
  };
}
export type UsageService = ReturnType<typeof createUsageService>;
