// Grants under real concurrency: many HTTP requests at once, spread over two server instances on
// one PostgreSQL database, each with its own connection pool. Counts are checked against the
// lease rows. On the embedded database (one backend, one connection) one instance serves all.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { codeOf, createKey, disableKeys, Q } from '../../tests/support/fixtures.js';
import { startTestServer, type TestServer } from '../../tests/support/server.js';

let a: TestServer;
let b: TestServer;
let admin: string;

beforeAll(async () => {
  a = await startTestServer();
  // The second instance shares the database and the secrets, as a second replica would.
  b =
    a.database.kind === 'postgres'
      ? await startTestServer({
          database: a.database,
          config: { jwtSecret: a.config.jwtSecret, masterKeys: a.config.masterKeys },
        })
      : a;
  admin = await a.token('ADMIN', 'admin-c');
});
afterAll(async () => {
  if (b !== a) await b?.close();
  await a?.close();
});
beforeEach(() => disableKeys(a));

const servers = () => [a, b];

/** Every request at once, alternating between the two instances. */
function all(tokens: string[], input: Record<string, unknown> = {}) {
  return Promise.all(tokens.map((token, i) => servers()[i % 2]!.gql(Q.request, { input }, token)));
}

async function countsMatchRows(keyIds: string[]) {
  const db = a.app.db;
  for (const id of keyIds) {
    const key = await db.managedKey.findUniqueOrThrow({ where: { id } });
    expect(key.activeLeaseCount).toBe(await db.lease.count({ where: { keyId: id, status: 'ACTIVE' } }));
  }
}

describe('concurrent grants', () => {
  it('200 simultaneous requests by one FREE user give exactly one lease', async () => {
    const key = await createKey(a, admin);
    const token = await a.token('USER', 'one-free-user');
    const results = await all(Array.from({ length: 200 }, () => token));
    const granted = results.filter((r) => !r.errors);
    expect(granted).toHaveLength(1);
    expect(new Set(results.filter((r) => r.errors).map(codeOf))).toEqual(new Set(['TIER_LIMIT_REACHED']));
    expect(await a.app.db.lease.count({ where: { userId: 'one-free-user' } })).toBe(1);
    expect((await a.app.db.user.findUniqueOrThrow({ where: { id: 'one-free-user' } })).activeLeaseCount).toBe(1);
    await countsMatchRows([key.id]);
  });

  it('200 simultaneous requests for one agent all get the same lease', async () => {
    await createKey(a, admin);
    const token = await a.token('USER', 'one-agent-user');
    const results = await all(
      Array.from({ length: 200 }, () => token),
      { agentId: 'the-agent' },
    );
    expect(results.filter((r) => r.errors)).toEqual([]);
    expect(new Set(results.map((r) => r.data.requestLease.id)).size).toBe(1);
    expect(await a.app.db.lease.count({ where: { userId: 'one-agent-user' } })).toBe(1);
  });

  it('1,000 users at once over 10 keys: every key ends with 100 ± 1 leases', async () => {
    const keys = [];
    for (let i = 0; i < 10; i++) keys.push(await createKey(a, admin, { provider: 'VENICE', label: `balance-${i}` }));
    const tokens = await Promise.all(Array.from({ length: 1000 }, (_, i) => a.token('USER', `balance-user-${i}`)));
    const results = await all(tokens, { provider: 'VENICE' });
    expect(results.filter((r) => r.errors).map((r) => r.errors)).toEqual([]);
    const perKey = await a.app.db.lease.groupBy({
      by: ['keyId'],
      where: { provider: 'VENICE', status: 'ACTIVE' },
      _count: true,
    });
    expect(perKey).toHaveLength(10);
    for (const group of perKey) expect(Math.abs(group._count - 100)).toBeLessThanOrEqual(1);
    await countsMatchRows(keys.map((k) => k.id));
  });

  it('no key ever exceeds its cap: 400 users for 10 keys of 30 slots', async () => {
    const keys = [];
    for (let i = 0; i < 10; i++)
      keys.push(
        await createKey(a, admin, {
          provider: 'OPENAI_COMPATIBLE',
          baseUrl: 'http://127.0.0.1:1/v1',
          defaultModel: 'm',
          maxActiveLeases: 30,
        }),
      );
    const tokens = await Promise.all(Array.from({ length: 400 }, (_, i) => a.token('USER', `cap-user-${i}`)));
    const results = await all(tokens, { provider: 'OPENAI_COMPATIBLE' });
    expect(results.filter((r) => !r.errors)).toHaveLength(300);
    expect(new Set(results.filter((r) => r.errors).map(codeOf))).toEqual(new Set(['NO_KEY_AVAILABLE']));
    for (const key of keys) expect(await a.app.db.lease.count({ where: { keyId: key.id, status: 'ACTIVE' } })).toBe(30);
    await countsMatchRows(keys.map((k) => k.id));
  });

  it('counters stay exact while grants, releases and revokes race', async () => {
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push(await createKey(a, admin, { provider: 'VENICE', label: `race-${i}` }));
    const users = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        a.token('USER', `race-user-${i}`).then((t) => ({ id: `race-user-${i}`, t })),
      ),
    );
    const first = await all(
      users.slice(0, 60).map((u) => u.t),
      { provider: 'VENICE' },
    );
    const leases = first.map((r) => r.data.requestLease);
    await Promise.all([
      ...leases.slice(0, 30).map((l, i) => servers()[i % 2]!.gql(Q.release, { id: l.id }, users[i]!.t)),
      ...leases.slice(30, 45).map((l, i) => servers()[i % 2]!.gql(Q.revoke, { id: l.id }, admin)),
      all(
        users.slice(60).map((u) => u.t),
        { provider: 'VENICE' },
      ),
    ]);
    await countsMatchRows(keys.map((k) => k.id));
    for (const u of users.slice(0, 45)) {
      expect((await a.app.db.user.findUniqueOrThrow({ where: { id: u.id } })).activeLeaseCount).toBe(0);
    }
  });
});
