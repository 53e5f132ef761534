// The spend ledger over real HTTP: exact totals under concurrency with duplicates, daily and
// monthly limits across UTC boundaries (injected clock), suspension at the cap exactly once.
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import { codeOf, createKey, disableKeys, leaseForNewUser, ok, Q, reportUsage } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const KEY = `query($id: ID!) {
  managedKey(id: $id) { spendTodayUsd spendThisMonthUsd remainingTodayUsd remainingThisMonthUsd } }`;

const clock = createManualClock('2026-01-31T23:00:00.000Z');
let server: TestServer;
let admin: string;
let worker: string;

const usd = (micros: bigint) => {
  const s = micros.toString().padStart(7, '0');
  return `${s.slice(0, -6)}.${s.slice(-6)}`;
};
const lease = (tier: 'FREE' | 'ENTERPRISE' = 'FREE') => leaseForNewUser(server, {}, { tier, admin });
const report = (leaseId: string, costUsd: string, requestId?: string) =>
  reportUsage(server, worker, {
    leaseId,
    requestId,
    costUsd,
    model: 'openrouter/auto',
    promptTokens: 10,
    completionTokens: 20,
  });

withTestServer({ clock, roles: 'u' }, (s) => ({ server, admin, worker } = s));
beforeEach(() => disableKeys(server));

describe('the ledger is exact', () => {
  it('5,000 reports from 20 concurrent clients with 10% duplicates: ' +
    'totals equal the unique reports to the cent', async () => {
    const key = await createKey(server, admin);
    const leases = [];
    for (let i = 0; i < 10; i++) leases.push(await lease('ENTERPRISE'));
    const reports: { leaseId: string; requestId: string; micros: bigint }[] = [];
    for (let i = 0; i < 4500; i++) {
      reports.push({ leaseId: leases[i % 10].id, requestId: `req-${i}`, micros: BigInt(1 + ((i * 7919) % 20_000)) });
    }
    for (let i = 0; i < 500; i++) reports.push({ ...reports[(i * 9) % 4500]! });
    let next = 0;
    const duplicates: boolean[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < reports.length) {
          const r = reports[next++]!;
          const res = await report(r.leaseId, usd(r.micros), r.requestId);
          duplicates.push(ok(res, 'reportUsage').duplicate);
        }
      }),
    );
    expect(duplicates.filter(Boolean)).toHaveLength(500);
    const unique = reports.slice(0, 4500);
    const total = unique.reduce((sum, r) => sum + r.micros, 0n);
    for (const l of leases) {
      const mine = unique.filter((r) => r.leaseId === l.id);
      const row = await server.app.db.lease.findUniqueOrThrow({ where: { id: l.id } });
      expect(row.usageUsd.toFixed(6)).toBe(usd(mine.reduce((s, r) => s + r.micros, 0n)));
      expect(row.requestCount).toBe(mine.length);
    }
    const keyRow = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
    expect(keyRow.spendTodayUsd.toFixed(6)).toBe(usd(total));
    expect(keyRow.spendThisMonthUsd.toFixed(6)).toBe(usd(total));
    expect(await server.app.db.usageRecord.count({ where: { keyId: key.id } })).toBe(4500);
    // 5,000 real HTTP round trips, each a transaction: sized for a loaded two-core CI machine.
  }, 240_000);
});

describe('limits', () => {
  it('a key at its daily limit is skipped and refuses resolution until the UTC day turns', async () => {
    clock.set('2026-02-10T22:00:00.000Z');
    const key = await createKey(server, admin, { dailyLimitUsd: '1' });
    const held = await lease();
    ok(await report(held.id, '1.00'), 'reportUsage');
    expect(ok(await server.gql(KEY, { id: key.id }, admin), 'managedKey')).toMatchObject({
      spendTodayUsd: '1.00',
      remainingTodayUsd: '0.00',
    });
    expect(codeOf(await server.gql(Q.request, { input: {} }, await server.token('USER', `late-${randomUUID()}`)))).toBe(
      'NO_KEY_AVAILABLE',
    );
    expect(codeOf(await server.gql(Q.resolve, { leaseId: held.id }, worker))).toBe('QUOTA_EXHAUSTED');
    clock.set('2026-02-11T00:00:00.000Z');
    expect(ok(await server.gql(KEY, { id: key.id }, admin), 'managedKey')).toMatchObject({
      spendTodayUsd: '0.00',
      spendThisMonthUsd: '1.00',
    });
    ok(await server.gql(Q.resolve, { leaseId: held.id }, worker), 'resolveLease');
    ok(
      await server.gql(Q.request, { input: {} }, await server.token('USER', `next-day-${randomUUID()}`)),
      'requestLease',
    );
  });

  it('monthly likewise: a new day is not enough, a new month is', async () => {
    clock.set('2026-03-30T12:00:00.000Z');
    const key = await createKey(server, admin, { monthlyLimitUsd: '2' });
    const held = await lease();
    ok(await report(held.id, '2'), 'reportUsage');
    clock.set('2026-03-31T12:00:00.000Z');
    expect(codeOf(await server.gql(Q.resolve, { leaseId: held.id }, worker))).toBe('QUOTA_EXHAUSTED');
    clock.set('2026-04-01T00:00:00.000Z');
    ok(await server.gql(Q.resolve, { leaseId: held.id }, worker), 'resolveLease');
    expect(ok(await server.gql(KEY, { id: key.id }, admin), 'managedKey')).toMatchObject({
      spendThisMonthUsd: '0.00',
      remainingThisMonthUsd: '2.00',
    });
  });

  it('a lease reaching its cap is suspended exactly once; the admin lifts it with a new cap', async () => {
    await createKey(server, admin);
    const held = await lease();
    const results = await Promise.all(Array.from({ length: 20 }, () => report(held.id, '0.50')));
    expect(results.filter((r) => r.errors)).toEqual([]);
    const suspended = await server.app.db.leaseEvent.findMany({ where: { leaseId: held.id, type: 'SUSPENDED' } });
    expect(suspended).toHaveLength(1);
    expect(suspended[0]!.stopAgent).toBe(true);
    const row = await server.app.db.lease.findUniqueOrThrow({ where: { id: held.id } });
    expect(row).toMatchObject({ status: 'SUSPENDED', endReason: 'spend cap reached' });
    expect(row.usageUsd.toFixed(2)).toBe('10.00');
    const refused = await server.gql(Q.resolve, { leaseId: held.id }, worker);
    expect(codeOf(refused)).toBe('LEASE_SPEND_CAP_REACHED');
    expect(refused.errors![0]!.message).toContain('spent $10.00 of its $5.00 spend cap');

    const lifted = ok(await server.gql(Q.updateCap, { id: held.id, cap: '20' }, admin), 'updateLeaseCap');
    expect(lifted).toMatchObject({ status: 'ACTIVE', spendCapUsd: '20.00', endReason: null });
    ok(await server.gql(Q.resolve, { leaseId: held.id }, worker), 'resolveLease');
    const lowered = ok(await server.gql(Q.updateCap, { id: held.id, cap: '1' }, admin), 'updateLeaseCap');
    expect(lowered.status).toBe('SUSPENDED');
    expect(codeOf(await server.gql(Q.updateCap, { id: held.id, cap: '20' }, await server.token('OBSERVER', 'o')))).toBe(
      'FORBIDDEN',
    );
  });
});

describe('bad reports are refused and record nothing', () => {
  it.each([
    ['negative cost', { costUsd: '-0.01' }, 'costUsd'],
    ['non-numeric cost', { costUsd: 'a lot' }, 'costUsd'],
    ['absurd cost', { costUsd: '1000000.01' }, 'costUsd'],
    ['cost with 13 decimals', { costUsd: '0.0000000000001' }, 'costUsd'],
    ['10 KB request id', { requestId: 'r'.repeat(10_000) }, 'requestId'],
    ['negative tokens', { promptTokens: -1 }, 'promptTokens'],
  ])('%s', async (_name, patch, fieldName) => {
    await createKey(server, admin);
    const held = await lease();
    const before = await server.app.db.usageRecord.count();
    const res = await server.gql(
      Q.report,
      { input: { leaseId: held.id, requestId: randomUUID(), costUsd: '0.01', ...patch } },
      worker,
    );
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: fieldName });
    expect(await server.app.db.usageRecord.count()).toBe(before);
  });

  it('an unknown lease, a 1 MB request id, and callers that are not workers', async () => {
    await createKey(server, admin);
    const held = await lease();
    const before = await server.app.db.usageRecord.count();
    expect(codeOf(await report(randomUUID(), '0.01'))).toBe('NOT_FOUND');
    expect(codeOf(await report('not-a-lease', '0.01'))).toBe('NOT_FOUND');
    const big = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${worker}` },
      body: JSON.stringify({
        query: Q.report,
        variables: { input: { leaseId: held.id, requestId: 'r'.repeat(1024 * 1024), costUsd: '0.01' } },
      }),
    });
    expect(big.status).toBe(413);
    for (const role of ['ADMIN', 'OBSERVER', 'USER'] as const) {
      const res = await server.gql(
        Q.report,
        { input: { leaseId: held.id, requestId: randomUUID(), costUsd: '0.01' } },
        await server.token(role, `r-${role}`),
      );
      expect(codeOf(res)).toBe('FORBIDDEN');
    }
    expect(
      codeOf(await server.gql(Q.report, { input: { leaseId: held.id, requestId: 'x', costUsd: '0.01' } }, null)),
    ).toBe('UNAUTHENTICATED');
    expect(await server.app.db.usageRecord.count()).toBe(before);
  });
});
