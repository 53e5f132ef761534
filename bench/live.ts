// npm run bench:live — (a) expiring 100,000 due leases; (b) lateness of 1,000 leases falling due
// over 10 s, expired by the server's own scheduler; (c) 1,000 WebSocket subscribers on
// leaseEvents: delivery latency of a stream of grants, and server memory per subscriber.
import { buildApp } from '../server/app.js';
import { createLogger } from '../server/core/logger.js';
import { createDb } from '../server/db/client.js';
import { testConfig } from '../tests/support/config.js';
import { dataOf } from '../tests/support/graphql.js';
import { collect, wsClient } from '../tests/support/ws.js';
import { benchDatabase, ms, pool, rss, startServer, stats } from './support.js';

const EXPIRE_N = Number(process.env.BENCH_EXPIRE ?? 100_000);
const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const GRANTS = Number(process.env.BENCH_STREAM_GRANTS ?? 200);
/** Grants per second in the stream; each is delivered to every subscriber. */
const RATE = Number(process.env.BENCH_STREAM_RATE ?? 10);

async function expireMany() {
  const db = await benchDatabase();
  const { config, dispose } = await testConfig({ databaseUrl: db.url, dbPoolSize: 10, logLevel: 'warn' });
  const app = await buildApp({ config, logger: createLogger('warn'), scheduler: false });
  try {
    const now = new Date();
    await app.db.$executeRaw`
      INSERT INTO "ManagedKey" (id, provider, label, "secretCiphertext", "maskedKey", "baseUrl", "activeLeaseCount",
                                "updatedAt")
      SELECT gen_random_uuid(), 'OPENROUTER', 'bench ' || g, 'mpk1.x.y.z', 'sk-...', 'https://openrouter.ai/api/v1',
             ${EXPIRE_N / 10}, ${now}
      FROM generate_series(1, 10) g`;
    await app.db.$executeRaw`
      INSERT INTO "User" (id, "activeLeaseCount", "updatedAt")
      SELECT 'bench-' || g, 1, ${now}
      FROM generate_series(1, ${EXPIRE_N}) g`;
    await app.db.$executeRaw`
      INSERT INTO "Lease" (id, "userId", "keyId", tier, provider, framework, "grantedAt", "expiresAt", "spendCapUsd",
                           "updatedAt")
      SELECT gen_random_uuid(), 'bench-' || g, (SELECT id FROM "ManagedKey" ORDER BY id OFFSET (g % 10) LIMIT 1),
             'FREE', 'OPENROUTER', 'OPENCLAW', ${now}, ${new Date(now.getTime() - 1000)}, 5, ${now}
      FROM generate_series(1, ${EXPIRE_N}) g`;
    await app.db.$executeRaw`ANALYZE`;
    const started = performance.now();
    const expired = await app.expiry.expireAll();
    const elapsed = performance.now() - started;
    console.log(
      `(a) expiry:             ${expired} due leases in ${(elapsed / 1000).toFixed(2)} s = ` +
        `${(expired / (elapsed / 1000)).toFixed(0)} leases/s (batches of 1,000, with events and audit)`,
    );
  } finally {
    await app.stop(100);
    await db.drop();
    await dispose();
  }
}

async function lateness() {
  const db = await benchDatabase();
  const server = await startServer(db);
  const direct = createDb(db.url, { maxConnections: 2 });
  try {
    const admin = await server.token('ADMIN', 'bench-admin');
    dataOf(
      await server.gql(
        `mutation { updateTierPolicy(tier: FREE, input: { leaseDurationSeconds: 60 }) { tier } }`,
        {},
        admin,
      ),
    );
    for (let i = 0; i < 10; i++) {
      dataOf(
        await server.gql(
          `mutation($i: CreateManagedKeyInput!) { createManagedKey(input: $i) { id } }`,
          { i: { provider: 'OPENROUTER', label: `k${i}`, apiKey: `sk-or-v1-late-${i}-0123456789` } },
          admin,
        ),
      );
    }
    // 1,000 grants spread over 10 s: with 60 s leases they fall due over 10 s, a minute later.
    const tokens = await Promise.all(Array.from({ length: 1000 }, (_, i) => server.token('USER', `late-${i}`)));
    const t0 = Date.now();
    await pool(1000, 20, async (i) => {
      const wait = t0 + i * 10 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      dataOf(await server.gql(`mutation { requestLease(input: {}) { id } }`, {}, tokens[i]!));
    });
    for (;;) {
      const left = await direct.lease.count({ where: { status: 'ACTIVE' } });
      if (left === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const rows = await direct.$queryRaw<{ late: number }[]>`
      SELECT (extract(epoch FROM (e.at - l."expiresAt")) * 1000)::float8 AS late
      FROM "LeaseEvent" e JOIN "Lease" l ON l.id = e."leaseId" WHERE e.type = 'EXPIRED'`;
    const s = stats(rows.map((r) => r.late));
    const within = rows.filter((r) => r.late <= 1000).length / rows.length;
    console.log(
      `(b) lateness:           p50 ${ms(s.p50)}  p99 ${ms(s.p99)}  max ${ms(s.max)}  ` +
        `(${s.n} leases due over 10 s; ${(within * 100).toFixed(1)}% within 1 s)`,
    );
  } finally {
    await direct.$disconnect();
    await server.stop();
    await db.drop();
  }
}

async function fanOut() {
  const db = await benchDatabase();
  // Every subscriber and grant comes from this machine's one address, which stands here for many
  // clients: the per-address cap (1,000 by default) would reset the connections past it.
  const server = await startServer(db, { MPK_MAX_CONNECTIONS_PER_ADDRESS: String(SUBSCRIBERS + 100) });
  try {
    const admin = await server.token('ADMIN', 'bench-admin');
    dataOf(
      await server.gql(
        `mutation($i: CreateManagedKeyInput!) { createManagedKey(input: $i) { id } }`,
        { i: { provider: 'OPENROUTER', label: 'fan', apiKey: 'sk-or-v1-fanout-0123456789' } },
        admin,
      ),
    );
    const observer = await server.token('OBSERVER', 'bench-observer');
    global.gc?.();
    await new Promise((r) => setTimeout(r, 1000));
    const before = await rss(server.child.pid!);
    const latencies: number[] = [];
    const clients = Array.from({ length: SUBSCRIBERS }, () => wsClient(server.url, observer));
    const subs = clients.map((c) => {
      const sub = collect(c, `subscription { leaseEvents(types: [GRANTED]) { at leaseId } }`);
      const push = sub.items.push.bind(sub.items);
      sub.items.push = (...items: any[]) => {
        for (const item of items) latencies.push(Date.now() - new Date(item.leaseEvents.at).getTime());
        return push(...items);
      };
      return sub;
    });
    await new Promise((r) => setTimeout(r, 3000));
    const after = await rss(server.child.pid!);
    const tokens = await Promise.all(Array.from({ length: GRANTS }, (_, i) => server.token('USER', `fan-${i}`)));
    const t0 = Date.now();
    await pool(GRANTS, 4, async (i) => {
      const wait = t0 + (i * 1000) / RATE - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      dataOf(await server.gql(`mutation { requestLease(input: {}) { id } }`, {}, tokens[i]!));
    });
    const expected = SUBSCRIBERS * GRANTS;
    const deadline = Date.now() + 30_000;
    while (latencies.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const s = stats(latencies);
    console.log(
      `(c) fan-out:            ${SUBSCRIBERS} subscribers, ${GRANTS} grants at ${RATE}/s ` +
        `(${RATE * SUBSCRIBERS} deliveries/s): delivered ${latencies.length}/${expected}; ` +
        `latency p50 ${ms(s.p50)}  p99 ${ms(s.p99)}`,
    );
    console.log(
      `    server memory:      RSS ${(before / 2 ** 20).toFixed(1)} MiB before, ` +
        `${(after / 2 ** 20).toFixed(1)} MiB with subscribers = ` +
        `${((after - before) / SUBSCRIBERS / 1024).toFixed(1)} KiB per subscriber`,
    );
    for (const s of subs) s.dispose();
    await Promise.all(clients.map((c) => c.dispose()));
  } finally {
    await server.stop();
    await db.drop();
  }
}

console.log('bench:live — PostgreSQL on this machine');
const only = process.argv[2];
if (!only || only === 'a') await expireMany();
if (!only || only === 'b') await lateness();
if (!only || only === 'c') await fanOut();
