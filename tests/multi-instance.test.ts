// Two real server processes on one PostgreSQL and one Redis: events cross instances, exactly one
// instance runs the scheduler, and when it is killed (-9) the other takes over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../demo/fake-provider.js';
import { createDb, type Db } from '../server/db/client.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { completionStatus, createKey, ok, Q, reportUsage, requestLease, resolvedLease } from './support/fixtures.js';
import { deployment, killServers, type ServerProcess, schedulerRole } from './support/process.js';
import { until } from './support/wait.js';
import { collect, settle, wsClient } from './support/ws.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let database: TestDatabase;
let db: Db;

const { instances, start } = deployment('m1', () => ({
  DATABASE_URL: database.url,
  DATABASE_POOL_SIZE: '5',
  REDIS_URL,
}));
const grant = async (i: ServerProcess, sub: string) => (await requestLease(i, await i.token('USER', sub))).id as string;

describe.skipIf(!process.env.TEST_DATABASE_URL)('two instances', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb(database.url, { maxConnections: 2 });
    await start('a');
    await start('b');
    await createKey(instances[0]!, await instances[0]!.token('ADMIN', 'multi-admin'), {
      label: 'shared',
      apiKey: 'sk-or-v1-multi-instance-0001',
    });
  });
  afterAll(async () => {
    await killServers();
    await db?.$disconnect();
    await database?.drop();
  });

  it('a grant on one instance is heard by a subscriber on the other', async () => {
    const [a, b] = instances as [ServerProcess, ServerProcess];
    const c = wsClient(b.url, await b.token('ADMIN', 'multi-admin'));
    const stream = collect(c, `subscription { leaseEvents(types: [GRANTED]) { leaseId type } }`);
    await settle(300);
    const id = await grant(a, 'cross-user');
    const [event] = await stream.waitFor(1, 5000);
    expect(event.leaseEvents).toEqual({ leaseId: id, type: 'GRANTED' });
    stream.dispose();
    await c.dispose();
  });

  it(
    "a lease revoked on one instance stops the other's proxy within a second; " +
      'spend recorded there is enforced here',
    async () => {
      const [a, b] = instances as [ServerProcess, ServerProcess];
      const upstream = await startFakeUpstream();
      try {
        const admin = await a.token('ADMIN', 'multi-admin');
        await createKey(a, admin, {
          provider: 'OPENAI_COMPATIBLE',
          label: 'proxied',
          apiKey: 'sk-multi-proxied-0001',
          baseUrl: upstream.url,
          defaultModel: 'fake-model',
          dailyLimitUsd: '1',
        });
        const worker = await a.token('WORKER', 'multi-worker');
        const lease = () => resolvedLease(a, worker, { provider: 'OPENAI_COMPATIBLE' }, { prefix: 'proxy' });
        // Through B, whatever instance resolved the lease.
        const complete = (bearer: string) => completionStatus(`${b.url}/v1`, bearer);

        const revoked = await lease();
        expect(await complete(revoked.token)).toBe(200);
        ok(await a.gql(Q.revoke, { id: revoked.lease.id }, admin), 'revokeLease');
        const revokedAfter = await until(async () => (await complete(revoked.token)) === 403, 5000);
        expect(revokedAfter).toBeLessThan(1000);

        const spent = await lease();
        expect(await complete(spent.token)).toBe(200);
        ok(await reportUsage(a, worker, { leaseId: spent.lease.id, requestId: 'on-a', costUsd: '1' }), 'reportUsage');
        const refusedAfter = await until(async () => (await complete(spent.token)) === 402, 5000);
        expect(refusedAfter).toBeLessThan(1000);
      } finally {
        await upstream.close();
      }
    },
  );

  it('exactly one instance runs the scheduler, and only it expires leases', async () => {
    const roles = await Promise.all(instances.map(schedulerRole));
    expect(roles.sort()).toEqual(['leader', 'standby']);
    const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => grant(instances[i % 2]!, `due-user-${i}`)));
    await db.lease.updateMany({ where: { id: { in: ids } }, data: { expiresAt: new Date(Date.now() + 500) } });
    await until(async () => (await db.lease.count({ where: { id: { in: ids }, status: 'EXPIRED' } })) === 5, 10_000);
    const byLeader = (await Promise.all(instances.map(schedulerRole))).indexOf('leader');
    expect(instances[byLeader]!.output()).toMatch(/"expired":\d+/);
    expect(instances[1 - byLeader]!.output()).not.toMatch(/"expired":\d+/);
  });

  it('when the leader is killed (-9), the other expires leases due afterwards within 10 s', async () => {
    const roles = await Promise.all(instances.map(schedulerRole));
    const leader = instances[roles.indexOf('leader')]!;
    const survivor = instances[roles.indexOf('standby')]!;
    leader.child.kill('SIGKILL');
    await new Promise((r) => leader.child.once('exit', r));
    const ids = await Promise.all(Array.from({ length: 3 }, (_, i) => grant(survivor, `after-kill-${i}`)));
    const due = Date.now() + 500;
    await db.lease.updateMany({ where: { id: { in: ids } }, data: { expiresAt: new Date(due) } });
    await until(async () => (await db.lease.count({ where: { id: { in: ids }, status: 'EXPIRED' } })) === 3, 10_000);
    expect(Date.now() - due).toBeLessThan(10_000);
    expect(await schedulerRole(survivor)).toBe('leader');
  });
});
