// totalCount never counts a growing table: exact up to 10,000, then the planner's estimate for an
// unfiltered list or 10,000 as a lower bound for a filtered one, said by totalCountIsEstimate.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { COUNT_CAP } from '../server/core/paging.js';
import { COUNT_CAP as DASHBOARD_CAP, formatTotal } from '../web/src/lib/format.js';
import { ok } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';

const AUDIT = `query($targetType: String, $targetId: ID, $actorId: String) {
  auditLog(targetType: $targetType, targetId: $targetId, actorId: $actorId, first: 2) {
    totalCount totalCountIsEstimate edges { node { id } } } }`;

let server: TestServer;
let admin: string;

withTestServer({ roles: 'tc' }, (s) => ({ server, admin } = s));

async function sql(text: string) {
  const client = new pg.Client({ connectionString: server.database.url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

const audit = async (variables: Record<string, unknown> = {}) =>
  ok(await server.gql(AUDIT, variables, admin), 'auditLog');

describe('totalCount', () => {
  beforeAll(async () => {
    // 10,050 entries about one target (a filtered list past the cap) and 5,000 about others.
    await sql(`
      INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId")
      SELECT now(), 'counter', 'ADMIN', 'test.count', 'Thing', CASE WHEN i <= 10050 THEN 'big' ELSE 'small-' || i END
      FROM generate_series(1, 15050) i`);
  });

  it('is exact for a filtered list of up to 10,000', async () => {
    expect(await audit({ targetId: 'small-11000' })).toMatchObject({ totalCount: 1, totalCountIsEstimate: false });
    expect(await audit({ targetId: 'none' })).toMatchObject({ totalCount: 0, totalCountIsEstimate: false });
  });

  it('stops at 10,000 for a filtered list that matches more, and says so', async () => {
    const big = await audit({ targetId: 'big' });
    expect(big).toMatchObject({ totalCount: 10_000, totalCountIsEstimate: true });
    expect(big.edges).toHaveLength(2);
  });

  it("is the planner's estimate for an unfiltered list past 10,000 once the table is analyzed", async () => {
    // Before ANALYZE the planner knows nothing (reltuples -1): the capped count answers.
    await sql(`VACUUM (ANALYZE) "AuditEntry"`);
    const actual = Number((await sql(`SELECT count(*) AS n FROM "AuditEntry"`))[0].n);
    const all = await audit();
    expect(all.totalCountIsEstimate).toBe(true);
    // ANALYZE samples 30,000 rows: a table this small is read whole, so the estimate is close.
    expect(Math.abs(all.totalCount - actual)).toBeLessThanOrEqual(actual * 0.05);
    expect(all.totalCount).toBeGreaterThan(10_000);
  });

  it('is exact and not estimated for a small table, unfiltered', async () => {
    const keys = ok(await server.gql('{ managedKeys { totalCount totalCountIsEstimate } }', {}, admin), 'managedKeys');
    expect(keys.totalCountIsEstimate).toBe(false);
  });

  it('reads on the dashboard as exact, "10,000+" (stopped counting) or "about N" (estimated)', () => {
    expect(DASHBOARD_CAP).toBe(COUNT_CAP);
    expect(formatTotal(1234, false)).toBe('1,234');
    expect(formatTotal(10_000, true)).toBe('10,000+');
    expect(formatTotal(2_500_000, true)).toBe('about 2,500,000');
  });
});
