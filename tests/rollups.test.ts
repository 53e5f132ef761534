// The spend rollups (per key, model and UTC day; per lease and UTC day) are upserted by
// mpk_record_usage in the statement that writes the ledger, so they always equal the ledger's own
// sums; the migration's backfill computes the same rows from a ledger written before them; and
// spendSeries reads the rollups (it still answers after the ledger's rows are gone).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationsDir } from '../server/db/migrate.js';
import { createManualClock } from './support/clock.js';
import { createKey, disableKeys, newUser, ok, reportUsage, requestLease } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';

const SERIES = `query($keyId: ID, $days: Int, $groupBy: SpendGrouping) {
  spendSeries(keyId: $keyId, days: $days, groupBy: $groupBy) { day model costUsd requests promptTokens completionTokens } }`;

const clock = createManualClock('2026-04-10T12:00:00.000Z');
let server: TestServer;
let admin: string;
let worker: string;
let client: pg.Client;

withTestServer({ clock, roles: 'ru' }, (s) => ({ server, admin, worker } = s));

// The ledger summed the way each rollup sums it, and each rollup as stored: equal row for row.
const LEDGER_DAILY = `SELECT at::date AS day, "keyId", coalesce(model, '') AS model, sum("costUsd")::text AS cost,
  count(*)::text AS requests, coalesce(sum("promptTokens"), 0)::text AS prompt,
  coalesce(sum("completionTokens"), 0)::text AS completion
  FROM "UsageRecord" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;
const ROLLUP_DAILY = `SELECT day, "keyId", model, "costUsd"::text AS cost, requests::text AS requests,
  "promptTokens"::text AS prompt, "completionTokens"::text AS completion FROM "UsageDaily" ORDER BY 1, 2, 3`;
const LEDGER_LEASE = `SELECT u.at::date AS day, u."leaseId", l."userId", u."keyId", sum(u."costUsd")::text AS cost,
  count(*)::text AS requests FROM "UsageRecord" u JOIN "Lease" l ON l.id = u."leaseId" GROUP BY 1, 2, 3, 4 ORDER BY 1, 2`;
const ROLLUP_LEASE = `SELECT day, "leaseId", "userId", "keyId", "costUsd"::text AS cost, requests::text AS requests
  FROM "UsageLeaseDaily" ORDER BY 1, 2`;

const rows = async (text: string) => (await client.query(text)).rows;

let keyA: { id: string };

beforeAll(async () => {
  client = new pg.Client({ connectionString: server.database.url });
  await client.connect();
  await disableKeys(server);
  keyA = await createKey(server, admin, { provider: 'VENICE', label: 'rollup a' });
  await createKey(server, admin, { provider: 'OPENROUTER', label: 'rollup b' });
  const one = await newUser(server, { prefix: 'ru', tier: 'ENTERPRISE', admin });
  const two = await newUser(server, { prefix: 'ru2', tier: 'ENTERPRISE', admin });
  const leases = [
    await requestLease(server, one.token, { provider: 'VENICE', agentId: 'a' }),
    await requestLease(server, one.token, { provider: 'OPENROUTER', agentId: 'b' }),
    await requestLease(server, two.token, { provider: 'VENICE', agentId: 'c' }),
  ];
  // Three UTC days, two models and none, sub-micro-dollar costs, a duplicate request id.
  const days = ['2026-04-08T23:59:59.000Z', '2026-04-09T00:00:01.000Z', '2026-04-10T11:00:00.000Z'];
  let n = 0;
  for (const at of days) {
    clock.set(at);
    for (const lease of leases)
      for (const model of ['m-large', 'm-small', null]) {
        n++;
        const input = {
          leaseId: lease.id,
          costUsd: `0.${String(n).padStart(2, '0')}0000012345`,
          model,
          promptTokens: 10 * n,
          completionTokens: n,
          requestId: `r-${n}`,
        };
        ok(await reportUsage(server, worker, input), 'reportUsage');
        if (n % 7 === 0) await reportUsage(server, worker, input); // counted once
      }
  }
  clock.set('2026-04-10T12:00:00.000Z');
}, 60_000);

afterAll(async () => client?.end());

describe('spend rollups', () => {
  it('equal the ledger summed per key, model and day, and per lease and day', async () => {
    const ledger = await rows(LEDGER_DAILY);
    expect(ledger.length).toBeGreaterThan(6);
    expect(await rows(ROLLUP_DAILY)).toEqual(ledger);
    expect(await rows(ROLLUP_LEASE)).toEqual(await rows(LEDGER_LEASE));
  });

  it("the migration's backfill builds the same rows from the ledger alone", async () => {
    const dir = (await readdir(migrationsDir)).find((d) => d.endsWith('_usage_rollups'))!;
    const script = await readFile(path.join(migrationsDir, dir, 'migration.sql'), 'utf8');
    const backfill = script.slice(script.indexOf('-- Backfill'));
    expect(backfill).toMatch(/INSERT INTO "UsageDaily"[\s\S]*INSERT INTO "UsageLeaseDaily"/);
    const daily = await rows(ROLLUP_DAILY);
    const lease = await rows(ROLLUP_LEASE);
    await client.query('BEGIN');
    try {
      await client.query('DELETE FROM "UsageDaily"; DELETE FROM "UsageLeaseDaily"');
      await client.query(backfill);
      expect(await rows(ROLLUP_DAILY)).toEqual(daily);
      expect(await rows(ROLLUP_LEASE)).toEqual(lease);
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('spendSeries reads the rollups: the same answer with the ledger rows gone', async () => {
    const series = async (groupBy: string) =>
      ok(await server.gql(SERIES, { keyId: keyA.id, days: 5, groupBy }, admin), 'spendSeries');
    const byDay = await series('DAY');
    const byModel = await series('MODEL');
    expect(byDay.map((p: { requests: number }) => p.requests)).toEqual([0, 0, 6, 6, 6]);
    expect(byModel.map((p: { model: string | null }) => p.model).sort()).toEqual(['m-large', 'm-small', null].sort());
    // The server reads through its own connections: the ledger is renamed away for them, then back.
    await client.query('ALTER TABLE "UsageRecord" RENAME TO "UsageRecordAway"');
    try {
      expect(await series('DAY')).toEqual(byDay);
      expect(await series('MODEL')).toEqual(byModel);
    } finally {
      await client.query('ALTER TABLE "UsageRecordAway" RENAME TO "UsageRecord"');
    }
  });
});
