// npm run bench:leases — grants per second with 50 concurrent clients (distinct users), and the
// latency of resolveLease next to the trivial `{ __typename }` on the same server.
import { dataOf } from '../tests/support/graphql.js';
import { benchDatabase, ms, pool, startServer, stats } from './support.js';

const GRANTS = Number(process.env.BENCH_GRANTS ?? 3000);
const CLIENTS = 50;
const RESOLVES = Number(process.env.BENCH_RESOLVES ?? 2000);

const db = await benchDatabase();
const server = await startServer(db);
try {
  const admin = await server.token('ADMIN', 'bench-admin');
  const worker = await server.token('WORKER', 'bench-worker');
  for (let i = 0; i < 20; i++) {
    dataOf(
      await server.gql(
        `mutation($i: CreateManagedKeyInput!) { createManagedKey(input: $i) { id } }`,
        { i: { provider: 'OPENROUTER', label: `bench-${i}`, apiKey: `sk-or-v1-bench-${i}-0123456789abcdef` } },
        admin,
      ),
    );
  }
  const tokens = await Promise.all(Array.from({ length: GRANTS }, (_, i) => server.token('USER', `bench-user-${i}`)));
  const leaseIds: string[] = [];
  const request = `mutation($input: RequestLeaseInput!) { requestLease(input: $input) { id } }`;
  // Warm-up: the first requests compile queries and fill pools.
  await pool(
    100,
    10,
    async (i) =>
      void dataOf(
        await server.gql(request, { input: { agentId: `warm-${i}` } }, await server.token('USER', `warm-${i}`)),
      ),
  );
  const grantMs = await pool(GRANTS, CLIENTS, async (i) => {
    const data = dataOf(await server.gql(request, { input: { agentId: `agent-${i}` } }, tokens[i]!));
    leaseIds.push(data.requestLease.id);
  });

  const resolve = `query($id: ID) { resolveLease(leaseId: $id) { apiKey baseUrl model env agentConfig } }`;
  const trivial = `{ __typename }`;
  const time = async (query: string, variables: Record<string, unknown>) => {
    const started = performance.now();
    dataOf(await server.gql(query, variables, worker));
    return performance.now() - started;
  };
  for (let i = 0; i < 300; i++) {
    await time(trivial, {});
    await time(resolve, { id: leaseIds[i % leaseIds.length] });
  }
  const resolveSamples: number[] = [];
  const trivialSamples: number[] = [];
  // Interleaved, one request at a time, so both see the same machine state.
  for (let i = 0; i < RESOLVES; i++) {
    trivialSamples.push(await time(trivial, {}));
    resolveSamples.push(await time(resolve, { id: leaseIds[i % leaseIds.length] }));
  }
  const r = stats(resolveSamples);
  const t = stats(trivialSamples);
  console.log(
    `bench:leases — server on PostgreSQL, ${CLIENTS} concurrent clients, ` +
      `${GRANTS} grants to distinct users over 20 keys`,
  );
  console.log(
    `grants:                 ${(GRANTS / (grantMs / 1000)).toFixed(0)} grants/s ` +
      `(${GRANTS} in ${(grantMs / 1000).toFixed(2)} s)`,
  );
  console.log(`resolveLease:           p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  (n=${r.n})`);
  console.log(`{ __typename }:         p50 ${ms(t.p50)}  p99 ${ms(t.p99)}  (n=${t.n})`);
  console.log(`ratio resolve/trivial:  p50 ${(r.p50 / t.p50).toFixed(2)}x  p99 ${(r.p99 / t.p99).toFixed(2)}x`);
} finally {
  await server.stop();
  await db.drop();
}
