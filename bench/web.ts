// npm run bench:web — the dashboard in Debian's Chromium against a server (own process, scratch
// PostgreSQL) holding 200 keys and 10,000 leases while 20 lease events a second arrive:
//   - navigation to the Leases page until its table is visible (cold load and in-app), target < 1 s
//   - a live event reflected in the table (grant appears, revoke turns the row), p95 target < 500 ms
//   - the longest main-thread task during all of it, target < 200 ms
//   - first-load JavaScript, gzipped, target < 350 KB
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { launchBrowser } from '../tests/support/browser.js';
import { dataOf } from '../tests/support/graphql.js';
import { benchDatabase, ms, percentile, startServer, stats } from './support.js';

const KEYS = Number(process.env.BENCH_WEB_KEYS ?? 200);
const LEASES = Number(process.env.BENCH_WEB_LEASES ?? 10_000);
const EVENTS_PER_SECOND = Number(process.env.BENCH_WEB_RATE ?? 20);
const MEASURED = Number(process.env.BENCH_WEB_SAMPLES ?? 100);
const NAVIGATIONS = 7;

const db = await benchDatabase();
const server = await startServer(db);
const browser = await launchBrowser(server.url);
const direct = new pg.Client({ connectionString: db.url });
/** Set when the run ends (or fails), so that the event stream stops before the server does. */
let stopping = false;
let stopStream = () => {};

try {
  await direct.connect();
  const admin = await server.token('ADMIN', 'bench-admin');
  const worker = await server.token('WORKER', 'bench-worker');

  // 200 keys through the API; 10,000 leases on them written in SQL with counters to match (the
  // grant path has its own benchmark, and this one is about the page).
  const started = performance.now();
  for (let i = 0; i < KEYS; i++) {
    dataOf(
      await server.gql(
        `mutation($i: CreateManagedKeyInput!) { createManagedKey(input: $i) { id } }`,
        {
          i: {
            provider: i % 3 === 0 ? 'VENICE' : 'OPENROUTER',
            label: `key-${String(i).padStart(3, '0')}`,
            apiKey: `sk-or-v1-bench-${i}-${randomUUID()}`,
            dailyLimitUsd: '500',
            monthlyLimitUsd: '10000',
          },
        },
        admin,
      ),
    );
  }
  await direct.query(
    `INSERT INTO "User" (id, email, tier, "updatedAt")
     SELECT 'user-' || g, 'user-' || g || '@bench', 'ENTERPRISE', now()
     FROM generate_series(1, $1::int) g`,
    [Math.ceil(LEASES / 10)],
  );
  await direct.query(
    `INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt", "expiresAt",
                         "spendCapUsd", "usageUsd", "requestCount", "updatedAt")
     SELECT gen_random_uuid(), 'user-' || (1 + (g % $2::int)), k.id, 'ACTIVE', 'ENTERPRISE', k.provider,
            (ARRAY['OPENCLAW','ELIZA','GENERIC']::"Framework"[])[1 + g % 3],
            'agent-' || g, now() - (g || ' seconds')::interval, now() + interval '30 days', 1000, (g % 500) / 100.0,
            g % 40, now()
     FROM generate_series(1, $1::int) g
     JOIN LATERAL (SELECT id, provider FROM "ManagedKey" ORDER BY id OFFSET (g % $3::int) LIMIT 1) k ON true`,
    [LEASES, Math.ceil(LEASES / 10), KEYS],
  );
  await direct.query(
    `UPDATE "ManagedKey" k
     SET "activeLeaseCount" = (SELECT count(*) FROM "Lease" l WHERE l."keyId" = k.id AND l.status = 'ACTIVE')`,
  );
  await direct.query(
    `UPDATE "User" u
     SET "activeLeaseCount" = (SELECT count(*) FROM "Lease" l WHERE l."userId" = u.id AND l.status = 'ACTIVE')`,
  );
  await direct.query('ANALYZE');
  console.log(`set-up: ${KEYS} keys, ${LEASES} leases in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  // A stream of lease events: grants by fresh users, usage reports and revokes, 20 a second.
  let running = true;
  let sent = 0;
  stopStream = () => (running = false);
  const recent: string[] = [];
  const granted = new Map<string, number>();
  const revoked = new Map<string, number>();
  let measuring = false;
  const stream = (async () => {
    const period = 1000 / EVENTS_PER_SECOND;
    let next = performance.now();
    while (running && !stopping) {
      const kind = sent % 5; // 2 grants, 2 usage reports, 1 revoke out of every 5 events
      sent++;
      if (kind < 2 || recent.length < 5) {
        const user = await server.token('USER', `stream-${randomUUID().slice(0, 8)}`);
        const res = dataOf(await server.gql(`mutation { requestLease(input: {}) { id } }`, {}, user));
        const at = Date.now();
        recent.push(res.requestLease.id);
        if (measuring) granted.set(res.requestLease.id, at);
      } else if (kind < 4) {
        const leaseId = recent[recent.length - 1 - (sent % Math.min(5, recent.length))]!;
        dataOf(
          await server.gql(
            `mutation($i: ReportUsageInput!) { reportUsage(input: $i) { duplicate } }`,
            { i: { leaseId, requestId: randomUUID(), costUsd: '0.0123', model: 'bench-model' } },
            worker,
          ),
        );
      } else {
        // The newest lease: it is on the first page, where a revoke can be seen to turn its row.
        const leaseId = recent.pop()!;
        dataOf(
          await server.gql(
            `mutation($id: ID!) { revokeLease(id: $id, reason: "bench") { id } }`,
            { id: leaseId },
            admin,
          ),
        );
        if (measuring) revoked.set(leaseId, Date.now());
      }
      next += period;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  })().catch((error: unknown) => {
    if (!stopping) throw error;
  });

  const { page, context } = await browser.page({ token: admin });
  await context.addInitScript(() => {
    const w = window as unknown as {
      __longTasks: { start: number; duration: number }[];
      __seen: Record<string, number>;
      __revoked: Record<string, number>;
    };
    w.__longTasks = [];
    w.__seen = {};
    w.__revoked = {};
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
    new MutationObserver((mutations) => {
      const now = Date.now();
      for (const m of mutations) {
        const targets = m.type === 'attributes' ? [m.target] : [...m.addedNodes];
        for (const node of targets) {
          if (!(node instanceof HTMLElement)) continue;
          for (const row of node.matches('tr[data-lease-id]')
            ? [node]
            : [...node.querySelectorAll('tr[data-lease-id]')]) {
            const id = row.getAttribute('data-lease-id')!;
            w.__seen[id] ??= now;
            if (row.getAttribute('data-status') === 'REVOKED') w.__revoked[id] ??= now;
          }
        }
      }
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
  });

  // First-load JavaScript: every script the first visit fetches, gzipped.
  const scripts = new Map<string, Buffer>();
  page.on('response', async (response) => {
    if (response.request().resourceType() === 'script')
      scripts.set(response.url(), await response.body().catch(() => Buffer.alloc(0)));
  });
  const tableVisible = (p: Page) => p.locator('tr[data-lease-id]').first().waitFor({ timeout: 30_000 });
  // Long tasks per phase: each document keeps its own list; `since` is a time in that document.
  const longTasksSince = async (since = 0) =>
    (
      await page.evaluate(
        () => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks,
      )
    )
      .filter((t) => t.start >= since)
      .map((t) => t.duration);
  const pageNow = () => page.evaluate(() => performance.now());
  const tasks = { cold: [] as number[], inApp: [] as number[], live: [] as number[] };

  const cold: number[] = [];
  for (let i = 0; i < NAVIGATIONS; i++) {
    const t0 = Date.now();
    await page.goto('/leases');
    await tableVisible(page);
    cold.push(Date.now() - t0);
    tasks.cold.push(...(await longTasksSince()));
    if (i === 0) await page.waitForLoadState('networkidle');
    if (i === 0)
      console.log(
        `first-load JS: ${scripts.size} files, ${(gzipTotal(scripts) / 1024).toFixed(0)} KB gzipped ` +
          `(${(rawTotal(scripts) / 1024).toFixed(0)} KB raw)`,
      );
  }
  const inAppStart = await pageNow();
  const inApp: number[] = [];
  for (let i = 0; i < NAVIGATIONS; i++) {
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const t0 = Date.now();
    await page.getByRole('link', { name: 'Leases' }).click();
    await tableVisible(page);
    inApp.push(Date.now() - t0);
  }

  // Live: the first page of leases, while the stream runs; each grant must appear, each revoke turn.
  await page.waitForTimeout(1000);
  const liveStart = await pageNow();
  measuring = true;
  const deadline = Date.now() + 120_000;
  while ((granted.size < MEASURED || revoked.size < MEASURED / 4) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 250));
  measuring = false;
  await page.waitForTimeout(1500);
  const seen = await page.evaluate(() => (window as unknown as { __seen: Record<string, number> }).__seen);
  const turned = await page.evaluate(() => (window as unknown as { __revoked: Record<string, number> }).__revoked);
  const lags: number[] = [];
  let missed = 0;
  for (const [id, at] of granted) seen[id] ? lags.push(seen[id]! - at) : missed++;
  for (const [id, at] of revoked) if (seen[id]) turned[id] ? lags.push(turned[id]! - at) : missed++;
  const inAppAndLive = (
    await page.evaluate(() => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks)
  ).filter((t) => t.start >= inAppStart);
  tasks.inApp.push(...inAppAndLive.filter((t) => t.start < liveStart).map((t) => t.duration));
  tasks.live.push(...inAppAndLive.filter((t) => t.start >= liveStart).map((t) => t.duration));
  const longTasks = [...tasks.cold, ...tasks.inApp, ...tasks.live];

  running = false;
  await stream;

  const coldStats = stats(cold);
  const appStats = stats(inApp);
  const sortedLags = [...lags].sort((a, b) => a - b);
  console.log(
    `navigation to Leases, cold load:  p50 ${ms(coldStats.p50)}, max ${ms(coldStats.max)} (target < 1000 ms)`,
  );
  console.log(`navigation to Leases, in the app: p50 ${ms(appStats.p50)}, max ${ms(appStats.max)} (target < 1000 ms)`);
  console.log(
    `live event to table: ${lags.length} events (${granted.size} grants, ${revoked.size} revokes), ` +
      `p50 ${ms(percentile(sortedLags, 50))}, p95 ${ms(percentile(sortedLags, 95))}, ` +
      `max ${ms(sortedLags.at(-1) ?? NaN)}, missed ${missed} (target p95 < 500 ms)`,
  );
  const longest = (list: number[]) => `${ms(Math.max(0, ...list))} (${list.length} over 50 ms)`;
  console.log(
    `longest main-thread task: ${ms(Math.max(0, ...longTasks))} (target < 200 ms): ` +
      `cold loads ${longest(tasks.cold)}, in-app navigation ${longest(tasks.inApp)}, live ${longest(tasks.live)}`,
  );
  console.log(`events sent: ${sent} at ${EVENTS_PER_SECOND}/s`);
} finally {
  stopping = true;
  stopStream();
  await browser.close();
  await direct.end().catch(() => {});
  await server.stop();
  await db.drop();
}

function gzipTotal(files: Map<string, Buffer>) {
  return [...files.values()].reduce((sum, body) => sum + gzipSync(body, { level: 9 }).length, 0);
}

function rawTotal(files: Map<string, Buffer>) {
  return [...files.values()].reduce((sum, body) => sum + body.length, 0);
}
