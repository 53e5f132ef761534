// Minted keys on two server processes: only the scheduler's instance calls the provider, a grant
// on the other instance wakes it through the event log, and when the leader is killed (-9) the
// other instance takes the queue over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeKeyAdmin } from '../demo/fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from '../demo/fake-provider.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { createMintingKey, newUser, ok, Q, requestLease } from './support/fixtures.js';
import { deployment, killServers, type ServerProcess, schedulerRole } from './support/process.js';
import { until } from './support/wait.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyAdmin = createFakeKeyAdmin({ style: 'venice' });
let upstream: FakeUpstream;
let database: TestDatabase;

const { instances, start } = deployment('mint-multi', () => ({
  DATABASE_URL: database.url,
  DATABASE_POOL_SIZE: '5',
  REDIS_URL,
}));

/** A new user's lease on `on`, resolved by a worker there: the key handed out. */
async function leaseAndKey(on: ServerProcess) {
  const lease = await requestLease(on, (await newUser(on)).token, { provider: 'VENICE', framework: 'GENERIC' });
  const resolved = ok(await on.gql(Q.resolve, { leaseId: lease.id }, await on.token('WORKER', 'w')), 'resolveLease');
  return resolved.apiKey as string;
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('minted keys on two instances', () => {
  beforeAll(async () => {
    upstream = await startFakeUpstream({ keyAdmin });
    database = await createTestDatabase();
    await start('a');
    await start('b');
  });
  afterAll(async () => {
    await killServers();
    await database?.drop();
    await upstream?.close();
  });

  it("the leader makes the follower's keys, and the survivor takes over when the leader dies", async () => {
    await until(async () => (await Promise.all(instances.map(schedulerRole))).includes('leader'), 10_000);
    const roles = await Promise.all(instances.map(schedulerRole));
    const leader = instances[roles.indexOf('leader')]!;
    const follower = instances[roles.indexOf('standby')]!;
    await createMintingKey(
      follower,
      await follower.token('ADMIN', 'multi-admin'),
      { provider: 'VENICE', adminKey: keyAdmin.adminKey, url: upstream.url },
      { config: { delivery: 'DIRECT' } },
    );

    // Granted and resolved on the follower: the leader hears of it and makes the key in time.
    const first = await leaseAndKey(follower);
    expect([...keyAdmin.keys.values()].map((k) => k.secret)).toEqual([first]);

    const exited = new Promise((r) => leader.child.once('exit', r));
    leader.child.kill('SIGKILL');
    await exited;
    await until(async () => (await schedulerRole(follower)) === 'leader', 15_000);
    const second = await leaseAndKey(follower);
    expect([...keyAdmin.keys.values()].map((k) => k.secret)).toEqual([first, second]);
    expect(keyAdmin.calls.filter((c) => c.method === 'POST')).toHaveLength(2);
  }, 90_000);
});
