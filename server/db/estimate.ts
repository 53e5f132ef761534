// The planner's idea of a table's size (pg_class.reltuples, kept by ANALYZE and autovacuum): a
// catalog read, however large the table. For a partitioned table, the sum of its partitions': the
// parent's own figure is set only by an explicit ANALYZE of it (autovacuum never analyzes a
// partitioned table), so it goes stale, and adding it would count every row twice. -1 (never
// analyzed) counts as 0, so an unknown table is counted instead.
import type { Db } from './client.js';

export async function estimatedRows(db: Db, table: string): Promise<number> {
  const [row] = await db.$queryRaw<{ rows: number }[]>`
    SELECT (CASE WHEN c.relkind = 'p'
                 THEN coalesce((SELECT sum(greatest(p.reltuples, 0)) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                                WHERE i.inhparent = c.oid), 0)
                 ELSE greatest(c.reltuples, 0) END)::float8 AS rows
    FROM pg_class c WHERE c.oid = to_regclass(${`"${table}"`})`;
  return Math.round(row?.rows ?? 0);
}
