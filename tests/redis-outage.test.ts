// Redis is an accelerator, never a dependency. Server processes on a Redis of this test's own:
// when it is killed they keep serving, and a revoke on one is honoured by the other's proxy within
// a second (read from the event log on the fallback timer); an instance even starts while it is
// down; when it is back they all subscribe again; and instance after instance subscribes at start.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../demo/fake-provider.js';
import { testSecrets } from './support/config.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { completionStatus, createKey, ok, Q, requestLease, resolvedLease } from './support/fixtures.js';
import { killServers, type ServerProcess, startServerProcess } from './support/process.js';
import { until } from './support/wait.js';
import { collect, settle, wsClient } from './support/ws.js';

/** How long the instances must keep serving without Redis (the issue asks 60 s; CI uses less). */
const OUTAGE_MS = Number(process.env.MPK_TEST_REDIS_OUTAGE_MS ?? 10_000);
const secrets = testSecrets('r1');
// The safety-net poll is an hour: while Redis is live, only its nudges carry events between
// instances, so a delivery within a second proves the subscription.
const NUDGE_ONLY = { MPK_EVENT_POLL_MS: '3600000' };

let database: TestDatabase;
let redis: ChildProcess | undefined;
let redisPort: number;
let upstream: Awaited<ReturnType<typeof startFakeUpstream>>;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });

async function startRedis() {
  const child = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
  });
  redis = child;
}

async function killRedis() {
  const child = redis!;
  redis = undefined;
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
}

const start = (name: string, env: Record<string, string> = {}) =>
  startServerProcess(
    { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', REDIS_URL: `redis://127.0.0.1:${redisPort}`, ...env },
    { name, secrets },
  );

async function readiness(i: ServerProcess): Promise<Record<string, string | number>> {
  const res = await fetch(`${i.url}/readyz`);
  const body = (await res.json()) as { checks: Record<string, string> };
  return { status: res.status, ...body.checks };
}

const alive = (i: ServerProcess) => i.child.exitCode === null && i.child.signalCode === null;

/**
 * A grant on `from` heard by an admin's subscription on `to`: how long it took, in ms. A first
 * grant, untimed, proves the subscription runs (and warms up a fresh instance).
 */
async function heardAcross(from: ServerProcess, to: ServerProcess, tag: string) {
  const c = wsClient(to.url, await to.token('ADMIN', 'outage-admin'));
  const grant = async () =>
    (await requestLease(from, await from.token('USER', `${tag}-${randomUUID()}`), { provider: 'OPENAI_COMPATIBLE' }))
      .id as string;
  // Grants made just before may still arrive (the stream starts where this instance had read).
  const heard = (id: string) =>
    until(async () => stream.items.some((e) => e.leaseEvents.leaseId === id), 5000, `a grant heard on ${to.url}`);
  const stream = collect(c, `subscription { leaseEvents(types: [GRANTED]) { leaseId } }`);
  try {
    await settle(200);
    await heard(await grant());
    const started = Date.now();
    await heard(await grant());
    return Date.now() - started;
  } finally {
    stream.dispose();
    await c.dispose();
  }
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('Redis outages', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let admin: string;
  let worker: string;

  beforeAll(async () => {
    redisPort = await freePort();
    await startRedis();
    database = await createTestDatabase();
    upstream = await startFakeUpstream();
    [a, b] = await Promise.all([start('a', NUDGE_ONLY), start('b', NUDGE_ONLY)]);
    admin = await a.token('ADMIN', 'outage-admin');
    worker = await a.token('WORKER', 'outage-worker');
    await createKey(a, admin, {
      provider: 'OPENAI_COMPATIBLE',
      label: 'outage',
      apiKey: 'sk-outage-proxied-0001',
      baseUrl: upstream.url,
      defaultModel: 'fake-model',
    });
  });
  afterAll(async () => {
    await killServers();
    if (redis) await killRedis();
    await upstream?.close();
    await database?.drop();
  });

  it('with Redis up, both instances report it subscribed and hear each other through it', async () => {
    for (const i of [a, b]) expect(await readiness(i)).toMatchObject({ status: 200, redis: 'ok', database: 'ok' });
    expect(await heardAcross(a, b, 'up')).toBeLessThan(1000);
  });

  it(`Redis killed: both serve on for ${OUTAGE_MS / 1000} s; a revoke is honoured across within 1 s`, async () => {
    const lease = () => resolvedLease(a, worker, { provider: 'OPENAI_COMPATIBLE' }, { prefix: 'outage' });
    const before = await lease();
    await killRedis();
    await until(
      async () => (await readiness(a)).redis === 'down' && (await readiness(b)).redis === 'down',
      5000,
      'both see Redis down',
    );
    // Ready all the same: Redis is reported, never required.
    for (const i of [a, b]) expect(await readiness(i)).toMatchObject({ status: 200, database: 'ok', redis: 'down' });

    const started = Date.now();
    const revokedAfter: number[] = [];
    // An instance started now starts, serves, and stays up.
    const late = start('late', NUDGE_ONLY);
    let round = 0;
    while (Date.now() - started < OUTAGE_MS) {
      for (const i of [a, b]) {
        expect(alive(i), `${i.url} exited:\n${i.output()}`).toBe(true);
        expect((await fetch(`${i.url}/healthz`)).status).toBe(200);
        ok(await i.gql(Q.me, {}, await i.token('USER', 'outage-reader')), 'me');
      }
      // Granted and resolved on A (grants publish nudges, which fail now), used through B, revoked on A.
      const revoked = round === 0 ? before : await lease();
      expect(await completionStatus(`${b.url}/v1`, revoked.token)).toBe(200);
      ok(await a.gql(Q.revoke, { id: revoked.lease.id }, admin), 'revokeLease');
      revokedAfter.push(
        await until(async () => (await completionStatus(`${b.url}/v1`, revoked.token)) === 403, 5000, 'revoke on B'),
      );
      round++;
      await settle(500);
    }
    console.info(
      `Redis down ${OUTAGE_MS} ms: ${round} revokes honoured across in at most ${Math.max(...revokedAfter)} ms`,
    );
    expect(Math.max(...revokedAfter)).toBeLessThan(1000);
    expect(round).toBeGreaterThan(3);

    const c = await late;
    expect(await readiness(c)).toMatchObject({ status: 200, redis: 'down' });
    expect(await heardAcross(a, c, 'late')).toBeLessThan(1000);
    for (const i of [a, b, c]) {
      expect(alive(i), i.output()).toBe(true);
      expect(i.output()).not.toMatch(/Unhandled|MaxRetriesPerRequest/);
    }

    // Redis back: every instance subscribes again, and nudges carry events again.
    await startRedis();
    const resubscribed = await until(
      async () => (await Promise.all([a, b, c].map(readiness))).every((r) => r.redis === 'ok'),
      10_000,
      'all resubscribed',
    );
    console.info(`all three resubscribed ${resubscribed} ms after Redis was back`);
    expect(resubscribed).toBeLessThan(5000);
    expect(await heardAcross(a, b, 'back')).toBeLessThan(1000);
    expect(await heardAcross(b, c, 'back')).toBeLessThan(1000);
    await c.stop();
  });

  it('ten instances started in a row all subscribe at start', async () => {
    // Each start overlaps the checks of the one before: two at a time, as in a rolling deploy.
    let next = start('start-0', NUDGE_ONLY);
    for (let n = 0; n < 10; n++) {
      const i = await next;
      if (n < 9) next = start(`start-${n + 1}`, NUDGE_ONLY);
      // Listening only after the SUBSCRIBE was confirmed (or after a bounded wait): no race.
      expect(await readiness(i)).toMatchObject({ status: 200, redis: 'ok' });
      expect(await heardAcross(a, i, `start-${n}`)).toBeLessThan(1000);
      await i.stop();
    }
    // Ten server starts: 36-42 s on an idle machine here, more beside the rest of the suite. What is
    // tested is that each one subscribes, not how fast processes start.
  }, 180_000);
});
