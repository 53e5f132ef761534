// The proxy admits from an in-memory cache: these tests change what it caches every way the
// service allows (lease ended, extended, re-capped; key limits changed; spend recorded by the
// proxy and by reportUsage; the UTC day turning) and check the very next request sees it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { createManualClock } from '../../tests/support/clock.js';
import { completionStatus, ok, proxiedLease, Q, reportUsage } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';
import type { Db } from '../db/client.js';
import { createAdmissionCache } from './admission.js';

const clock = createManualClock('2026-03-10T22:00:00.000Z');
let server: TestServer;
let upstream: FakeUpstream;
let admin: string;
let worker: string;

// Each completion through the fake upstream costs 15 tokens x $0.000123 = $0.001845.
const COST = 0.001845;

async function leaseWithCompletions(keyInput: Record<string, unknown> = {}) {
  const { key, lease, token, baseUrl } = await proxiedLease(server, admin, worker, {
    baseUrl: upstream.url,
    ...keyInput,
  });
  const complete = () => completionStatus(baseUrl, token, [{ role: 'user', content: 'hi' }]);
  return { key, lease, complete };
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());
withTestServer({ clock, roles: 'adm' }, (s) => ({ server, admin, worker } = s));
beforeEach(() => {
  clock.set('2026-03-10T22:00:00.000Z');
  upstream.costStyle = 'openrouter';
});

describe('lease changes reach the proxy before the mutation answers', () => {
  it('released, revoked: the next request is refused', async () => {
    const released = await leaseWithCompletions();
    expect(await released.complete()).toBe(200);
    ok(await server.gql(Q.release, { id: released.lease.id }, admin), 'releaseLease');
    expect(await released.complete()).toBe(403);

    const revoked = await leaseWithCompletions();
    expect(await revoked.complete()).toBe(200);
    ok(await server.gql(Q.revoke, { id: revoked.lease.id }, admin), 'revokeLease');
    expect(await revoked.complete()).toBe(403);
  });

  it('expiry is checked against the clock on every request; extending brings the lease back', async () => {
    const { lease, complete } = await leaseWithCompletions();
    expect(await complete()).toBe(200);
    clock.set(new Date(new Date(lease.expiresAt).getTime() - 1000));
    expect(await complete()).toBe(200);
    clock.advance(1000);
    expect(await complete()).toBe(403);
    clock.advance(-2000);
    ok(await server.gql(Q.extend, { id: lease.id, by: 3600 }, admin), 'extendLease');
    clock.advance(2000);
    expect(await complete()).toBe(200);
  });

  it('a new cap applies to the next request: suspending, resuming, or just lowering it', async () => {
    const { lease, complete } = await leaseWithCompletions();
    const written = (n: number) =>
      expect
        .poll(async () => (await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } })).requestCount)
        .toBe(n);
    const setCap = async (cap: string) =>
      ok(await server.gql(Q.updateCap, { id: lease.id, cap }, admin), 'updateLeaseCap').status;
    expect(await complete()).toBe(200);
    await written(1);
    expect(await setCap('0.001')).toBe('SUSPENDED');
    // Suspended is not ended: 402 (an admin can raise the cap), not the 403 of a revoked lease.
    expect(await complete()).toBe(402);
    expect(await setCap('5')).toBe('ACTIVE');
    expect(await complete()).toBe(200);
    await written(2);
    // Lowered but still above the usage ($0.003690): the lease stays active under the new cap.
    expect(await setCap('0.004')).toBe('ACTIVE');
    expect(await complete()).toBe(200);
    expect(await complete()).toBe(402);
  });
});

describe('spend', () => {
  it(
    'what the proxy metered counts before its batch is written: ' + 'the request after the crossing is refused',
    async () => {
      const { lease, complete } = await leaseWithCompletions();
      await server.gql(
        `mutation($id: ID!) { updateLeaseCap(id: $id, spendCapUsd: "0.003") { status } }`,
        { id: lease.id },
        admin,
      );
      expect(await complete()).toBe(200); // $0.001845
      expect(await complete()).toBe(200); // $0.003690: over the cap once it is counted
      expect(await complete()).toBe(402);
    },
  );

  it('a key limit changed by the admin applies to the next request', async () => {
    const { key, complete } = await leaseWithCompletions();
    expect(await complete()).toBe(200);
    const setLimit = (limit: string | null) =>
      server.gql(
        `mutation($id: ID!, $limit: Decimal) { updateManagedKey(id: $id, input: { dailyLimitUsd: $limit }) { id } }`,
        { id: key.id, limit },
        admin,
      );
    ok(await setLimit('0.001'), 'updateManagedKey');
    expect(await complete()).toBe(402);
    ok(await setLimit(null), 'updateManagedKey');
    expect(await complete()).toBe(200);
  });

  it('spend reported by a worker (not through this proxy) refuses requests once its event is in', async () => {
    const { key, lease, complete } = await leaseWithCompletions({ dailyLimitUsd: '1' });
    expect(await complete()).toBe(200);
    ok(await reportUsage(server, worker, { leaseId: lease.id, requestId: 'direct-1', costUsd: '1' }), 'reportUsage');
    // The report's USAGE event marks the figures stale; a refresh follows the next request.
    await expect.poll(complete, { timeout: 3000, interval: 20 }).toBe(402);
    const spend = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
    expect(spend.spendTodayUsd.toNumber()).toBeGreaterThanOrEqual(1);
  });

  it('a key at its daily limit is refused until the UTC day turns, then admitted', async () => {
    const { key, complete } = await leaseWithCompletions({ dailyLimitUsd: '0.002' });
    expect(await complete()).toBe(200);
    expect(await complete()).toBe(200); // crosses $0.002
    expect(await complete()).toBe(402);
    // Midnight turns before the write-behind batch is written: its spend stays in the old day.
    clock.set('2026-03-11T00:00:01.000Z');
    await expect.poll(() => server.app.db.usageRecord.count({ where: { keyId: key.id } })).toBe(2);
    expect(await complete()).toBe(200);
    await expect.poll(() => server.app.db.usageRecord.count({ where: { keyId: key.id } })).toBe(3);
    const row = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
    expect(row.spendDay?.toISOString().slice(0, 10)).toBe('2026-03-11');
    expect(row.spendTodayUsd.toFixed(6)).toBe(COST.toFixed(6));
    expect(row.spendThisMonthUsd.toFixed(6)).toBe((3 * COST).toFixed(6));
  });
});

describe('a read that began before a change', () => {
  it('cannot make the cache forget the change: the lease is read again before it is admitted', async () => {
    const { lease } = await leaseWithCompletions();
    // The app's own database, with reads that land only when the test lets them.
    let hold: Promise<void> | undefined;
    const db = new Proxy(server.app.db, {
      get(target, prop, receiver) {
        if (prop !== '$queryRaw') return Reflect.get(target, prop, receiver);
        return async (...args: Parameters<Db['$queryRaw']>) => {
          const rows = await target.$queryRaw(...args);
          await hold;
          return rows;
        };
      },
    }) as Db;
    const cache = createAdmissionCache({ db, clock, logger: server.app.logger, reveal: () => 'sk-test' });
    expect(await cache.admit(lease.id)).toMatchObject({ admitted: true });

    // A background refresh reads the lease while it is still active, and is held...
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    cache.observe([{ type: 'USAGE', leaseId: lease.id }]);
    expect(cache.admit(lease.id)).toMatchObject({ admitted: true });
    await new Promise((r) => setTimeout(r, 100));
    // ...the lease is revoked and the cache told, and only then does the old read land.
    ok(await server.gql(Q.revoke, { id: lease.id }, admin), 'revokeLease');
    cache.observe([{ type: 'REVOKED', leaseId: lease.id }]);
    hold = undefined;
    release();
    expect(await cache.admit(lease.id)).toMatchObject({ admitted: false, refusal: 'LEASE_NOT_ACTIVE' });
  });
});
