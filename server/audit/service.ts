// The audit trail: who did what to which target, written in the same transaction as the change by
// one writer, the SQL function mpk_audit (prisma/sql/mpk_audit.sql), which the lease statements
// call too. Details hold changed fields only, never secrets (callers pass masked values).

import { authorize } from '../auth/permissions.js';
import type { Clock } from '../core/clock.js';
import type { Identity } from '../core/identity.js';
import { type PageRequest, pageOfModel, serialKeyset } from '../core/paging.js';
import { filterText } from '../core/text.js';
import type { AuditEntry, Db, Prisma, Tx } from '../db/client.js';
import { estimatedRows } from '../db/estimate.js';

export interface AuditRecord {
  action: string;
  targetType: string;
  targetId?: string | null;
  details?: Prisma.InputJsonValue;
}

export interface AuditFilter extends PageRequest {
  targetId?: string | null;
  targetType?: string | null;
  actorId?: string | null;
  action?: string | null;
}

export function createAuditService(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;
  /** Writes an entry inside the caller's transaction, through the one writer (mpk_audit). */
  async function record(tx: Tx, actor: Pick<Identity, 'userId' | 'role'>, entry: AuditRecord) {
    await tx.$queryRaw`
      SELECT mpk_audit(${clock.now()}::timestamp(3), ${actor.userId}, ${actor.role}::"Role", ${entry.action},
                       ${entry.targetType}, ${entry.targetId ?? null}, ${JSON.stringify(entry.details ?? {})}::jsonb)`;
  }

  return {
    record,

    /**
     * An edit of a locked row: `write` runs and the fields that really change are audited, in the
     * caller's transaction. An edit that changes nothing writes nothing and returns `before`.
     */
    async recordUpdate<T extends object>(
      tx: Tx,
      actor: Pick<Identity, 'userId' | 'role'>,
      target: Omit<AuditRecord, 'details'>,
      edit: { before: T; changes: Partial<T>; write: () => Promise<T> },
    ): Promise<T> {
      const diff = diffFields(edit.before as Record<string, unknown>, edit.changes as Record<string, unknown>);
      if (Object.keys(diff).length === 0) return edit.before;
      const updated = await edit.write();
      await record(tx, actor, { ...target, details: { changes: diff } as Prisma.InputJsonValue });
      return updated;
    },

    /** Newest first, for admins and observers; filters combine. */
    async list(actor: Identity | null, request: AuditFilter) {
      authorize(actor, 'auditLog');
      const filters = {
        targetId: filterText(request.targetId, 'targetId'),
        targetType: filterText(request.targetType, 'targetType'),
        actorId: filterText(request.actorId, 'actorId'),
        action: filterText(request.action, 'action'),
      };
      const where: Prisma.AuditEntryWhereInput = Object.fromEntries(
        Object.entries(filters).filter(([, value]) => value !== null),
      );
      // Entries are ordered by their serial id, newest first; the cursor carries it.
      return pageOfModel(request, {
        model: db.auditEntry,
        estimateAll: () => estimatedRows(db, 'AuditEntry'),
        where,
        keyset: serialKeyset(),
        positionOf: (r: AuditEntry) => ({ at: r.at, id: r.id.toString() }),
      });
    },
  };
}
export type AuditService = ReturnType<typeof createAuditService>;

/** Field-by-field changes between two snapshots, for an audit entry's details. */
export function diffFields<T extends Record<string, unknown>>(
  before: T,
  after: Partial<T>,
): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const [field, to] of Object.entries(after)) {
    if (to === undefined) continue;
    const from = before[field];
    if (JSON.stringify(normalize(from)) !== JSON.stringify(normalize(to)))
      changes[field] = { from: normalize(from), to: normalize(to) };
  }
  return changes;
}

function normalize(value: unknown): unknown {
  if (value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object' && 'toFixed' in value) return String(value);
  return value;
}
