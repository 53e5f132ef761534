// Reading the ledger back over real HTTP: usage records paged both ways under each role, spend
// series by day (zeros included) and by model across UTC days (injected clock), and each user's
// spend this month.
import { beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import {
  codeOf,
  createKey,
  disableKeys,
  newUser,
  ok,
  Q,
  reportUsage,
  requestLease,
} from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const RECORDS = `query($leaseId: ID, $keyId: ID, $first: Int, $after: String, $last: Int, $before: String) {
  usageRecords(leaseId: $leaseId, keyId: $keyId, first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id at requestId model promptTokens completionTokens costUsd costSource leaseId keyId } } } }`;
const SERIES = `query($keyId: ID, $provider: Provider, $days: Int, $groupBy: SpendGrouping) {
  spendSeries(keyId: $keyId, provider: $provider, days: $days, groupBy: $groupBy) {
    day model costUsd requests promptTokens completionTokens } }`;
const USERS = `query($filter: UserFilter, $first: Int, $after: String) {
  users(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id email tier activeLeaseCount spendThisMonthUsd } } } }`;

const clock = createManualClock('2026-03-10T12:00:00.000Z');
let server: TestServer;
let admin: string;
let observer: string;
let worker: string;
let owner: string;
let ownerId: string;
let key: { id: string };
let lease: { id: string };

const report = (leaseId: string, costUsd: string, model: string | null) =>
  reportUsage(server, worker, { leaseId, costUsd, model, promptTokens: 100, completionTokens: 10 });

withTestServer({ clock, roles: 'h' }, (s) => ({ server, admin, observer, worker } = s));
beforeAll(async () => {
  await disableKeys(server);
  key = await createKey(server, admin, { provider: 'VENICE', label: 'history' });
  ({ sub: ownerId, token: owner } = await newUser(server, {
    prefix: 'owner',
    tier: 'ENTERPRISE',
    admin,
    withEmail: true,
  }));
  lease = await requestLease(server, owner, { provider: 'VENICE', agentId: 'hist-agent' });
  // Three days of spend: two days ago, yesterday (nothing), today; two models and one unnamed.
  clock.set('2026-03-08T09:00:00.000Z');
  ok(await report(lease.id, '1.25', 'venice-large'), 'reportUsage');
  ok(await report(lease.id, '0.000001', 'venice-small'), 'reportUsage');
  clock.set('2026-03-10T08:00:00.000Z');
  ok(await report(lease.id, '2.5', 'venice-large'), 'reportUsage');
  ok(await report(lease.id, '0.5', null), 'reportUsage');
  clock.set('2026-03-10T12:00:00.000Z');
});

describe('usageRecords', () => {
  it("pages a lease's records newest first, forward and backward, with complete page info", async () => {
    const first = ok(await server.gql(RECORDS, { leaseId: lease.id, first: 3 }, admin), 'usageRecords');
    expect(first.totalCount).toBe(4);
    expect(first.edges.map((e: any) => e.node.costUsd)).toEqual(['0.50', '2.50', '0.000001']);
    expect(first.edges[0].node).toMatchObject({
      leaseId: lease.id,
      keyId: key.id,
      costSource: 'REPORTED',
      promptTokens: 100,
      completionTokens: 10,
      model: null,
    });
    expect(first.pageInfo).toMatchObject({
      hasNextPage: true,
      hasPreviousPage: false,
      startCursor: first.edges[0].cursor,
      endCursor: first.edges[2].cursor,
    });
    const second = ok(
      await server.gql(RECORDS, { leaseId: lease.id, first: 3, after: first.pageInfo.endCursor }, admin),
      'usageRecords',
    );
    expect(second.edges.map((e: any) => e.node.costUsd)).toEqual(['1.25']);
    expect(second.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    const back = ok(
      await server.gql(RECORDS, { leaseId: lease.id, last: 2, before: second.pageInfo.startCursor }, admin),
      'usageRecords',
    );
    expect(back.edges.map((e: any) => e.node.costUsd)).toEqual(['2.50', '0.000001']);
    expect(back.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    const byKey = ok(await server.gql(RECORDS, { keyId: key.id }, observer), 'usageRecords');
    expect(byKey.totalCount).toBe(4);
  });

  it("lets a user read their own lease only, never a key or another user's lease", async () => {
    expect(ok(await server.gql(RECORDS, { leaseId: lease.id }, owner), 'usageRecords').totalCount).toBe(4);
    const stranger = await server.token('USER', 'stranger-h');
    expect(codeOf(await server.gql(RECORDS, { leaseId: lease.id }, stranger))).toBe('NOT_FOUND');
    expect(codeOf(await server.gql(RECORDS, { keyId: key.id }, owner))).toBe('FORBIDDEN');
    // Workers read leases, so their usage too.
    expect(ok(await server.gql(RECORDS, { leaseId: lease.id }, worker), 'usageRecords').totalCount).toBe(4);
    expect(codeOf(await server.gql(RECORDS, { leaseId: lease.id }, null))).toBe('UNAUTHENTICATED');
  });

  it('refuses a request without a lease or key, and bad paging, naming the field', async () => {
    const none = await server.gql(RECORDS, {}, admin);
    expect(none.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'leaseId' });
    const both = await server.gql(RECORDS, { leaseId: lease.id, first: 2, last: 2 }, admin);
    expect(both.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'last' });
    const cursor = await server.gql(RECORDS, { leaseId: lease.id, after: 'bm9wZQ' }, admin);
    expect(cursor.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(ok(await server.gql(RECORDS, { leaseId: 'not-a-uuid' }, admin), 'usageRecords').totalCount).toBe(0);
  });
});

describe('spendSeries', () => {
  it('gives one point per UTC day, zeros included, for a key and for its provider', async () => {
    const series = ok(await server.gql(SERIES, { keyId: key.id, days: 4 }, admin), 'spendSeries');
    expect(series).toEqual([
      { day: '2026-03-07', model: null, costUsd: '0.00', requests: 0, promptTokens: 0, completionTokens: 0 },
      { day: '2026-03-08', model: null, costUsd: '1.250001', requests: 2, promptTokens: 200, completionTokens: 20 },
      { day: '2026-03-09', model: null, costUsd: '0.00', requests: 0, promptTokens: 0, completionTokens: 0 },
      { day: '2026-03-10', model: null, costUsd: '3.00', requests: 2, promptTokens: 200, completionTokens: 20 },
    ]);
    expect(ok(await server.gql(SERIES, { provider: 'VENICE', days: 4 }, observer), 'spendSeries')).toEqual(series);
    const other = ok(await server.gql(SERIES, { provider: 'OPENROUTER', days: 4 }, admin), 'spendSeries');
    expect(other.map((p: any) => p.costUsd)).toEqual(['0.00', '0.00', '0.00', '0.00']);
    // The window ends today: a 1-day series holds today's spend only.
    expect(ok(await server.gql(SERIES, { keyId: key.id, days: 1 }, admin), 'spendSeries')).toHaveLength(1);
  });

  it('groups by model, most spent first, requests without a model together', async () => {
    const byModel = ok(await server.gql(SERIES, { keyId: key.id, days: 30, groupBy: 'MODEL' }, admin), 'spendSeries');
    expect(byModel.map((p: any) => [p.model, p.costUsd, p.requests])).toEqual([
      ['venice-large', '3.75', 2],
      [null, '0.50', 1],
      ['venice-small', '0.000001', 1],
    ]);
    // Two days back only: the 8th is outside.
    const recent = ok(await server.gql(SERIES, { keyId: key.id, days: 2, groupBy: 'MODEL' }, admin), 'spendSeries');
    expect(recent.map((p: any) => p.costUsd)).toEqual(['2.50', '0.50']);
  });

  it('is for admins and observers, 1 to 90 days', async () => {
    for (const days of [0, 91, -1]) {
      expect((await server.gql(SERIES, { days }, admin)).errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'days',
      });
    }
    expect((await server.gql(SERIES, { keyId: 'nope' }, admin)).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'keyId',
    });
    expect(codeOf(await server.gql(SERIES, {}, owner))).toBe('FORBIDDEN');
    expect(codeOf(await server.gql(SERIES, {}, worker))).toBe('FORBIDDEN');
  });
});

describe('users', () => {
  it('lists users with their spend this month, searchable by id or email, filterable by tier', async () => {
    await server.gql(Q.me, {}, owner);
    const found = ok(await server.gql(USERS, { filter: { search: ownerId.toUpperCase() } }, admin), 'users');
    expect(found.totalCount).toBe(1);
    // The 8th and the 10th are both in March: all four reports count.
    expect(found.edges[0].node).toMatchObject({
      id: ownerId,
      email: `${ownerId}@example.com`,
      tier: 'ENTERPRISE',
      activeLeaseCount: 1,
      spendThisMonthUsd: '4.250001',
    });
    const byEmail = ok(await server.gql(USERS, { filter: { search: '@EXAMPLE.com' } }, observer), 'users');
    expect(byEmail.edges.map((e: any) => e.node.id)).toContain(ownerId);
    const free = ok(await server.gql(USERS, { filter: { tier: 'FREE' } }, admin), 'users');
    expect(free.edges.every((e: any) => e.node.tier === 'FREE')).toBe(true);
    expect(free.edges.find((e: any) => e.node.id === ownerId)).toBeUndefined();
    // In April the month's spend starts again from zero.
    clock.set('2026-04-01T00:00:01.000Z');
    try {
      const april = ok(await server.gql(USERS, { filter: { search: ownerId } }, admin), 'users');
      expect(april.edges[0].node.spendThisMonthUsd).toBe('0.00');
    } finally {
      clock.set('2026-03-10T12:00:00.000Z');
    }
  });

  it('pages through many users, and refuses users and workers', async () => {
    for (let i = 0; i < 5; i++)
      ok(await server.gql(Q.setTier, { userId: `pager-${i}`, tier: 'PRO' }, admin), 'setUserTier');
    const first = ok(await server.gql(USERS, { filter: { search: 'pager-' }, first: 3 }, admin), 'users');
    expect(first.totalCount).toBe(5);
    const rest = ok(
      await server.gql(USERS, { filter: { search: 'pager-' }, first: 3, after: first.pageInfo.endCursor }, admin),
      'users',
    );
    const ids = [...first.edges, ...rest.edges].map((e: any) => e.node.id);
    expect(new Set(ids).size).toBe(5);
    expect(rest.pageInfo.hasNextPage).toBe(false);
    expect(codeOf(await server.gql(USERS, {}, owner))).toBe('FORBIDDEN');
    expect(codeOf(await server.gql(USERS, {}, worker))).toBe('FORBIDDEN');
    const nul = await server.gql(USERS, { filter: { search: 'a\u0000b' } }, admin);
    expect(nul.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'search' });
  });
});
