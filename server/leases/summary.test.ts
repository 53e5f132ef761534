// What the dashboard's overview and lease pages read: the pool summary, a lease's event history,
// and lease lists filtered by tier, provider and framework.
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import {
  codeOf,
  createKey,
  disableKeys,
  leaseForNewUser,
  newUser,
  ok,
  Q,
  reportUsage,
  requestLease,
} from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const SUMMARY = `{ poolSummary {
  keyCounts { provider status count } leaseCounts { tier status count }
  spendTodayUsd spendThisMonthUsd dailyLimitUsd monthlyLimitUsd keysWithoutDailyLimit keysWithoutMonthlyLimit
  keysNearLimit { id label } nearLimitShare } }`;
const EVENTS = `query($id: ID!, $first: Int, $types: [LeaseEventType!]) {
  lease(id: $id) { id events(first: $first, types: $types) { type stopAgent details cursor } } }`;
const FILTERED = `query($tier: Tier, $provider: Provider, $framework: Framework) {
  leases(tier: $tier, provider: $provider, framework: $framework, first: 200) {
    totalCount edges { node { id tier provider framework } } } }`;

const clock = createManualClock('2026-05-20T10:00:00.000Z');
let server: TestServer;
let admin: string;
let worker: string;

const veniceLease = (tier: 'PRO' | 'ENTERPRISE') =>
  leaseForNewUser(server, { provider: 'VENICE' }, { prefix: 's', tier, admin });
const report = (leaseId: string, costUsd: string) => reportUsage(server, worker, { leaseId, costUsd });

withTestServer({ clock, roles: 's' }, (s) => ({ server, admin, worker } = s));

describe('poolSummary', () => {
  it('counts keys and leases, sums spend against the limits, and lists the keys near a limit', async () => {
    const full = await createKey(server, admin, {
      provider: 'VENICE',
      label: 'nearly full',
      dailyLimitUsd: '10',
      monthlyLimitUsd: '1000',
    });
    const calm = await createKey(server, admin, { provider: 'VENICE', label: 'calm', dailyLimitUsd: '100' });
    const off = await createKey(server, admin, { provider: 'OPENROUTER', label: 'off', dailyLimitUsd: '50' });
    ok(await server.gql(Q.disableKey, { id: off.id, reason: 'test' }, admin), 'disableManagedKey');
    // Granted yesterday: two VENICE leases (one PRO, one ENTERPRISE) on the two VENICE keys.
    clock.set('2026-05-19T10:00:00.000Z');
    const pro = await veniceLease('PRO');
    const ent = await veniceLease('ENTERPRISE');
    const keyOf = async (l: { id: string }) => ok(await server.gql(Q.lease, { id: l.id }, admin), 'lease').key.id;
    const fullLease = (await keyOf(pro)) === full.id ? pro : ent;
    const calmLease = fullLease === pro ? ent : pro;
    expect(await keyOf(calmLease)).toBe(calm.id);
    // Yesterday's spend counts in the month, not today.
    ok(await report(calmLease.id, '2'), 'reportUsage');
    clock.set('2026-05-20T10:00:00.000Z');
    ok(await report(fullLease.id, '8.5'), 'reportUsage');
    ok(await report(calmLease.id, '1.5'), 'reportUsage');

    const summary = ok(await server.gql(SUMMARY, {}, admin), 'poolSummary');
    expect(summary.keyCounts).toEqual([
      { provider: 'OPENROUTER', status: 'DISABLED', count: 1 },
      { provider: 'VENICE', status: 'ACTIVE', count: 2 },
    ]);
    expect(summary.leaseCounts).toEqual(
      [
        { tier: 'PRO', status: 'ACTIVE', count: 1 },
        { tier: 'ENTERPRISE', status: 'ACTIVE', count: 1 },
      ].sort((a, b) => a.tier.localeCompare(b.tier)),
    );
    expect(summary).toMatchObject({
      spendTodayUsd: '10.00',
      spendThisMonthUsd: '12.00',
      dailyLimitUsd: '110.00', // the disabled key's limit does not count
      monthlyLimitUsd: '1000.00',
      keysWithoutDailyLimit: 0,
      keysWithoutMonthlyLimit: 1,
      nearLimitShare: 0.8,
    });
    expect(summary.keysNearLimit).toEqual([{ id: full.id, label: 'nearly full' }]);
    expect(
      ok(await server.gql(SUMMARY, {}, await server.token('OBSERVER', 'obs-s')), 'poolSummary').spendTodayUsd,
    ).toBe('10.00');
  });

  it('is for admins and observers only', async () => {
    expect(codeOf(await server.gql(SUMMARY, {}, await server.token('USER', 'u-s')))).toBe('FORBIDDEN');
    expect(codeOf(await server.gql(SUMMARY, {}, worker))).toBe('FORBIDDEN');
    expect(codeOf(await server.gql(SUMMARY, {}, null))).toBe('UNAUTHENTICATED');
  });
});

describe('Lease.events and lease filters', () => {
  it("gives a lease's history newest first, filtered by type, to whoever may see the lease", async () => {
    await disableKeys(server);
    await createKey(server, admin, { provider: 'OPENROUTER', label: 'events' });
    const { sub, token: user } = await newUser(server, { prefix: 'ev' });
    const lease = await requestLease(server, user, { framework: 'ELIZA' });
    ok(await report(lease.id, '0.1'), 'reportUsage');
    ok(await server.gql(Q.extend, { id: lease.id, by: 3600 }, admin), 'extendLease');
    ok(await server.gql(Q.revoke, { id: lease.id, reason: 'done here' }, admin), 'revokeLease');

    const all = ok(await server.gql(EVENTS, { id: lease.id }, admin), 'lease');
    expect(all.events.map((e: any) => e.type)).toEqual(['REVOKED', 'EXTENDED', 'USAGE', 'GRANTED']);
    expect(all.events[0]).toMatchObject({ stopAgent: true, details: { reason: 'done here' } });
    const ends = ok(await server.gql(EVENTS, { id: lease.id, types: ['GRANTED', 'REVOKED'], first: 1 }, user), 'lease');
    expect(ends.events.map((e: any) => e.type)).toEqual(['REVOKED']);
    expect((await server.gql(EVENTS, { id: lease.id, first: 500 }, admin)).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'first',
    });
    // Another user cannot reach the lease, so not its events either.
    const stranger = await server.token('USER', 'someone-else');
    expect(codeOf(await server.gql(EVENTS, { id: lease.id }, stranger))).toBe('NOT_FOUND');

    // The newest events of the whole log start a feed; a user's feed holds only their own.
    const RECENT = `query($first: Int, $types: [LeaseEventType!], $userId: ID) {
      recentLeaseEvents(first: $first, types: $types, userId: $userId) { type leaseId } }`;
    expect(ok(await server.gql(RECENT, { first: 2 }, admin), 'recentLeaseEvents')).toEqual([
      { type: 'REVOKED', leaseId: lease.id },
      { type: 'EXTENDED', leaseId: lease.id },
    ]);
    expect(ok(await server.gql(RECENT, { types: ['GRANTED'], first: 1 }, user), 'recentLeaseEvents')).toEqual([
      { type: 'GRANTED', leaseId: lease.id },
    ]);
    expect(ok(await server.gql(RECENT, {}, stranger), 'recentLeaseEvents')).toEqual([]);
    expect((await server.gql(RECENT, { userId: sub }, stranger)).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'userId',
    });
  });

  it('filters leases by tier, provider and framework', async () => {
    const rows = (res: any) => ok(res, 'leases').edges.map((e: any) => e.node);
    const eliza = rows(await server.gql(FILTERED, { framework: 'ELIZA' }, admin));
    expect(eliza.length).toBeGreaterThan(0);
    expect(eliza.every((l: any) => l.framework === 'ELIZA')).toBe(true);
    const venicePro = rows(await server.gql(FILTERED, { provider: 'VENICE', tier: 'PRO' }, admin));
    expect(venicePro).toHaveLength(1);
    expect(venicePro[0]).toMatchObject({ provider: 'VENICE', tier: 'PRO' });
    expect(rows(await server.gql(FILTERED, { provider: 'OPENAI_COMPATIBLE' }, admin))).toEqual([]);
  });
});
