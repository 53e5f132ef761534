// One query per page view: the statements a page's GraphQL query costs do not grow with the
// number of rows it shows (no N+1 in resolvers). Counted at the pg driver, in this process.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKey, ok, reportUsage, requestLease } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';

// What the dashboard's Leases and Users pages ask for, relations included.
const LEASES_PAGE = `query($first: Int) {
  leases(first: $first) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
  edges { node { id status tier agentId usageUsd spendCapUsd expiresAt user { id email tier spendThisMonthUsd }
  key { id label maskedKey } events(first: 3) { type at } } } } }`;
const USERS_PAGE = `query($first: Int) {
  users(first: $first) { totalCount edges { node { id tier activeLeaseCount spendThisMonthUsd } } } }`;

let server: TestServer;
let admin: string;
let worker: string;

/** The event log's tail polls on its own timer: not part of any request. */
const BACKGROUND = /pg_snapshot_xmin/;

/** Runs `work` and counts the statements it sent to PostgreSQL. */
async function statements(work: () => Promise<unknown>): Promise<number> {
  const original = pg.Client.prototype.query;
  let count = 0;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text?: string } | undefined;
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    if (!BACKGROUND.test(text)) count++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = original;
  }
  return count;
}

withTestServer({ scheduler: false, roles: 'q' }, (s) => ({ server, admin, worker } = s));
beforeAll(async () => {
  for (let k = 0; k < 4; k++) await createKey(server, admin, { label: `q-${k}` });
  for (let i = 0; i < 40; i++) {
    const user = await server.token('USER', `q-user-${i}`, { email: `q${i}@example.com` });
    const lease = await requestLease(server, user, { agentId: `a-${i}` });
    ok(await reportUsage(server, worker, { leaseId: lease.id, costUsd: '0.01' }), 'reportUsage');
  }
});

describe('page queries', () => {
  it('cost the same number of statements for 5 rows as for 40', async () => {
    for (const query of [LEASES_PAGE, USERS_PAGE]) {
      const small = await statements(async () =>
        ok(await server.gql(query, { first: 5 }, admin), query.includes('leases(') ? 'leases' : 'users'),
      );
      const large = await statements(async () =>
        ok(await server.gql(query, { first: 40 }, admin), query.includes('leases(') ? 'leases' : 'users'),
      );
      expect(large, query.slice(0, 40)).toBe(small);
      // The counter counts: a page needs its rows, its relations and the count.
      expect(small).toBeGreaterThanOrEqual(3);
      expect(small).toBeLessThanOrEqual(12);
    }
  });
});
