// PostgreSQL stopped for 10 s under proxied load, on a cluster of this test's own: the proxy keeps
// what it metered, writes it once the database is back, and every request a client received as
// 200 ends with exactly one ledger row, counted once in its lease's and its key's totals.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../demo/fake-provider.js';
import { createDatabase } from './support/db.js';
import { callProvider, proxiedLease, proxiedLoad } from './support/fixtures.js';
import { type PostgresCluster, startPostgresCluster } from './support/postgres-cluster.js';
import { startTestServer, type TestServer } from './support/server.js';

const OUTAGE_MS = 10_000;
let cluster: PostgresCluster;
let upstream: FakeUpstream;
let server: TestServer;

beforeAll(async () => {
  cluster = await startPostgresCluster();
  const database = await createDatabase(cluster.url, 'mpk');
  upstream = await startFakeUpstream();
  upstream.chunkDelayMs = 0;
  // Costs from the key's prices, small enough that the lease never nears its cap.
  upstream.costStyle = 'none';
  server = await startTestServer({
    database: { ...database, maxConnections: 10, kind: 'postgres', drop: async () => {} },
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
  await upstream?.close();
  await cluster?.destroy();
}, 60_000);

it('every request answered 200 during a 10 s outage has exactly one ledger row', async () => {
  const admin = await server.token('ADMIN', 'outage-admin');
  const worker = await server.token('WORKER', 'outage-worker');
  const { key, lease, token, baseUrl } = await proxiedLease(server, admin, worker, {
    baseUrl: upstream.url,
    apiKey: 'sk-outage-0123456789',
    config: { prices: { 'fake-model': { prompt: '0.01', completion: '0.01' } } },
  });

  const load = proxiedLoad(baseUrl, token);
  const { served, statuses } = load;

  await new Promise((r) => setTimeout(r, 2_000));
  const beforeOutage = served.size;
  await cluster.stop();
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  const duringOutage = served.size - beforeOutage;
  await cluster.start();
  await new Promise((r) => setTimeout(r, 4_000));
  await load.stop();

  // Requests were served before, during (admitted from the cache's recent figures) and after.
  expect(beforeOutage).toBeGreaterThan(10);
  expect(duringOutage).toBeGreaterThan(0);
  expect(served.size - beforeOutage - duringOutage).toBeGreaterThan(0);
  // Once the figures were too old to trust, the proxy refused rather than guessed.
  expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
  expect([...statuses.keys()].sort()).toEqual([200, 503].filter((s) => statuses.has(s)));

  const rows = async () =>
    server.app.db.usageRecord.findMany({ where: { leaseId: lease.id }, select: { requestId: true, costUsd: true } });
  await expect.poll(async () => (await rows()).length, { timeout: 30_000, interval: 250 }).toBe(served.size);
  const ledger = await rows();
  expect(new Set(ledger.map((r) => r.requestId))).toEqual(new Set(served.keys()));
  const total = ledger.reduce((sum, r) => sum.plus(r.costUsd), ledger[0]!.costUsd.times(0));
  const leaseRow = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
  const keyRow = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
  expect(leaseRow.requestCount).toBe(served.size);
  expect(total.greaterThan(0)).toBe(true);
  expect(leaseRow.usageUsd.toFixed(12)).toBe(total.toFixed(12));
  expect(keyRow.spendTodayUsd.toFixed(12)).toBe(total.toFixed(12));
  // And the server is whole again: a request after the outage is served and metered.
  const after = await callProvider(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
  expect(after.status).toBe(200);
}, 90_000);
