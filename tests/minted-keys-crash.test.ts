// Minted keys across a crash: a real server process killed (-9) between the provider's making of a
// key and MPK's record of it, and again while a key is being deleted. After a restart on the same
// database no provider key is left that MPK does not know of (the orphan sweep deletes the one it
// never recorded), no key is deleted twice, and the deletion's final usage reading, run twice, does
// no harm. The key-management fake holds its answer back while the process is killed, so the crash
// falls exactly between the provider's action and MPK's record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeKeyAdmin, type KeyAdminCall } from '../demo/fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from '../demo/fake-provider.js';
import { createDb, type Db } from '../server/db/client.js';
import { testSecrets } from './support/config.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { createMintingKey, newUser, ok, Q, requestLease } from './support/fixtures.js';
import { killServers, type ServerProcess, startServerProcess } from './support/process.js';
import { until } from './support/wait.js';

const secrets = testSecrets('mint-crash');
const keyAdmin = createFakeKeyAdmin({ style: 'openrouter' });
let upstream: FakeUpstream;
let database: TestDatabase;
let db: Db;

const start = () =>
  startServerProcess(
    {
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '5',
      // A dead runner's claim runs out in 2 s (60 s by default), and the sweep runs every second.
      MPK_PROVIDER_JOB_CLAIM_SECONDS: '2',
      MPK_MINTED_KEY_SWEEP_SECONDS: '1',
    },
    { name: 'minting', secrets },
  );

/** Kills the process the moment the fake has done a `method` call, before MPK hears the answer. */
async function crashOn(method: string, server: ServerProcess, act: () => Promise<unknown>): Promise<KeyAdminCall> {
  let arrived!: (call: KeyAdminCall) => void;
  const reached = new Promise<KeyAdminCall>((r) => {
    arrived = r;
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  keyAdmin.beforeAnswer = (call) => {
    if (call.method !== method) return undefined;
    arrived(call);
    return gate;
  };
  await act();
  const call = await reached;
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGKILL');
  await exited;
  keyAdmin.beforeAnswer = null;
  release();
  return call;
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('minted keys and a crash (kill -9)', () => {
  beforeAll(async () => {
    upstream = await startFakeUpstream({ keyAdmin });
    database = await createTestDatabase();
    db = createDb(database.url, { maxConnections: 2 });
  });
  afterAll(async () => {
    await killServers();
    await db?.$disconnect();
    await database?.drop();
    await upstream?.close();
  });

  it('leaves no key MPK does not know of, and deletes none twice', async () => {
    let server = await start();
    const admin = await server.token('ADMIN', 'crash-admin');
    const worker = await server.token('WORKER', 'crash-worker');
    const key = await createMintingKey(
      server,
      admin,
      { provider: 'OPENROUTER', adminKey: keyAdmin.adminKey, url: upstream.url },
      { config: { delivery: 'DIRECT' } },
    );
    const user = await newUser(server);

    // 1. Killed after the provider made the key, before MPK recorded it.
    let lease: { id: string } | undefined;
    await crashOn('POST', server, async () => {
      lease = await requestLease(server, user.token, { provider: 'OPENROUTER', framework: 'GENERIC' });
    });
    const [lost] = keyAdmin.activeKeys();
    expect(keyAdmin.activeKeys()).toHaveLength(1);
    expect((await db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease!.id } })).providerKeyId).toBeNull();

    server = await start();
    // The dead runner's claim runs out, the creation runs again, and the sweep deletes the key never recorded.
    await until(async () => {
      const minted = await db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease!.id } });
      return minted.status === 'ACTIVE' && lost!.deletedAt !== null;
    }, 30_000);
    const minted = await db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease!.id } });
    expect(keyAdmin.activeKeys().map((k) => k.id)).toEqual([minted.providerKeyId]);
    expect(lost!.deletes).toBe(1);
    const resolved = ok(await server.gql(Q.resolve, { leaseId: lease!.id }, worker), 'resolveLease');
    expect(resolved.apiKey).toBe(keyAdmin.keys.get(minted.providerKeyId!)!.secret);
    expect(await db.auditEntry.count({ where: { action: 'mintedKey.orphanDeleted', targetId: key.id } })).toBe(1);

    // 2. Killed after the provider deleted the key, before MPK recorded it.
    const deletion = await crashOn('DELETE', server, async () =>
      ok(await server.gql(Q.release, { id: lease!.id }, admin), 'releaseLease'),
    );
    expect(deletion.path).toBe(`/keys/${minted.providerKeyId}`);
    expect((await db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease!.id } })).status).toBe('ACTIVE');

    server = await start();
    // Run again, the deletion finds the key gone (404): done, not done twice.
    await until(
      async () => (await db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease!.id } })).status === 'DELETED',
      30_000,
    );
    expect(keyAdmin.activeKeys()).toEqual([]);
    expect([...keyAdmin.keys.values()].map((k) => k.deletes)).toEqual([1, 1]);
    expect(keyAdmin.calls.filter((c) => c.method === 'DELETE').map((c) => c.status)).toEqual([200, 200, 404]);
    // Each run read the key's usage first: the dead one's final reading is stored, and the second
    // run's reading (the key gone by then) only says so.
    const readings = keyAdmin.calls.filter((c) => c.method === 'GET' && c.path === `/keys/${minted.providerKeyId}`);
    expect(readings.map((c) => c.status)).toEqual([200, 404]);
    expect(await db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease!.id } })).toMatchObject({
      providerCheckedAt: expect.any(Date),
      providerError: 'the provider no longer knows this key (404)',
    });
    expect((await db.managedKey.findUniqueOrThrow({ where: { id: key.id } })).mintedKeyCount).toBe(0);
    await server.stop();
  }, 120_000);
});
