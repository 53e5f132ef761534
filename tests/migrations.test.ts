// The migrations folder and prisma/schema.prisma agree (Prisma's schema engine sees each
// partitioned history table as one table and its partitions not at all, so it never proposes to
// drop or recreate them); and upgrading a database that has history to the partitioned layout
// loses nothing: a database migrated to the migration before partitioned_history is filled (in
// SQL) with 100,000 rows of history over five months (20,000 lease events, 20,000 audit entries,
// 60,000 usage records), then the migration is applied. Every row must come through as it was
// (counts, sums, each row's columns and id, the newest event cursor), each into its month's
// partition (none left in DEFAULT), and new writes must go on past the copied ids, with a copied
// request still counting as a duplicate. Both need a PostgreSQL server (CREATEDB).
import { readdir } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, diffMigrationsToSchema, migrationsDir } from '../server/db/migrate.js';
import { databaseUrl, type ScratchDatabase, scratchDatabase } from './support/db.js';

const LEASES = 5_000;
const EVENTS_PER_LEASE = 4;
const AUDIT_PER_LEASE = 4;
const USAGE_PER_LEASE = 12;

let database: ScratchDatabase;
let client: pg.Client;
let partitioned: string;

const sql = async <T = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  (await client.query(text, params)).rows as T[];

/**
 * What must survive the copy, per table: the row count, the sum and greatest of the ids, and a
 * digest of every row's columns in id order (each column named, so the columns' order in the new
 * tables does not matter).
 */
const COLUMNS = {
  LeaseEvent: `id, "txId", type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details`,
  AuditEntry: `id, at, "actorId", "actorRole", action, "targetType", "targetId", details`,
  UsageRecord: `id, "leaseId", "keyId", "requestId", "providerRequestId", model, "promptTokens", "completionTokens",
                "costUsd", "costSource", at`,
};

async function fingerprint() {
  const tables: Record<string, unknown> = {};
  for (const [table, columns] of Object.entries(COLUMNS)) {
    const [row] = await sql(
      `SELECT count(*)::int AS rows, sum(id)::text AS "idSum", max(id)::text AS "maxId",
              md5(string_agg(concat_ws('|', ${columns}), ',' ORDER BY id)) AS digest
       FROM "${table}"`,
    );
    tables[table] = row;
  }
  const [spend] = await sql(
    `SELECT sum("costUsd")::text AS cost, sum("promptTokens")::text AS tokens FROM "UsageRecord"`,
  );
  const [newest] = await sql(`SELECT "txId"::text, id::text FROM "LeaseEvent" ORDER BY "txId" DESC, id DESC LIMIT 1`);
  return { tables, spend, newest };
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('upgrading history to monthly partitions', () => {
  beforeAll(async () => {
    const names = (await readdir(migrationsDir)).filter((n) => /^\d{14}_/.test(n)).sort();
    partitioned = names.find((n) => n.endsWith('_partitioned_history'))!;
    const before = names[names.indexOf(partitioned) - 1]!;
    database = await scratchDatabase(databaseUrl(process.env.TEST_DATABASE_URL!), 'mpk_upgrade');
    await applyMigrations(database.url, { upTo: before });
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    // Five months of history, July to November 2026, newest lease first.
    await client.query(`
      INSERT INTO "User" (id, role, tier, "updatedAt") SELECT 'user-' || u, 'USER', 'PRO', now() FROM generate_series(1, 50) u;
      INSERT INTO "ManagedKey" (id, provider, label, "secretCiphertext", "maskedKey", "baseUrl", "updatedAt")
      SELECT ('00000000-0000-4000-8000-' || lpad(k::text, 12, '0'))::uuid, 'OPENROUTER', 'key ' || k, 'x', 'sk-...',
             'http://127.0.0.1:1', now()
      FROM generate_series(1, 5) k;
      INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt",
                           "expiresAt", "endedAt", "spendCapUsd", "updatedAt")
      SELECT ('10000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'user-' || (1 + i % 50),
             ('00000000-0000-4000-8000-' || lpad((1 + i % 5)::text, 12, '0'))::uuid, 'EXPIRED', 'PRO', 'OPENROUTER',
             'GENERIC', 'agent-' || (i % 40), timestamp '2026-11-25' - i * interval '40 minutes',
             timestamp '2026-11-25' - i * interval '40 minutes' + interval '30 minutes',
             timestamp '2026-11-25' - i * interval '40 minutes' + interval '30 minutes', 10, now()
      FROM generate_series(1, ${LEASES}) i;
      INSERT INTO "LeaseEvent" ("txId", type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
      -- Transaction ids in time order, below the writing transaction's own as a real history's are
      -- (spread over the ids the cluster has used so far: on a young cluster, several events share one).
      SELECT 1 + ((${LEASES} - i) * ${EVENTS_PER_LEASE} + e)::bigint * (txid_current() - 2) / ${LEASES * EVENTS_PER_LEASE},
             (ARRAY['GRANTED', 'USAGE', 'EXTENDED', 'EXPIRED'])[1 + e]::"LeaseEventType",
             l."grantedAt" + e * interval '9 minutes', l.id, l."userId", l."keyId", l."agentId", e = 3,
             jsonb_build_object('n', e)
      FROM generate_series(1, ${LEASES}) i
      JOIN "Lease" l ON l.id = ('10000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
      CROSS JOIN generate_series(0, ${EVENTS_PER_LEASE - 1}) e
      ORDER BY l."grantedAt", e;
      INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
      SELECT l."grantedAt" + a * interval '7 minutes', l."userId", 'USER', 'lease.action' || a, 'Lease', l.id::text,
             jsonb_build_object('a', a)
      FROM "Lease" l CROSS JOIN generate_series(1, ${AUDIT_PER_LEASE}) a ORDER BY l."grantedAt", a;
      INSERT INTO "UsageRecord" ("leaseId", "keyId", "requestId", "providerRequestId", model, "promptTokens",
                                 "completionTokens", "costUsd", "costSource", at)
      SELECT l.id, l."keyId", 'req-' || r, CASE WHEN r % 3 = 0 THEN 'gen-' || r END, 'model-' || (r % 4),
             100 + r, 10 * r, (r * 0.000123456789)::numeric(30, 12), 'REPORTED', l."grantedAt" + r * interval '2 minutes'
      FROM "Lease" l CROSS JOIN generate_series(1, ${USAGE_PER_LEASE}) r ORDER BY l."grantedAt", r;`);
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  it('keeps every row, id and cursor, in its month, and writes go on', async () => {
    const before = await fingerprint();
    expect(before.tables).toMatchObject({
      LeaseEvent: { rows: LEASES * EVENTS_PER_LEASE },
      AuditEntry: { rows: LEASES * AUDIT_PER_LEASE },
      UsageRecord: { rows: LEASES * USAGE_PER_LEASE },
    });

    const started = performance.now();
    const applied = await applyMigrations(database.url);
    const ms = performance.now() - started;
    expect(applied[0]).toBe(partitioned);
    console.log(`partitioned_history on 100,000 rows of history: ${Math.round(ms)} ms (all pending migrations)`);

    expect(await fingerprint()).toEqual(before);
    for (const table of Object.keys(COLUMNS)) {
      const [kind] = await sql<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE oid = $1::regclass`, [
        `"${table}"`,
      ]);
      expect(kind!.relkind).toBe('p');
      // Every month that has rows got its partition: nothing waits in DEFAULT.
      expect(await sql(`SELECT id FROM "${table}_default" LIMIT 1`)).toEqual([]);
      const months = await sql<{ p: string; n: number }>(
        `SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM "${table}" GROUP BY 1 ORDER BY 1`,
      );
      expect(months.map((m) => m.p.replaceAll('"', ''))).toEqual(
        ['2026_07', '2026_08', '2026_09', '2026_10', '2026_11'].map((m) => `${table}_${m}`),
      );
    }

    // New writes: past every copied id and cursor; a copied request is still a duplicate.
    const lease = '10000000-0000-4000-8000-000000000001';
    const rows = JSON.stringify([
      { leaseId: lease, requestId: 'req-1', costUsd: '5', costSource: 'REPORTED' },
      { leaseId: lease, requestId: 'after-upgrade', costUsd: '0.25', costSource: 'REPORTED', model: 'm' },
    ]);
    const events = await sql<{ id: string; details: { requests: number } }>(
      `SELECT id::text, details FROM mpk_record_usage($1::jsonb, now()::timestamp(3), current_date, date_trunc('month', now())::date, 'upgrade-test')`,
      [rows],
    );
    expect(events.map((e) => e.details.requests)).toEqual([1]);
    const [record] = await sql<{ id: string }>(
      `SELECT id::text FROM "UsageRecord" WHERE "requestId" = 'after-upgrade'`,
    );
    const maxId = (table: keyof typeof COLUMNS) => BigInt((before.tables[table] as { maxId: string }).maxId);
    expect(BigInt(record!.id)).toBeGreaterThan(maxId('UsageRecord'));
    expect(BigInt(events[0]!.id)).toBeGreaterThan(maxId('LeaseEvent'));
    const [cursor] = await sql<{ txId: string }>(`SELECT "txId"::text FROM "LeaseEvent" WHERE id = $1`, [
      events[0]!.id,
    ]);
    expect(BigInt(cursor!.txId)).toBeGreaterThan(BigInt((before.newest as { txId: string }).txId));
    await sql(
      `SELECT mpk_audit(now()::timestamp(3), 'admin-upgrade', 'ADMIN', 'test.after', 'Thing', NULL, '{}'::jsonb)`,
    );
    const [audit] = await sql<{ id: string }>(`SELECT max(id)::text AS id FROM "AuditEntry"`);
    expect(BigInt(audit!.id)).toBe(maxId('AuditEntry') + 1n);
  }, 300_000);
});

describe.skipIf(!process.env.TEST_DATABASE_URL)('the migrations and prisma/schema.prisma', () => {
  it('agree, partitioned tables and all: nothing to migrate, no function to copy', async () => {
    const { schema, functions } = await diffMigrationsToSchema(databaseUrl(process.env.TEST_DATABASE_URL!));
    expect(functions).toEqual([]);
    expect(schema).toBe('');
  }, 120_000);
});
