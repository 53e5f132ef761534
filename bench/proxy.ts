// npm run bench:proxy — against a local fake upstream that answers at once: latency and
// throughput of (a) direct calls and (b) the same calls through MPK's metering proxy, one at a
// time and with 50 concurrent clients; the latency MPK adds; and reportUsage throughput.
import { startFakeUpstream } from '../demo/fake-provider.js';
import { dataOf } from '../tests/support/graphql.js';
import { benchDatabase, cpuTimes, ms, pool, startServer, stats } from './support.js';

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 2000);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 5000);
const CLIENTS = 50;
const REPORTS = Number(process.env.BENCH_REPORTS ?? 5000);

const upstream = await startFakeUpstream();
const db = await benchDatabase();
const server = await startServer(db);
try {
  const admin = await server.token('ADMIN', 'bench-admin');
  const apiKey = 'sk-bench-provider-0123456789';
  dataOf(
    await server.gql(
      `mutation($i: CreateManagedKeyInput!) { createManagedKey(input: $i) { id } }`,
      {
        i: { provider: 'OPENAI_COMPATIBLE', label: 'bench', apiKey, baseUrl: upstream.url, defaultModel: 'fake-model' },
      },
      admin,
    ),
  );
  dataOf(
    await server.gql(
      `mutation { updateTierPolicy(tier: FREE, input: { spendCapUsd: "1000000" }) { tier } }`,
      {},
      admin,
    ),
  );
  const user = await server.token('USER', 'bench-user');
  const lease = dataOf(
    await server.gql(
      `mutation { requestLease(input: { provider: OPENAI_COMPATIBLE, framework: GENERIC }) { id } }`,
      {},
      user,
    ),
  ).requestLease.id;
  const worker = await server.token('WORKER', 'bench-worker');
  const resolved = dataOf(
    await server.gql(`query($id: ID) { resolveLease(leaseId: $id) { apiKey baseUrl } }`, { id: lease }, worker),
  ).resolveLease;

  const body = JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
  const direct = { url: `${upstream.url}/chat/completions`, key: apiKey };
  const proxied = { url: `${resolved.baseUrl}/chat/completions`, key: resolved.apiKey };
  const once = async (target: { url: string; key: string }) => {
    const started = performance.now();
    const res = await fetch(target.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.key}`, 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    return performance.now() - started;
  };

  for (let i = 0; i < 300; i++) {
    await once(direct);
    await once(proxied);
  }
  const seq = { direct: [] as number[], proxied: [] as number[] };
  for (let i = 0; i < SEQUENTIAL; i++) {
    seq.direct.push(await once(direct));
    seq.proxied.push(await once(proxied));
  }
  const conc = { direct: [] as number[], proxied: [] as number[] };
  const directMs = await pool(CONCURRENT, CLIENTS, async () => void conc.direct.push(await once(direct)));
  const cpuBefore = await cpuTimes(server.child.pid!);
  const proxiedMs = await pool(CONCURRENT, CLIENTS, async () => void conc.proxied.push(await once(proxied)));
  const cpuAfter = await cpuTimes(server.child.pid!);
  const perRequest = (part: keyof typeof cpuAfter) =>
    `${(((cpuAfter[part] - cpuBefore[part]) / CONCURRENT) * 1000).toFixed(0)} µs`;

  const reportMs = await pool(REPORTS, CLIENTS, async (i) => {
    dataOf(
      await server.gql(
        `mutation($i: ReportUsageInput!) { reportUsage(input: $i) { duplicate } }`,
        { i: { leaseId: lease, requestId: `bench-${i}`, costUsd: '0.000100' } },
        worker,
      ),
    );
  });

  const sd = stats(seq.direct);
  const sp = stats(seq.proxied);
  const cd = stats(conc.direct);
  const cp = stats(conc.proxied);
  const directRps = CONCURRENT / (directMs / 1000);
  const proxiedRps = CONCURRENT / (proxiedMs / 1000);
  console.log(`bench:proxy — fake upstream on loopback, MPK server on PostgreSQL`);
  console.log(`sequential  direct:   p50 ${ms(sd.p50)}  p99 ${ms(sd.p99)}  (n=${sd.n})`);
  console.log(`sequential  proxied:  p50 ${ms(sp.p50)}  p99 ${ms(sp.p99)}`);
  console.log(`            added:    p50 ${ms(sp.p50 - sd.p50)}  p99 ${ms(sp.p99 - sd.p99)}`);
  console.log(`${CLIENTS} clients  direct:   ${directRps.toFixed(0)} req/s  p50 ${ms(cd.p50)}  p99 ${ms(cd.p99)}`);
  console.log(`${CLIENTS} clients  proxied:  ${proxiedRps.toFixed(0)} req/s  p50 ${ms(cp.p50)}  p99 ${ms(cp.p99)}`);
  console.log(`            ratio proxied/direct throughput: ${(proxiedRps / directRps).toFixed(2)}x`);
  console.log(
    `            CPU per proxied request: MPK ${perRequest('server')}, PostgreSQL ${perRequest('postgres')}, ` +
      `clients + fake upstream ${perRequest('bench')} (2 cores shared)`,
  );
  console.log(`reportUsage (${CLIENTS} clients): ${(REPORTS / (reportMs / 1000)).toFixed(0)} reports/s`);
} finally {
  await server.stop();
  await db.drop();
  await upstream.close();
}
