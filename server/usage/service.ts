// The spend ledger. A report is one UsageRecord, unique per (lease, requestId); the lease's totals
// and the key's spend in the current UTC day and month are increments in the same statement,
// never read-then-write. A lease whose usage reaches its cap is suspended, once, by the leases.
import { z } from 'zod';
import { authorize } from '../auth/permissions.js';
import type { Clock } from '../core/clock.js';
import { utcDate } from '../core/clock.js';
import { badInput, notFound } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { parseUsd } from '../core/money.js';
import type { Db, Lease, Prisma } from '../db/client.js';
import { withRetry } from '../db/transaction.js';
import type { EventBus, LeaseEventRecord } from '../events/bus.js';
import type { LeaseService } from '../leases/service.js';
import { LEDGER_DECIMALS } from './provider-answers.js';

export interface MeteredRequest {
  /** Unique per lease: the worker's id for reportUsage (a repeat counts once), MPK's for the proxy. */
  requestId: string;
  /** The provider's id for the answer, when the proxy saw one (not unique: providers repeat them). */
  providerRequestId?: string | null;
  costUsd: Prisma.Decimal;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  /**
   * REPORTED (reportUsage), PROVIDER (the answer's own cost, or the provider's stats for it), PRICE
   * (tokens x the key's prices), ESTIMATED (tokens counted from what streamed before the client
   * left, x prices), NONE (no cost known: flagged).
   */
  costSource: 'REPORTED' | 'PROVIDER' | 'PRICE' | 'ESTIMATED' | 'NONE';
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
const tokens = z
  .number()
  .int('must be a whole number')
  .min(0, 'must not be negative')
  .max(1_000_000_000, 'is too large');

function field<T>(schema: z.ZodType<T>, value: unknown, name: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badInput(name, `${name} ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

export function createUsageService(deps: {
  db: Db;
  clock: Clock;
  events: EventBus;
  leases: Pick<LeaseService, 'leaseById' | 'suspendOverCap'>;
}) {
  const { db, clock, events, leases } = deps;

  /**
   * The ledger's one write path: records many requests in one statement, each counted once per
   * (lease, requestId), with per-lease and per-key sums as increments. Returns how many counted.
   */
  async function recordBatch(
    batch: readonly (MeteredRequest & { leaseId: string })[],
    reportedBy: string,
  ): Promise<number> {
    if (batch.length === 0) return 0;
    const rows = JSON.stringify(
      batch.map((b) => ({
        leaseId: b.leaseId,
        requestId: b.requestId,
        providerRequestId: b.providerRequestId ?? null,
        model: b.model,
        promptTokens: b.promptTokens,
        completionTokens: b.completionTokens,
        costUsd: b.costUsd.toString(),
        costSource: b.costSource,
        at: b.at?.toISOString() ?? null,
      })),
    );
    const now = clock.now();
    // One statement (prisma/sql/mpk_record_usage.sql): atomic on its own, and the rows it locks
    // are held for its body only. Retried like a transaction if picked as a deadlock victim.
    const logged = await withRetry(
      () =>
        db.$queryRaw<(LeaseEventRecord & { capped: string[] })[]>`
        SELECT *
        FROM mpk_record_usage(${rows}::jsonb, ${now}, ${utcDate(now, 'day')}::date, ${utcDate(now, 'month')}::date,
                              ${reportedBy})`,
    );
    events.committed(logged.map(({ capped: _c, ...e }) => e));
    // The statement says which leases crossed their cap: only then is there anything to suspend.
    // Suspension is the leases' own transaction: its conditional update ends a lease once however
    // many batches race to it, and a lease left over its cap by a crash here is suspended by its
    // next batch (the proxy refuses it meanwhile).
    const capped = logged[0]?.capped ?? [];
    if (capped.length) await leases.suspendOverCap(capped);
    return logged.reduce((n, e) => n + (e.details as { requests: number }).requests, 0);
  }

  return {
    async report(actor: Identity | null, input: ReportUsageInput): Promise<{ lease: Lease; duplicate: boolean }> {
      const worker = authorize(actor, 'reportUsage');
      const entry: MeteredRequest = {
        requestId: field(requestIdSchema, input.requestId, 'requestId'),
        costUsd: parseUsd(input.costUsd, 'costUsd', { decimals: LEDGER_DECIMALS }),
        model: input.model == null ? null : field(z.string().min(1).max(200), input.model, 'model'),
        promptTokens: input.promptTokens == null ? null : field(tokens, input.promptTokens, 'promptTokens'),
        completionTokens:
          input.completionTokens == null ? null : field(tokens, input.completionTokens, 'completionTokens'),
        costSource: 'REPORTED',
      };
      const leaseId = input.leaseId;
      if (!(await leases.leaseById(leaseId))) throw notFound('Lease');
      const recorded = await recordBatch([{ ...entry, leaseId }], worker.userId);
      return { lease: (await leases.leaseById(leaseId))!, duplicate: recorded === 0 };
    },

    /** What the metering proxy measured, many requests at once. */
    recordBatch: (batch: readonly (MeteredRequest & { leaseId: string })[]) => recordBatch(batch, 'system:proxy'),
  };
}
export type UsageService = ReturnType<typeof createUsageService>;
