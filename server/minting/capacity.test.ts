// Venice's limits on one minting key: 500 active keys an account (MPK refuses the 501st lease, naming
// the reason) and 20 creations a minute (MPK spreads its creations; the fake would answer 429). Time
// is the injected clock, shared by the runner and the fake, moved a minute at a time.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFakeKeyAdmin } from '../../demo/fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { createManualClock } from '../../tests/support/clock.js';
import { createMintingKey, disableKeys, newUser, ok, Q } from '../../tests/support/fixtures.js';
import { startTestServer, type TestServer } from '../../tests/support/server.js';

const clock = createManualClock('2026-07-01T00:00:00.000Z');
const keyAdmin = createFakeKeyAdmin({ style: 'venice', clock });
let upstream: FakeUpstream;
let server: TestServer;
let admin: string;

beforeAll(async () => {
  upstream = await startFakeUpstream({ keyAdmin });
  server = await startTestServer({ clock, scheduler: false });
  admin = await server.token('ADMIN', 'admin-capacity');
});
afterAll(async () => {
  await server?.close();
  await upstream?.close();
});

async function requestVenice() {
  const user = await newUser(server, { prefix: 'cap' });
  return server.gql(Q.request, { input: { provider: 'VENICE', framework: 'GENERIC' } }, user.token);
}

it('600 leases on one Venice minting key: 500 granted, 100 refused for mint capacity; never over 20 creations a minute', async () => {
  await disableKeys(server);
  const key = await createMintingKey(server, admin, {
    provider: 'VENICE',
    adminKey: keyAdmin.adminKey,
    url: upstream.url,
  });

  const answers = [];
  // Twenty at a time: grants on one provider queue on its lock whatever the concurrency.
  for (let i = 0; i < 600; i += 20) answers.push(...(await Promise.all(Array.from({ length: 20 }, requestVenice))));
  const granted = answers.filter((a) => !a.errors);
  const refused = answers.filter((a) => a.errors);
  expect(granted).toHaveLength(500);
  expect(refused).toHaveLength(100);
  for (const r of refused) {
    expect(r.errors![0]).toMatchObject({
      message: expect.stringContaining('mint capacity'),
      extensions: { code: 'NO_KEY_AVAILABLE', reason: 'MINT_CAPACITY' },
    });
  }
  const counts = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
  expect(counts).toMatchObject({ maxMintedKeys: 500, mintedKeyCount: 500, activeLeaseCount: 500 });

  // A minute at a time: each drain makes at most 20 keys and puts the rest off.
  const perMinute: number[] = [];
  for (let minute = 0; keyAdmin.keys.size < 500 && minute < 40; minute++) {
    const before = keyAdmin.keys.size;
    await server.app.providerJobs.runNow();
    perMinute.push(keyAdmin.keys.size - before);
    clock.advance(60_000);
  }
  expect(keyAdmin.keys.size).toBe(500);
  expect(perMinute).toEqual(Array(25).fill(20));
  expect(keyAdmin.maxCreationsInAMinute()).toBe(20);
  expect(keyAdmin.refusedCreations).toBe(0);
  expect(keyAdmin.activeKeys()).toHaveLength(500);
  expect(await server.app.db.providerJob.count({ where: { status: { not: 'DONE' } } })).toBe(0);

  // A lease ends and its key is deleted: a slot opens for the next lease.
  const first = granted[0]!.data.requestLease as { id: string };
  ok(await server.gql(Q.release, { id: first.id }, admin), 'releaseLease');
  await server.app.providerJobs.runNow();
  expect(keyAdmin.activeKeys()).toHaveLength(499);
  const next = await requestVenice();
  expect(next.errors).toBeUndefined();
  await server.app.providerJobs.runNow();
  expect(keyAdmin.activeKeys()).toHaveLength(500);
  expect((await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } })).mintedKeyCount).toBe(500);
}, 240_000);
