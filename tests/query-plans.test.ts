// The hot queries use the indexes made for them, at a size where that matters: the application's
// own statements (captured from Prisma's query log while its services run) are explained against
// 60,000 ended leases with their events and audit entries, and each plan must read the named
// index. Each is explained again with that index dropped (inside a transaction rolled back): the
// plan must then cost at least half as much again: the data is large enough for the index to be the reason.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditService } from '../server/audit/service.js';
import type { Identity } from '../server/core/identity.js';
import { type Prisma, PrismaClient } from '../server/db/client.js';
import { createEventBus } from '../server/events/bus.js';
import { type LoggedEvent, readEvents, readLeaseHistories, readRecentEvents, START } from '../server/events/log.js';
import type { KeyService } from '../server/keys/service.js';
import { createLeaseTokens } from '../server/leases/lease-token.js';
import { createLeaseService } from '../server/leases/service.js';
import * as store from '../server/leases/store.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

const NOW = new Date('2026-06-15T12:00:00Z');
const USERS = 200;
const KEYS = 20;
const ENDED = 60_000;
const ACTIVE = 400;
const admin: Identity = { userId: 'admin-plans', email: undefined, role: 'ADMIN' };
const worker: Identity = { userId: 'worker-plans', email: undefined, role: 'WORKER' };

let database: TestDatabase;
let client: pg.Client;
let db: PrismaClient;
const captured: { query: string; params: string }[] = [];

/** Runs `work` and returns the SQL statements it sent that match `pattern`, with their parameters. */
async function statementsOf(pattern: RegExp, work: () => Promise<unknown>) {
  captured.length = 0;
  await work().catch(() => {});
  const found = captured.filter((c) => pattern.test(c.query));
  expect(found.length, `no statement matching ${pattern}`).toBeGreaterThan(0);
  return found.map((c) => ({ query: c.query, params: JSON.parse(c.params) as unknown[] }));
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Total Cost': number;
  'Parent Relationship'?: string;
  Plans?: PlanNode[];
}

async function explain(statement: { query: string; params: unknown[] }): Promise<PlanNode> {
  const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${statement.query}`, statement.params);
  return (rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/**
 * The names of a relation (table or index) and of its partitions: a partitioned table's history
 * (LeaseEvent, AuditEntry, UsageRecord) is read through each partition's own copy of its indexes.
 */
async function withPartitions(name: string, options: { empty: boolean } = { empty: true }): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = $1::regclass AND ($2 OR c.reltuples > 0)`,
    [`"${name}"`, options.empty],
  );
  return [name, ...rows.map((r) => r.name)];
}

/**
 * The plan reads `index` (index or bitmap scan; for a partitioned table, a partition's copy of it),
 * scans `table` (or a partition of it) nowhere whole, and costs less than without it.
 */
async function expectServedBy(statement: { query: string; params: unknown[] }, index: string, table: string) {
  const plan = await explain(statement);
  const all = nodes(plan);
  const indexNames = await withPartitions(index);
  // An empty partition (a month ahead) is scanned whole at no cost: only those holding rows count.
  const tableNames = await withPartitions(table, { empty: false });
  const indexes = all.filter((n) => /Index|Bitmap/.test(n['Node Type'])).map((n) => n['Index Name']);
  expect(
    indexes.some((name) => name && indexNames.includes(name)),
    JSON.stringify(plan),
  ).toBe(true);
  expect(all.filter((n) => n['Node Type'] === 'Seq Scan' && tableNames.includes(n['Relation Name']!))).toEqual([]);
  await client.query('BEGIN');
  try {
    await client.query(`DROP INDEX "${index}"`);
    const without = await explain(statement);
    expect(nodes(without).filter((n) => n['Index Name'] && indexNames.includes(n['Index Name']))).toEqual([]);
    expect(
      without['Total Cost'],
      `${index}: ${plan['Total Cost']} vs ${JSON.stringify(without).slice(0, 3000)}`,
    ).toBeGreaterThan(plan['Total Cost'] * 1.5);
  } finally {
    await client.query('ROLLBACK');
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(`
    INSERT INTO "User" (id, role, tier, "updatedAt")
    SELECT 'user-' || u, 'USER', 'PRO', now() FROM generate_series(1, ${USERS}) u;
    INSERT INTO "ManagedKey" (id, provider, label, "secretCiphertext", "maskedKey", "baseUrl", "updatedAt")
    SELECT ('00000000-0000-4000-8000-' || lpad(k::text, 12, '0'))::uuid, 'OPENROUTER', 'key ' || k, 'x', 'sk-...',
           'http://127.0.0.1:1', now()
    FROM generate_series(1, ${KEYS}) k;
    INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt",
                         "expiresAt", "endedAt", "spendCapUsd", "updatedAt")
    SELECT gen_random_uuid(), 'user-' || (1 + i % ${USERS}),
           ('00000000-0000-4000-8000-' || lpad((1 + i % ${KEYS})::text, 12, '0'))::uuid,
           CASE WHEN i <= ${ACTIVE} THEN 'ACTIVE' ELSE 'EXPIRED' END::"LeaseStatus", 'PRO', 'OPENROUTER', 'GENERIC',
           'agent-' || (i % 30),
           timestamp '2026-06-15 12:00' - (i || ' minutes')::interval,
           CASE WHEN i <= ${ACTIVE} THEN timestamp '2026-06-16 12:00' + (i || ' seconds')::interval
                ELSE timestamp '2026-06-15 12:00' - (i || ' minutes')::interval + interval '1 hour' END,
           CASE WHEN i <= ${ACTIVE} THEN NULL ELSE timestamp '2026-06-15 12:00' - (i || ' minutes')::interval END,
           10, now()
    FROM generate_series(1, ${ACTIVE + ENDED}) i;
    -- One user with a long history over 50 agents: their agent's leases are a small part of it.
    INSERT INTO "User" (id, role, tier, "updatedAt") VALUES ('user-heavy', 'USER', 'PRO', now());
    INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt",
                         "expiresAt", "endedAt", "spendCapUsd", "updatedAt")
    SELECT gen_random_uuid(), 'user-heavy', '00000000-0000-4000-8000-000000000001', 'EXPIRED', 'PRO', 'OPENROUTER',
           'GENERIC', 'agent-' || (i % 50), timestamp '2026-06-01' - (i || ' minutes')::interval,
           timestamp '2026-06-01' - (i || ' minutes')::interval + interval '1 hour',
           timestamp '2026-06-01' - (i || ' minutes')::interval + interval '1 hour', 10, now()
    FROM generate_series(1, 5000) i;
    INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent")
    SELECT t.type::"LeaseEventType", l."grantedAt", l.id, l."userId", l."keyId", l."agentId", t.type <> 'GRANTED'
    FROM "Lease" l CROSS JOIN (VALUES ('GRANTED'), ('EXPIRED')) t(type) ORDER BY l."grantedAt";
    INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId")
    SELECT l."grantedAt", l."userId", 'USER', 'lease.grant', 'Lease', l.id::text FROM "Lease" l;
    -- The history in its month partitions, as the partition job leaves it.
    SELECT mpk_month_partition(t, m::date)
    FROM unnest(ARRAY['LeaseEvent', 'AuditEntry']) t, generate_series(date '2026-04-01', date '2026-06-01', '1 month') m;
    ANALYZE;`);
  db = new PrismaClient({
    adapter: new PrismaPg({ connectionString: database.url, max: 2 }),
    log: [{ emit: 'event', level: 'query' }],
  });
  // The client's type knows of query events only when built from a literal of its options.
  (db as unknown as { $on(event: 'query', listener: (e: Prisma.QueryEvent) => void): void }).$on('query', (e) =>
    captured.push({ query: e.query, params: e.params }),
  );
}, 60_000);

afterAll(async () => {
  await db?.$disconnect();
  await client?.end();
  await database?.drop();
});

describe('hot queries read their indexes', () => {
  const clock = { now: () => NOW };
  const leases = () =>
    createLeaseService({
      db,
      clock,
      audit: createAuditService({ db, clock }),
      keys: {} as KeyService,
      events: createEventBus(() => {}),
      tokens: createLeaseTokens('x'.repeat(32)),
      proxyBaseUrl: () => 'http://127.0.0.1:1/v1',
    });

  it('the expiry job: an idle sweep, and when it wakes next', async () => {
    const [sweep] = await statementsOf(/ORDER BY l."expiresAt", l.id LIMIT/, () =>
      db.$transaction((tx) => store.expireDueBatch(tx, NOW, 1000)),
    );
    await expectServedBy(sweep!, 'Lease_live_expiresAt_id_idx', 'Lease');
    const [next] = await statementsOf(/min\(l."expiresAt"\)/, () => store.nextExpiry(db));
    await expectServedBy(next!, 'Lease_live_expiresAt_id_idx', 'Lease');
  });

  it("the expiry batch's end: the UPDATE reads the chosen leases on the primary key, once", async () => {
    // Every active lease is due a day later; the batch is ended, then rolled back.
    const [end] = await statementsOf(/UPDATE "Lease" l/, () =>
      db.$transaction(async (tx) => {
        expect((await store.expireDueBatch(tx, new Date('2026-06-17T00:00:00Z'), 1000)).events).toHaveLength(ACTIVE);
        throw new Error('rolled back');
      }),
    );
    const all = nodes(await explain(end!));
    const update = all.find((n) => n['Node Type'] === 'ModifyTable' && n['Relation Name'] === 'Lease')!;
    // Its rows come straight from the index on the chosen ids: not from a join, whose plan would hang
    // on the planner's guess of how many leases the locking step keeps (see endChosen).
    const [scan] = update.Plans!.filter((p) => p['Parent Relationship'] === 'Outer');
    const read = scan!['Node Type'] === 'Bitmap Heap Scan' ? scan!.Plans![0]! : scan!;
    expect(read['Index Name'], JSON.stringify(scan).slice(0, 800)).toBe('Lease_pkey');
    expect(all.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'Lease')).toEqual([]);
  });

  it('resolveLease and leases() by agent, within its user', async () => {
    const [resolve] = await statementsOf(/mpk_lease_refusal/, () =>
      leases().resolve(worker, { agentId: 'agent-7', userId: 'user-heavy' }),
    );
    await expectServedBy(resolve!, 'Lease_userId_agentId_grantedAt_id_idx', 'Lease');
    const [list] = await statementsOf(/FROM "public"."Lease"/, () =>
      leases().list(admin, { userId: 'user-heavy', agentId: 'agent-7', first: 20 }),
    );
    await expectServedBy(list!, 'Lease_userId_agentId_grantedAt_id_idx', 'Lease');
  });

  it("leases() by agent across users (an admin's search)", async () => {
    // agent-45 is one of user-heavy's agents only: 100 leases, two weeks back in the history.
    const [list] = await statementsOf(/FROM "public"."Lease"/, async () => {
      const page = await leases().list(admin, { agentId: 'agent-45', first: 20 });
      expect(page.edges).toHaveLength(20);
    });
    await expectServedBy(list!, 'Lease_agentId_grantedAt_id_idx', 'Lease');
  });

  it('auditLog by target', async () => {
    const { rows } = await client.query(`SELECT "targetId" FROM "AuditEntry" ORDER BY id DESC LIMIT 1 OFFSET 30000`);
    const audit = createAuditService({ db, clock });
    const [list] = await statementsOf(/FROM "public"."AuditEntry"/, async () => {
      const page = await audit.list(admin, { targetId: rows[0].targetId, first: 20 });
      expect(page.edges).toHaveLength(1);
    });
    await expectServedBy(list!, 'AuditEntry_targetId_id_idx', 'AuditEntry');
  });

  it('leaseEvents replayed for a user or a key, and the newest events', async () => {
    const key = '00000000-0000-4000-8000-000000000003';
    const [byUser] = await statementsOf(/FROM "LeaseEvent" e/, async () => {
      const page = await readEvents(db, START, 500, { userId: 'user-8' });
      expect(page.events.length).toBeGreaterThan(0);
      expect(page.events.every((e) => e.userId === 'user-8')).toBe(true);
    });
    await expectServedBy(byUser!, 'LeaseEvent_userId_txId_id_idx', 'LeaseEvent');
    const [byKey] = await statementsOf(/FROM "LeaseEvent" e/, async () => {
      const page = await readEvents(db, START, 500, { keyId: key, types: ['EXPIRED'] });
      expect(page.events.every((e) => e.keyId === key && e.type === 'EXPIRED')).toBe(true);
    });
    await expectServedBy(byKey!, 'LeaseEvent_keyId_txId_id_idx', 'LeaseEvent');
    const [recent] = await statementsOf(/FROM "LeaseEvent" e/, () =>
      readRecentEvents(db, { limit: 20, userId: 'user-8', keyId: null, types: null }),
    );
    await expectServedBy(recent!, 'LeaseEvent_userId_txId_id_idx', 'LeaseEvent');
  });

  it('a lease history', async () => {
    const { rows } = await client.query(`SELECT id::text FROM "Lease" ORDER BY "grantedAt" LIMIT 3`);
    const [history] = await statementsOf(/CROSS JOIN LATERAL/, () =>
      readLeaseHistories(
        db,
        rows.map((r) => r.id),
        { limit: 10, types: null },
      ),
    );
    await expectServedBy(history!, 'LeaseEvent_leaseId_txId_id_idx', 'LeaseEvent');
  });

  it("a user's events replayed a page at a time however many the statistics say they have", async () => {
    // A user with 3,000 events whom the statistics take for one with about one event a month: as at
    // 10M leases (100,000 users), or for a burst since the last ANALYZE. (Last in this file: the
    // statistics stay so.) The statistics first, then the burst they have not seen.
    for (const partition of (await withPartitions('LeaseEvent')).slice(1)) {
      await client.query(`ALTER TABLE "${partition}" ALTER COLUMN "userId" SET (n_distinct = -0.5)`);
      await client.query(`ANALYZE "${partition}"`);
    }
    await client.query(`
      INSERT INTO "User" (id, role, tier, "updatedAt") VALUES ('user-burst', 'USER', 'PRO', now());
      INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt",
                           "expiresAt", "endedAt", "spendCapUsd", "updatedAt")
      SELECT gen_random_uuid(), 'user-burst', '00000000-0000-4000-8000-000000000001', 'EXPIRED', 'PRO', 'OPENROUTER',
             'GENERIC', 'agent-burst', timestamp '2026-06-10' - (i || ' minutes')::interval,
             timestamp '2026-06-10' - (i || ' minutes')::interval + interval '1 hour',
             timestamp '2026-06-10' - (i || ' minutes')::interval + interval '1 hour', 10, now()
      FROM generate_series(1, 1500) i;
      INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent")
      SELECT t.type::"LeaseEventType", l."grantedAt", l.id, l."userId", l."keyId", l."agentId", t.type <> 'GRANTED'
      FROM "Lease" l CROSS JOIN (VALUES ('GRANTED'), ('EXPIRED')) t(type) WHERE l."userId" = 'user-burst'
      ORDER BY l."grantedAt";`);
    // The newest events (newest first), and the replay from the start (oldest first).
    const reads: [string, () => Promise<LoggedEvent[]>][] = [
      ['newest', () => readRecentEvents(db, { limit: 20, userId: 'user-burst', keyId: null, types: null })],
      ['replay', async () => (await readEvents(db, START, 500, { userId: 'user-burst' })).events],
    ];
    for (const [name, read] of reads) {
      captured.length = 0;
      const events = await read();
      expect(events).toHaveLength(name === 'replay' ? 500 : 20);
      expect(events.every((e) => e.userId === 'user-burst')).toBe(true);
      const sent = captured.map((c) => c.query);
      const statement = captured.find((c) => /FROM "LeaseEvent" e/.test(c.query))!;
      // Explained as the application ran it: in its transaction, with its setting.
      await client.query('BEGIN');
      try {
        for (const setting of sent.filter((q) => /^SET LOCAL/.test(q))) await client.query(setting);
        const all = nodes(await explain({ query: statement.query, params: JSON.parse(statement.params) }));
        // The partitions' index scans merged in cursor order, stopping at the page: no sort of them all.
        const types = all.map((n) => n['Node Type']);
        expect(types, `${name}: ${JSON.stringify(types)}`).toContain('Merge Append');
        expect(types, `${name}: ${JSON.stringify(types)}`).not.toContain('Sort');
      } finally {
        await client.query('ROLLBACK');
      }
    }
  });
});
