// History in monthly partitions (server/db/partitions.ts), on a real server whose clock the test
// moves: writes for a month without a partition wait in the DEFAULT partition until the partition
// job makes the month and moves them in; each month's rows land in its partition; retention drops
// past months whole while the rollups, spend series and lease totals stay as they were; a
// subscriber resuming from a dropped event is answered CURSOR_EXPIRED, over WebSocket and HTTP;
// a replay that retention overtakes stops with it too; the event log reads and streams across a
// month boundary; a request reported by many calls at once counts once, though the partitioned
// ledger has no unique index to say so; the scheduler runs the job at its start; and the retention
// settings parse as documented.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, loadConfig } from '../server/config.js';
import type { PartitionRun } from '../server/db/partitions.js';
import { createManualClock } from './support/clock.js';
import { createKey, leaseForNewUser, ok, Q, reportUsage } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';
import { collect, wsClient } from './support/ws.js';

const clock = createManualClock('2031-03-10T12:00:00Z');
const RETENTION = { usageDays: 20, eventsDays: 10, auditDays: 400 };
let server: TestServer;
let client: pg.Client;
let admin: string;
let worker: string;
let keyId: string;

const SERIES = `query($days: Int, $groupBy: SpendGrouping, $keyId: ID) {
  spendSeries(days: $days, groupBy: $groupBy, keyId: $keyId) { day model costUsd requests promptTokens completionTokens } }`;
const RECENT = `query($first: Int) { recentLeaseEvents(first: $first) { cursor type at leaseId } }`;
const EVENTS = `subscription($after: String) { leaseEvents(after: $after) { cursor type at leaseId } }`;

const sql = async <T = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  (await client.query(text, params)).rows as T[];

/** Which partition holds each row of `table` matching `where`. */
const partitionsOf = async (table: string, where: string, params: unknown[] = []) =>
  (
    await sql<{ p: string }>(`SELECT DISTINCT tableoid::regclass::text AS p FROM "${table}" WHERE ${where}`, params)
  ).map((r) => r.p.replaceAll('"', ''));

const exists = async (name: string) =>
  (await sql<{ r: string | null }>(`SELECT to_regclass($1)::text AS r`, [`"${name}"`]))[0]!.r !== null;

const runJob = (): Promise<PartitionRun> => server.app.partitions.runOnce();

async function sseEvents(token: string, after: string) {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: EVENTS, variables: { after } }),
  });
  return res.text();
}

beforeAll(async () => {
  server = await startTestServer({ clock, config: { retention: RETENTION } });
  client = new pg.Client({ connectionString: server.database.url });
  await client.connect();
  admin = await server.token('ADMIN', 'admin-history');
  worker = await server.token('WORKER', 'worker-history');
  keyId = (await createKey(server, admin)).id;
}, 60_000);

afterAll(async () => {
  await client?.end();
  await server?.close();
});

let marchLease: { id: string };
let marchCursor: string;
let aprilCursor: string;

describe('monthly partitions', () => {
  it('keeps writes for a month without a partition in DEFAULT, then makes the month and the next two and moves them in', async () => {
    marchLease = await leaseForNewUser(server, {}, { prefix: 'march' });
    for (const cost of ['0.10', '0.20', '0.30'])
      ok(await reportUsage(server, worker, { leaseId: marchLease.id, costUsd: cost, model: 'm1' }), 'reportUsage');
    marchCursor = ok<{ cursor: string }[]>(await server.gql(RECENT, { first: 1 }, admin), 'recentLeaseEvents')[0]!
      .cursor;

    const march = `at >= timestamp '2031-03-01'`;
    for (const table of ['LeaseEvent', 'AuditEntry', 'UsageRecord'])
      expect(await partitionsOf(table, march)).toEqual([`${table}_default`]);

    const run = await runJob();
    const made = run.created.map((c) => c.name).sort();
    expect(made).toEqual(
      ['AuditEntry', 'LeaseEvent', 'UsageRecord'].flatMap((t) =>
        ['2031_03', '2031_04', '2031_05'].map((m) => `${t}_${m}`),
      ),
    );
    expect(run.created.find((c) => c.name === 'UsageRecord_2031_03')!.moved).toBe(3);
    for (const table of ['LeaseEvent', 'AuditEntry', 'UsageRecord'])
      expect(await partitionsOf(table, march)).toEqual([`${table}_2031_03`]);
    expect((await runJob()).created).toEqual([]);
    expect(server.logs.join('')).toContain('UsageRecord_2031_03');
  });

  it("writes each row into its month's partition", async () => {
    clock.set('2031-04-10T08:00:00Z');
    // History from long ago: no month partition will be made for it, so it stays in DEFAULT.
    await sql(
      `INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "stopAgent")
       SELECT 'EXTENDED', timestamp '2020-01-01', id, "userId", "keyId", false FROM "Lease" WHERE id = $1`,
      [marchLease.id],
    );
    await sql(`INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType")
               VALUES (timestamp '2020-01-01', 'someone', 'ADMIN', 'test.ancient', 'Thing')`);
    expect(await partitionsOf('LeaseEvent', `at < timestamp '2021-01-01'`)).toEqual(['LeaseEvent_default']);
    expect(await partitionsOf('AuditEntry', `at < timestamp '2021-01-01'`)).toEqual(['AuditEntry_default']);
    const lease = await leaseForNewUser(server, {}, { prefix: 'april' });
    // Lease ids are UUIDv7, made in order: a later grant sorts after an earlier one.
    expect([lease.id[14], marchLease.id[14]]).toEqual(['7', '7']);
    expect(lease.id > marchLease.id).toBe(true);
    ok(await reportUsage(server, worker, { leaseId: lease.id, costUsd: '1.5', model: 'm2' }), 'reportUsage');
    ok(await reportUsage(server, worker, { leaseId: marchLease.id, costUsd: '0.25', model: 'm1' }), 'reportUsage');
    aprilCursor = ok<{ cursor: string }[]>(await server.gql(RECENT, { first: 1 }, admin), 'recentLeaseEvents')[0]!
      .cursor;
    const april = `at >= timestamp '2031-04-01'`;
    for (const table of ['LeaseEvent', 'AuditEntry', 'UsageRecord'])
      expect(await partitionsOf(table, april)).toEqual([`${table}_2031_04`]);
    expect(await partitionsOf('UsageRecord', `"leaseId" = $1`, [marchLease.id])).toEqual([
      'UsageRecord_2031_03',
      'UsageRecord_2031_04',
    ]);
  });
});

describe('retention', () => {
  let dropped: PartitionRun['dropped'];

  it('drops months past retention whole and keeps the rollups: spend series and lease totals unchanged', async () => {
    clock.set('2031-04-25T12:00:00Z');
    const series = async () => ({
      days: ok(await server.gql(SERIES, { days: 90 }, admin), 'spendSeries'),
      models: ok(await server.gql(SERIES, { days: 90, groupBy: 'MODEL' }, admin), 'spendSeries'),
      key: ok(await server.gql(SERIES, { days: 90, keyId }, admin), 'spendSeries'),
    });
    const totals = async () => ok(await server.gql(Q.lease, { id: marchLease.id }, admin), 'lease');
    const rollups = () =>
      sql(`SELECT day::text, "keyId"::text, model, "costUsd"::text, requests::int FROM "UsageDaily" ORDER BY 1, 2, 3`);
    const before = { series: await series(), totals: await totals(), rollups: await rollups() };
    expect(before.totals).toMatchObject({ usageUsd: '0.85', requestCount: 4 });
    expect(before.series.models.map((p: { model: string }) => p.model)).toEqual(['m2', 'm1']);

    const run = await runJob();
    dropped = run.dropped;
    // Usage: kept 20 days, so March (ended April 1) is past April 5. Events: 10 days, March only.
    // Audit: 400 days: March stays; the entry of 2020 in DEFAULT goes. (The months of the real
    // clock that the migration made went at the first run, in 2031 already.)
    expect(run.dropped).toEqual([
      { table: 'LeaseEvent', partitions: ['LeaseEvent_2031_03'], defaultRows: 1 },
      { table: 'AuditEntry', partitions: [], defaultRows: 1 },
      { table: 'UsageRecord', partitions: ['UsageRecord_2031_03'], defaultRows: 0 },
    ]);
    expect(await exists('UsageRecord_2031_03')).toBe(false);
    expect(await exists('LeaseEvent_2031_03')).toBe(false);
    expect(await exists('AuditEntry_2031_03')).toBe(true);
    expect(await exists('UsageRecord_2031_06')).toBe(true);
    expect(await sql(`SELECT id FROM "UsageRecord" WHERE at < timestamp '2031-04-01'`)).toEqual([]);

    expect({ series: await series(), totals: await totals(), rollups: await rollups() }).toEqual(before);
    const log = server.logs.find((l) => l.includes('LeaseEvent_2031_03') && l.includes('dropped'));
    expect(log).toBeDefined();
  });

  it('remembers the newest event cursor it dropped', async () => {
    expect(dropped.length).toBe(3);
    const [horizon] = await sql<{ txId: string; eventId: string }>(
      `SELECT "txId"::text, "eventId"::text FROM "HistoryHorizon" WHERE "table" = 'LeaseEvent'`,
    );
    const [kept] = await sql<{ txId: string; id: string }>(
      `SELECT "txId"::text, id::text FROM "LeaseEvent" ORDER BY "txId", id LIMIT 1`,
    );
    expect(BigInt(kept!.txId)).toBeGreaterThan(BigInt(horizon!.txId));
  });

  it('answers a cursor at or before the dropped horizon with CURSOR_EXPIRED, over WebSocket and HTTP', async () => {
    const ws = wsClient(server.url, admin);
    try {
      const stale = collect(ws, EVENTS, { after: marchCursor });
      await expect.poll(() => stale.errors.length).toBeGreaterThan(0);
      const error = stale.errors[0] as { message: string; extensions: { code: string } };
      expect(error.extensions.code).toBe('CURSOR_EXPIRED');
      expect(error.message).toMatch(/fresh snapshot/);
      expect(error.message).toMatch(/without `after`/);
      expect(await sseEvents(admin, marchCursor)).toContain('"code":"CURSOR_EXPIRED"');

      // A cursor past the horizon replays what followed it.
      const fresh = collect(ws, EVENTS, { after: aprilCursor });
      const lease = await leaseForNewUser(server, {}, { prefix: 'after-drop' });
      const items = await fresh.waitFor(1);
      expect(items.map((i) => i.leaseEvents.leaseId)).toContain(lease.id);
      expect(fresh.errors).toEqual([]);
      fresh.dispose();
    } finally {
      await ws.dispose();
    }
  });
});

describe('the event log across a month boundary', () => {
  it('pages and streams in cursor order from one month partition into the next', async () => {
    clock.set('2031-04-30T23:59:50Z');
    const start = ok<{ cursor: string }[]>(await server.gql(RECENT, { first: 1 }, admin), 'recentLeaseEvents')[0]!
      .cursor;
    const ws = wsClient(server.url, admin);
    try {
      const listening = server.app.pump.listenerCount();
      const live = collect(ws, EVENTS);
      await expect.poll(() => server.app.pump.listenerCount()).toBeGreaterThan(listening);
      const inApril = await leaseForNewUser(server, {}, { prefix: 'eve' });
      clock.advance(20_000);
      const inMay = await leaseForNewUser(server, {}, { prefix: 'may' });
      expect(await partitionsOf('LeaseEvent', `"leaseId" = $1`, [inApril.id])).toEqual(['LeaseEvent_2031_04']);
      expect(await partitionsOf('LeaseEvent', `"leaseId" = $1`, [inMay.id])).toEqual(['LeaseEvent_2031_05']);

      const replay = collect(ws, EVENTS, { after: start });
      const order = [inApril.id, inMay.id];
      const ids = (items: { leaseEvents: { leaseId: string } }[]) => items.map((i) => i.leaseEvents.leaseId);
      expect(ids(await live.waitFor(2))).toEqual(order);
      expect(ids(await replay.waitFor(2))).toEqual(order);
      const recent = ok<{ leaseId: string }[]>(await server.gql(RECENT, { first: 2 }, admin), 'recentLeaseEvents');
      expect(recent.map((e) => e.leaseId)).toEqual([...order].reverse());
      live.dispose();
      replay.dispose();
    } finally {
      await ws.dispose();
    }
  });
});

describe('a replay that retention overtakes', () => {
  it('stops with CURSOR_EXPIRED at the page after the drop', async () => {
    clock.set('2031-06-10T00:00:00Z');
    const lease = await leaseForNewUser(server, {}, { prefix: 'replayed' });
    const start = ok<{ cursor: string }[]>(await server.gql(RECENT, { first: 1 }, admin), 'recentLeaseEvents')[0]!
      .cursor;
    // More than a replay page (500) of June events after the cursor.
    await sql(
      `INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "stopAgent")
       SELECT 'EXTENDED', timestamp '2031-06-10' + i * interval '1 second', id, "userId", "keyId", false
       FROM "Lease", generate_series(1, 600) i WHERE id = $1`,
      [lease.id],
    );
    const replay = (
      await server.app.services.live.leaseEvents(
        { userId: 'admin-history', email: undefined, role: 'ADMIN' },
        { after: start },
      )
    )[Symbol.asyncIterator]();
    expect((await replay.next()).done).toBe(false);

    clock.set('2031-07-20T00:00:00Z');
    const run = await runJob();
    expect(run.dropped.find((d) => d.table === 'LeaseEvent')!.partitions).toContain('LeaseEvent_2031_06');
    let delivered = 1;
    const stopped = await (async () => {
      for (;;) {
        if ((await replay.next()).done) return null;
        delivered++;
      }
    })().catch((error: unknown) => error);
    // The rest of the first page, read before the drop, then the refusal instead of a silent gap.
    expect(delivered).toBe(500);
    expect(stopped).toMatchObject({ code: 'CURSOR_EXPIRED' });
  });
});

describe('the partitioned ledger', () => {
  it('counts a request once however many calls report it at once', async () => {
    const lease = await leaseForNewUser(server, {}, { prefix: 'racer' });
    const requestId = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 24 }, () => reportUsage(server, worker, { leaseId: lease.id, requestId, costUsd: '0.5' })),
    );
    const duplicates = answers.map((a) => ok<{ duplicate: boolean }>(a, 'reportUsage').duplicate);
    expect(duplicates.filter((d) => !d)).toHaveLength(1);
    expect(await sql(`SELECT id FROM "UsageRecord" WHERE "leaseId" = $1`, [lease.id])).toHaveLength(1);
    expect(ok(await server.gql(Q.lease, { id: lease.id }, admin), 'lease')).toMatchObject({
      usageUsd: '0.50',
      requestCount: 1,
    });
    const [rollup] = await sql<{ requests: number }>(
      `SELECT sum(requests)::int AS requests FROM "UsageLeaseDaily" WHERE "leaseId" = $1`,
      [lease.id],
    );
    expect(rollup!.requests).toBe(1);
    // And once more later, alone: still a duplicate.
    const again = await reportUsage(server, worker, { leaseId: lease.id, requestId, costUsd: '0.5' });
    expect(ok<{ duplicate: boolean }>(again, 'reportUsage').duplicate).toBe(true);
    expect(await sql(`SELECT id FROM "UsageRecord" WHERE "leaseId" = $1`, [lease.id])).toHaveLength(1);
  });
});

// PGlite serves one session: a transaction held open on one connection holds up every other, so
// a lock on one table cannot be told apart from one on all. Real PostgreSQL only.
describe.skipIf(!process.env.TEST_DATABASE_URL)('a busy table', () => {
  it('is left for the next run while the other tables go on; the next run finishes it', async () => {
    clock.set('2031-09-20T00:00:00Z');
    // A long reader of the ledger: it holds a share lock on the table and every partition, which
    // making or dropping a partition must wait for (1 s at most).
    const reader = new pg.Client({ connectionString: server.database.url });
    await reader.connect();
    await reader.query('BEGIN');
    await reader.query('SELECT 1 FROM "UsageRecord" LIMIT 1');
    try {
      const run = await runJob();
      expect(run.failed.map((f) => [f.table, f.step])).toEqual([
        ['UsageRecord', 'create'],
        ['UsageRecord', 'drop'],
      ]);
      expect(run.failed[0]!.error).toMatch(/lock timeout/);
      expect(run.created.map((c) => c.name)).toEqual(
        expect.arrayContaining(['LeaseEvent_2031_10', 'LeaseEvent_2031_11', 'AuditEntry_2031_11']),
      );
      expect(run.dropped.map((d) => d.table)).toContain('LeaseEvent');
      expect(await exists('UsageRecord_2031_06')).toBe(true);
      expect(server.logs.some((l) => l.includes('tables left for the next run'))).toBe(true);
    } finally {
      await reader.query('ROLLBACK');
      await reader.end();
    }
    const again = await runJob();
    expect(again.failed).toEqual([]);
    expect(again.created.map((c) => c.name).sort()).toEqual(['UsageRecord_2031_10', 'UsageRecord_2031_11']);
    expect(again.dropped).toEqual([
      { table: 'UsageRecord', partitions: ['UsageRecord_2031_06', 'UsageRecord_2031_07'], defaultRows: 0 },
    ]);
  }, 30_000);
});

describe('the scheduler', () => {
  it('runs the partition job when it starts: the months of its clock are made', async () => {
    const scheduled = await startTestServer({ clock: createManualClock('2035-01-20T00:00:00Z'), scheduler: true });
    const other = new pg.Client({ connectionString: scheduled.database.url });
    await other.connect();
    try {
      const made = async () =>
        (
          await other.query(
            `SELECT count(*)::int AS n FROM pg_class WHERE relname ~ '^(LeaseEvent|AuditEntry|UsageRecord)_2035_0[123]$'`,
          )
        ).rows[0].n;
      await expect.poll(made, { timeout: 20_000 }).toBe(9);
      await expect.poll(() => scheduled.logs.some((l) => l.includes('LeaseEvent_2035_03'))).toBe(true);
    } finally {
      await other.end();
      await scheduled.close();
    }
  }, 60_000);
});

describe('retention settings', () => {
  const secrets = { MPK_JWT_SECRET: 'x'.repeat(32), MPK_MASTER_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}` };

  it('are 90 days of usage records, 30 of lease events and 400 of audit entries unless set', async () => {
    expect(DEFAULT_RETENTION).toEqual({ usageDays: 90, eventsDays: 30, auditDays: 400 });
    expect((await loadConfig(secrets)).retention).toEqual(DEFAULT_RETENTION);
    const set = await loadConfig({
      ...secrets,
      MPK_RETAIN_USAGE_DAYS: '35',
      MPK_RETAIN_EVENTS_DAYS: '7',
      MPK_RETAIN_AUDIT_DAYS: '3650',
    });
    expect(set.retention).toEqual({ usageDays: 35, eventsDays: 7, auditDays: 3650 });
  });

  it('refuses what is not a whole number of days, naming the variable', async () => {
    for (const [name, value] of [
      ['MPK_RETAIN_USAGE_DAYS', '0'],
      ['MPK_RETAIN_EVENTS_DAYS', '1.5'],
      ['MPK_RETAIN_AUDIT_DAYS', 'forever'],
    ] as const)
      await expect(loadConfig({ ...secrets, [name]: value })).rejects.toThrow(new RegExp(name));
  });
});
