// npm run bench:scale [-- --sizes 10000,100000,1000000] [--big] — the hot paths at several sizes
// of history. Each size gets its own scratch database and MPK app (in this process, scheduler off),
// filled in SQL kept in step with the schema: N ended leases (2 events, 3 audit entries and 10
// usage records each), 10,000 active leases (fewer for N < 10,000), 50 keys; lease ids are
// time-ordered (UUIDv7, as server/core/ids.ts makes them); the history goes into its month
// partitions, made first as the partition job would have made them; the spend rollups are built
// by the migration's own backfill, and the whole is checked for consistency before timing.
// Then each operation is timed round after round, interleaved across sizes, and a table of p50s
// is printed, with a last line `scale: worst growth <smallest>-><largest> = <ratio>x (<operation>)`.
// BENCH_SCALE_KEEP=1 keeps each size's database (and prints its URL); `--reuse <url>,<url>` times
// databases kept so, instead of building them again (a 10M history takes over half an hour).
// A kept database has been written to by the rounds that ran on it, so it is no longer checked.
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { buildApp } from '../server/app.js';
import { mintToken, signingConfig } from '../server/auth/authenticator.js';
import { createLogger } from '../server/core/logger.js';
import { migrationsDir } from '../server/db/migrate.js';
import { readEvents, START } from '../server/events/log.js';
import { testConfig } from '../tests/support/config.js';
import { dataOf, postGraphQL } from '../tests/support/graphql.js';
import { benchDatabase, stats } from './support.js';

const args = process.argv.slice(2);
const sizesArg = args.includes('--sizes') ? args[args.indexOf('--sizes') + 1]! : '10000,100000,1000000';
const reuse = args.includes('--reuse') ? args[args.indexOf('--reuse') + 1]!.split(',') : [];
const sizes = reuse.length ? [] : sizesArg.split(',').map(Number);
if (args.includes('--big') && !reuse.length) sizes.push(10_000_000);
if (sizes.some((n) => !Number.isInteger(n) || n < 1000)) throw new Error('--sizes: whole numbers of at least 1000');
const KEEP = Boolean(process.env.BENCH_SCALE_KEEP);
const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 40);
const KEYS = 50;
const EXPIRE_BATCH = 1000;

type Size = Awaited<ReturnType<typeof prepare>>;

/** SQL for a UUIDv7 of the timestamp `at` (its milliseconds first), the rest from `seed`'s hash. */
const uuidv7Sql = (at: string, seed: string) =>
  `(lpad(to_hex((extract(epoch FROM ${at}) * 1000)::bigint), 12, '0') || '7' || substr(md5(${seed}::text), 1, 3)
    || '8' || substr(md5(${seed}::text), 4, 15))::uuid`;

/** A size's database: a new one, built with `n` ended leases, or one kept by an earlier run. */
async function prepare(size: { n: number } | { kept: string }) {
  const db = 'kept' in size ? { url: size.kept, drop: async () => {} } : await benchDatabase();
  const { config, dispose } = await testConfig({ databaseUrl: db.url, dbPoolSize: 10, logLevel: 'warn' });
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  let n: number;
  if ('kept' in size) {
    const { rows } = await sql.query(`SELECT shobj_description(oid, 'pg_database') AS size FROM pg_database
                                      WHERE datname = current_database()`);
    n = Number(/^mpk bench:scale size (\d+)$/.exec(rows[0].size ?? '')?.[1]);
    if (!n) throw new Error(`${db.url}: not a database kept by BENCH_SCALE_KEEP=1`);
  } else n = size.n;
  // The app checks at start that its master keys cover every stored secret: the history's keys
  // hold placeholder ciphertexts under its master key's id, the same in every run (testConfig's).
  const app = await buildApp({ config, logger: createLogger('warn'), scheduler: false });
  const url = await app.listen();
  if ('kept' in size) console.error(`size ${n.toLocaleString('en-US')}: kept database ${db.url}`);
  else await build(sql, n, config.masterKeys.split(':')[0]!);
  // An active lease with an agent (resolve), an ended one's target (audit) and a user (events).
  const sample = (
    await sql.query(`SELECT id::text, "userId", "agentId" FROM "Lease" WHERE status = 'ACTIVE' ORDER BY "grantedAt"
                     LIMIT 1`)
  ).rows[0];
  const old = (await sql.query(`SELECT id::text FROM "Lease" ORDER BY "grantedAt" LIMIT 1 OFFSET ${n >> 1}`)).rows[0];
  const token = (role: 'ADMIN' | 'WORKER', sub: string) =>
    mintToken({
      ...signingConfig(config),
      sub,
      role,
      expiresInSeconds: 86_400,
    });
  return {
    n,
    app,
    url,
    sql,
    sample,
    old,
    admin: await token('ADMIN', 'scale-admin'),
    worker: await token('WORKER', 'scale-worker'),
    async close() {
      await sql.end();
      await app.stop(100);
      if (KEEP || 'kept' in size) console.error(`size ${n.toLocaleString('en-US')}: database kept, ${db.url}`);
      else await db.drop();
      await dispose();
    },
  };
}

/** Writes a history of `n` ended leases into the empty database of `sql`, then checks it. */
async function build(sql: pg.Client, n: number, masterKeyId: string) {
  const active = Math.min(10_000, n);
  const users = Math.max(100, Math.floor(n / 100));
  const started = performance.now();
  await sql.query(`
    -- The history's months, made before it is written (the partition job makes each ahead of time).
    SELECT mpk_month_partition(t, m::date)
    FROM unnest(ARRAY['LeaseEvent', 'AuditEntry', 'UsageRecord']) t,
         generate_series(date_trunc('month', now() - interval '60 days'), now(), interval '1 month') m;
    INSERT INTO "ManagedKey" (id, provider, label, "secretCiphertext", "maskedKey", "baseUrl", "defaultModel",
                              "updatedAt")
    SELECT ('00000000-0000-4000-8000-' || lpad(k::text, 12, '0'))::uuid, 'OPENROUTER', 'scale ' || k,
           'mpk1.${masterKeyId}.y.z',
           'sk-...', 'https://openrouter.ai/api/v1', 'm-1', now()
    FROM generate_series(1, ${KEYS}) k;
    INSERT INTO "User" (id, role, tier, "updatedAt") SELECT 'u-' || u, 'USER', 'ENTERPRISE', now()
    FROM generate_series(0, ${users - 1}) u;
    -- Ended leases spread over the last 60 days, then the active ones (granted in the last hour).
    INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt",
                         "expiresAt", "endedAt", "endReason", "spendCapUsd", "usageUsd", "requestCount", "updatedAt")
    SELECT ${uuidv7Sql('g.at', 'i')}, 'u-' || (i % ${users}),
           ('00000000-0000-4000-8000-' || lpad((1 + i % ${KEYS})::text, 12, '0'))::uuid,
           CASE WHEN i > ${n} THEN 'ACTIVE' ELSE 'EXPIRED' END::"LeaseStatus", 'ENTERPRISE', 'OPENROUTER',
           'GENERIC', 'agent-' || (i % 7), g.at, g.at + interval '1 hour',
           CASE WHEN i > ${n} THEN NULL ELSE g.at + interval '1 hour' END,
           CASE WHEN i > ${n} THEN NULL ELSE 'expired' END, 100, 0.01, 10, now()
    FROM generate_series(1, ${n + active}) i,
         LATERAL (SELECT CASE WHEN i > ${n} THEN now() - interval '1 hour' + (i - ${n}) * interval '1 ms'
                              ELSE now() - interval '60 days' + (i::float8 / ${n}) * interval '59 days' END
                         ::timestamp(3) AS at) g;
    UPDATE "Lease" SET "expiresAt" = now() + interval '1 day' WHERE status = 'ACTIVE';
    UPDATE "User" u SET "activeLeaseCount" = c.n
    FROM (SELECT "userId", count(*) AS n FROM "Lease" WHERE status = 'ACTIVE' GROUP BY 1) c WHERE u.id = c."userId";
    UPDATE "ManagedKey" k SET "activeLeaseCount" = c.n
    FROM (SELECT "keyId", count(*) AS n FROM "Lease" WHERE status = 'ACTIVE' GROUP BY 1) c WHERE k.id = c."keyId";
    INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
    SELECT t.type::"LeaseEventType", l."grantedAt", l.id, l."userId", l."keyId", l."agentId", t.type <> 'GRANTED', '{}'
    FROM "Lease" l CROSS JOIN (VALUES ('GRANTED'), ('USAGE')) t(type) ORDER BY l."grantedAt", t.type;
    INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
    SELECT l."grantedAt", l."userId", 'USER', a.action, 'Lease', l.id::text, '{}'
    FROM "Lease" l CROSS JOIN (VALUES ('lease.grant'), ('lease.resolve'), ('lease.expired')) a(action)
    ORDER BY l."grantedAt";
    INSERT INTO "UsageRecord" ("leaseId", "keyId", "requestId", model, "promptTokens", "completionTokens", "costUsd",
                               "costSource", at)
    SELECT l.id, l."keyId", 'r-' || r, 'm-' || (r % 3), 100, 10, 0.001, 'PROVIDER', l."grantedAt" + r * interval '1 s'
    FROM "Lease" l CROSS JOIN generate_series(1, 10) r ORDER BY l."grantedAt", r;`);
  // The rollups from the ledger, by the migration's own backfill.
  const dir = (await readdir(migrationsDir)).find((d) => d.endsWith('_usage_rollups'))!;
  const script = await readFile(path.join(migrationsDir, dir, 'migration.sql'), 'utf8');
  await sql.query(script.slice(script.indexOf('-- Backfill')));
  await sql.query('VACUUM ANALYZE');
  const seconds = (performance.now() - started) / 1000;
  // Consistency: what the application's own writes would have kept true.
  const { rows } = await sql.query(`SELECT
    (SELECT count(*) FROM "Lease")::int AS leases,
    (SELECT count(*) FROM "LeaseEvent")::int AS events,
    (SELECT count(*) FROM "AuditEntry")::int AS audit,
    (SELECT count(*) FROM "UsageRecord")::int AS usage,
    (SELECT count(*) FROM "LeaseEvent_default") + (SELECT count(*) FROM "AuditEntry_default")
      + (SELECT count(*) FROM "UsageRecord_default") = 0 AS partitioned,
    (SELECT sum("usageUsd") FROM "Lease") = (SELECT sum("costUsd") FROM "UsageRecord") AS lease_totals,
    (SELECT sum("costUsd") FROM "UsageDaily") = (SELECT sum("costUsd") FROM "UsageRecord") AS daily,
    (SELECT sum("costUsd") FROM "UsageLeaseDaily") = (SELECT sum("costUsd") FROM "UsageRecord") AS lease_daily,
    (SELECT sum("activeLeaseCount") FROM "User") = (SELECT count(*) FROM "Lease" WHERE status = 'ACTIVE') AS users,
    (SELECT sum("activeLeaseCount") FROM "ManagedKey") = (SELECT count(*) FROM "Lease" WHERE status = 'ACTIVE')
      AS keys`);
  const c = rows[0];
  const total = n + active;
  if (
    c.leases !== total ||
    c.events !== 2 * total ||
    c.audit !== 3 * total ||
    c.usage !== 10 * total ||
    !(c.lease_totals && c.daily && c.lease_daily && c.users && c.keys && c.partitioned)
  )
    throw new Error(`size ${n}: inconsistent history ${JSON.stringify(c)}`);
  await sql.query(`COMMENT ON DATABASE "${(await sql.query('SELECT current_database() AS d')).rows[0].d}"
                    IS 'mpk bench:scale size ${n}'`);
  console.error(
    `size ${n.toLocaleString('en-US')}: ${total.toLocaleString('en-US')} leases built in ${seconds.toFixed(0)} s`,
  );
}

const gql = (s: Size, query: string, variables: Record<string, unknown>, token: string) =>
  postGraphQL(s.url, query, variables, token).then(dataOf);

/** Each operation, timed once per call; `expire` returns leases/s too. */
const operations: { name: string; run(s: Size): Promise<void> }[] = [
  {
    name: 'resolveLease(leaseId)',
    run: (s) => gql(s, `query($id: ID) { resolveLease(leaseId: $id) { apiKey } }`, { id: s.sample.id }, s.worker),
  },
  {
    name: 'resolveLease(agentId, userId)',
    run: (s) =>
      gql(
        s,
        `query($a: String, $u: ID) { resolveLease(agentId: $a, userId: $u) { apiKey } }`,
        { a: s.sample.agentId, u: s.sample.userId },
        s.worker,
      ),
  },
  {
    name: 'leases(first: 20) + totalCount',
    run: (s) => gql(s, `{ leases(first: 20) { totalCount edges { node { id } } } }`, {}, s.admin),
  },
  {
    name: 'leases(userId, agentId) + totalCount',
    run: (s) =>
      gql(
        s,
        `query($u: ID, $a: String) { leases(userId: $u, agentId: $a, first: 20) { totalCount edges { node { id } } } }`,
        { u: s.sample.userId, a: s.sample.agentId },
        s.admin,
      ),
  },
  {
    name: 'auditLog(targetId) + totalCount',
    run: (s) =>
      gql(
        s,
        `query($t: ID) { auditLog(targetId: $t, first: 20) { totalCount edges { node { id } } } }`,
        { t: s.old.id },
        s.admin,
      ),
  },
  {
    name: 'auditLog(first: 20) + totalCount',
    run: (s) => gql(s, `{ auditLog(first: 20) { totalCount edges { node { id } } } }`, {}, s.admin),
  },
  {
    name: 'spendSeries(30 days), pool',
    run: (s) => gql(s, `{ spendSeries(days: 30) { day costUsd requests } }`, {}, s.admin),
  },
  {
    name: 'spendSeries(30 days, MODEL), pool',
    run: (s) => gql(s, `{ spendSeries(days: 30, groupBy: MODEL) { model costUsd } }`, {}, s.admin),
  },
  {
    name: 'recentLeaseEvents(userId)',
    run: (s) =>
      gql(s, `query($u: ID) { recentLeaseEvents(userId: $u, first: 20) { type at } }`, { u: s.sample.userId }, s.admin),
  },
  {
    name: 'leaseEvents(userId) replay, 500 from the start',
    run: async (s) => void (await readEvents(s.app.db, START, 500, { userId: s.sample.userId })),
  },
  {
    // One new request on a lease with history: the ledger's duplicate check reads every month's partition.
    name: 'reportUsage',
    run: (s) =>
      gql(
        s,
        `mutation($input: ReportUsageInput!) { reportUsage(input: $input) { duplicate } }`,
        { input: { leaseId: s.sample.id, requestId: randomUUID(), costUsd: '0.001', model: 'm-1' } },
        s.worker,
      ),
  },
  {
    name: 'expiry job, idle sweep',
    run: async (s) => void (await s.app.expiry.runNow()),
  },
];

/** 1,000 leases falling due (counted on their users and keys as grants would), then one expiry run. */
async function expireDue(s: Size): Promise<number> {
  await s.sql.query(`
    WITH due AS (
      INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt",
                           "expiresAt", "spendCapUsd", "updatedAt")
      SELECT ${uuidv7Sql('clock_timestamp()', `'due-' || i || clock_timestamp()`)}, 'u-' || (i % 100), ('00000000-0000-4000-8000-' || lpad((1 + i % ${KEYS})::text, 12, '0'))::uuid,
             'ACTIVE', 'ENTERPRISE', 'OPENROUTER', 'GENERIC', 'due-' || i, now() - interval '2 hours',
             now() - interval '1 second', 100, now()
      FROM generate_series(1, ${EXPIRE_BATCH}) i RETURNING "userId", "keyId"
    ), u AS (
      UPDATE "User" x SET "activeLeaseCount" = x."activeLeaseCount" + c.n
      FROM (SELECT "userId", count(*) AS n FROM due GROUP BY 1) c WHERE x.id = c."userId"
    )
    UPDATE "ManagedKey" k SET "activeLeaseCount" = k."activeLeaseCount" + c.n
    FROM (SELECT "keyId", count(*) AS n FROM due GROUP BY 1) c WHERE k.id = c."keyId"`);
  const started = performance.now();
  const expired = await s.app.expiry.runNow();
  const elapsed = performance.now() - started;
  if (expired !== EXPIRE_BATCH) throw new Error(`size ${s.n}: expired ${expired}, not ${EXPIRE_BATCH}`);
  return elapsed;
}

const prepared: Size[] = [];
try {
  for (const kept of reuse) prepared.push(await prepare({ kept }));
  for (const n of sizes) prepared.push(await prepare({ n }));
  prepared.sort((a, b) => a.n - b.n);
  sizes.splice(0, sizes.length, ...prepared.map((s) => s.n));
  const samples = new Map<string, Map<number, number[]>>();
  const record = (name: string, n: number, value: number) => {
    if (!samples.has(name)) samples.set(name, new Map());
    const bySize = samples.get(name)!;
    if (!bySize.has(n)) bySize.set(n, []);
    bySize.get(n)!.push(value);
  };
  // Warm-up (plans, pools), then rounds interleaved across sizes and operations.
  for (const s of prepared) for (const op of operations) for (let i = 0; i < 3; i++) await op.run(s);
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of prepared) {
      for (const op of operations) {
        const started = performance.now();
        await op.run(s);
        record(op.name, s.n, performance.now() - started);
      }
      if (round % 4 === 0) record(`expiry job, ${EXPIRE_BATCH} due`, s.n, await expireDue(s));
    }
  }
  const smallest = sizes[0]!;
  const largest = sizes.at(-1)!;
  const header = ['operation (p50, ms)', ...sizes.map((n) => n.toLocaleString('en-US')), 'growth'];
  const lines = [header];
  let worst = { ratio: 0, name: '' };
  for (const [name, bySize] of samples) {
    const p50s = sizes.map((n) => stats(bySize.get(n)!).p50);
    const ratio = p50s.at(-1)! / p50s[0]!;
    if (ratio > worst.ratio) worst = { ratio, name };
    lines.push([name, ...p50s.map((v) => v.toFixed(2)), `${ratio.toFixed(2)}x`]);
  }
  const expiry = samples.get(`expiry job, ${EXPIRE_BATCH} due`)!;
  lines.push([
    'expiry job, leases/s (p50)',
    ...sizes.map((n) => ((EXPIRE_BATCH / stats(expiry.get(n)!).p50) * 1000).toFixed(0)),
    '',
  ]);
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  for (const line of lines)
    console.log(line.map((cell, i) => (i ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  '));
  console.log(`scale: worst growth ${smallest}->${largest} = ${worst.ratio.toFixed(2)}x (${worst.name})`);
} finally {
  for (const s of prepared) await s.close();
}
process.exit(0);
