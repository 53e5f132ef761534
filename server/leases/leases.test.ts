// Lease lifecycle over real HTTP with an injected clock: grants, tier limits, the least-used key,
// and every transition allowed and refused, each with its code and no change when refused.
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import { codeOf, createKey, disableKeys, newUser, ok, Q } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const clock = createManualClock('2026-03-10T12:00:00.000Z');
let server: TestServer;
let admin: string;
let worker: string;

const user = () => newUser(server);
const request = async (token: string, input: Record<string, unknown> = {}) => server.gql(Q.request, { input }, token);

/** Everything that counts: rows of the tables a transition touches. */
async function state() {
  const db = server.app.db;
  const [leases, keys, users, events, audits] = await Promise.all([
    db.lease.findMany({ orderBy: { id: 'asc' } }),
    db.managedKey.findMany({ orderBy: { id: 'asc' }, select: { id: true, activeLeaseCount: true, status: true } }),
    db.user.findMany({ orderBy: { id: 'asc' }, select: { id: true, activeLeaseCount: true, tier: true } }),
    db.leaseEvent.count(),
    db.auditEntry.count(),
  ]);
  return JSON.stringify({ leases, keys, users, events, audits });
}

async function expectRefused(promise: Promise<{ errors?: any[]; data: any }>, code: string) {
  const before = await state();
  const res = await promise;
  expect(codeOf(res), JSON.stringify(res.errors)).toBe(code);
  expect(await state()).toBe(before);
}

withTestServer({ clock, roles: '1' }, (s) => ({ server, admin, worker } = s));
beforeEach(async () => {
  // Each test builds its own pool: keys from earlier tests step aside.
  await disableKeys(server);
  clock.advance(60_000);
});

describe('tier policies', () => {
  it('default to FREE 2 days/1/$5, PRO 30 days/3/$50, ENTERPRISE 365 days/10/$1000', async () => {
    const policies = ok(await server.gql(Q.policies, {}, (await user()).token), 'tierPolicies');
    expect(policies).toEqual([
      { tier: 'FREE', leaseDurationSeconds: 172800, maxActiveLeases: 1, spendCapUsd: '5.00' },
      { tier: 'PRO', leaseDurationSeconds: 2592000, maxActiveLeases: 3, spendCapUsd: '50.00' },
      { tier: 'ENTERPRISE', leaseDurationSeconds: 31536000, maxActiveLeases: 10, spendCapUsd: '1000.00' },
    ]);
  });

  it('a change applies to new leases only', async () => {
    await createKey(server, admin);
    const a = await user();
    const first = ok(await request(a.token), 'requestLease');
    ok(
      await server.gql(
        Q.updatePolicy,
        { tier: 'FREE', input: { leaseDurationSeconds: 3600, spendCapUsd: '2.5' } },
        admin,
      ),
      'updateTierPolicy',
    );
    try {
      const b = await user();
      const second = ok(await request(b.token), 'requestLease');
      expect(new Date(second.expiresAt).getTime() - clock.now().getTime()).toBe(3600_000);
      expect(second.spendCapUsd).toBe('2.50');
      const again = ok(await server.gql(Q.lease, { id: first.id }, admin), 'lease');
      expect(again.spendCapUsd).toBe('5.00');
      expect(again.expiresAt).toBe(first.expiresAt);
    } finally {
      await server.gql(
        Q.updatePolicy,
        { tier: 'FREE', input: { leaseDurationSeconds: 172800, spendCapUsd: '5' } },
        admin,
      );
    }
  });

  it('refuses bad policy input, naming the field', async () => {
    for (const [input, field] of [
      [{ leaseDurationSeconds: 0 }, 'leaseDurationSeconds'],
      [{ maxActiveLeases: -1 }, 'maxActiveLeases'],
      [{ spendCapUsd: '-5' }, 'spendCapUsd'],
      [{ spendCapUsd: '1.0000001' }, 'spendCapUsd'],
    ] as const) {
      const before = await state();
      const res = await server.gql(Q.updatePolicy, { tier: 'PRO', input }, admin);
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(await state()).toBe(before);
    }
  });
});

describe('requestLease', () => {
  it('grants on defaults: OpenRouter, OpenClaw, the tier duration and cap', async () => {
    const key = await createKey(server, admin);
    const a = await user();
    const lease = ok(await request(a.token, { agentId: 'agent-1' }), 'requestLease');
    expect(lease).toMatchObject({
      status: 'ACTIVE',
      tier: 'FREE',
      provider: 'OPENROUTER',
      framework: 'OPENCLAW',
      agentId: 'agent-1',
      spendCapUsd: '5.00',
      usageUsd: '0.00',
      requestCount: 0,
      endedAt: null,
      user: { id: a.sub, tier: 'FREE', activeLeaseCount: 1 },
    });
    expect(lease.grantedAt).toBe(clock.now().toISOString());
    expect(new Date(lease.expiresAt).getTime()).toBe(clock.now().getTime() + 2 * 86400_000);
    expect(ok(await server.gql(Q.key, { id: key.id }, admin), 'managedKey').activeLeaseCount).toBe(1);
    expect(ok(await server.gql(Q.me, {}, a.token), 'me').activeLeaseCount).toBe(1);
  });

  it('is idempotent per agent id, and refuses a second agent over the tier limit', async () => {
    await createKey(server, admin);
    const a = await user();
    const first = ok(await request(a.token, { agentId: 'bot' }), 'requestLease');
    const again = ok(await request(a.token, { agentId: 'bot' }), 'requestLease');
    expect(again.id).toBe(first.id);
    await expectRefused(request(a.token, { agentId: 'other-bot' }), 'TIER_LIMIT_REACHED');
    await expectRefused(request(a.token), 'TIER_LIMIT_REACHED');
  });

  it('picks the key with the fewest active leases, ties going to the one granted least recently', async () => {
    const k1 = await createKey(server, admin, { label: 'k1' });
    const k2 = await createKey(server, admin, { label: 'k2' });
    const k3 = await createKey(server, admin, { label: 'k3' });
    const pro = await user();
    ok(await server.gql(Q.setTier, { userId: pro.sub, tier: 'PRO' }, admin), 'setUserTier');
    const keyOf = async (leaseId: string) =>
      (await server.app.db.lease.findUniqueOrThrow({ where: { id: leaseId } })).keyId;
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      got.push(await keyOf(ok(await request(pro.token), 'requestLease').id));
    }
    expect(new Set(got)).toEqual(new Set([k1.id, k2.id, k3.id]));
    // All at one lease: the next goes to the key granted longest ago, the first one.
    clock.advance(1000);
    const other = await user();
    expect(await keyOf(ok(await request(other.token), 'requestLease').id)).toBe(got[0]);
  });

  it('NO_KEY_AVAILABLE when no key of the provider qualifies', async () => {
    const a = await user();
    await expectRefused(request(a.token, { provider: 'VENICE' }), 'NO_KEY_AVAILABLE');
    const full = await createKey(server, admin, { provider: 'VENICE', maxActiveLeases: 1 });
    ok(await request(a.token, { provider: 'VENICE' }), 'requestLease');
    const b = await user();
    await expectRefused(request(b.token, { provider: 'VENICE' }), 'NO_KEY_AVAILABLE');
    ok(await server.gql(Q.disableKey, { id: full.id }, admin), 'disableManagedKey');
    await expectRefused(request(b.token, { provider: 'VENICE' }), 'NO_KEY_AVAILABLE');
  });

  it('refuses bad input, naming the field', async () => {
    const a = await user();
    for (const [input, field] of [
      [{ agentId: '' }, 'agentId'],
      [{ agentId: 'has space' }, 'agentId'],
      [{ agentId: 'x'.repeat(201) }, 'agentId'],
      [{ provider: 'ANTHROPIC' }, 'provider'],
      [{ framework: 'LANGCHAIN' }, 'framework'],
    ] as const) {
      const res = await request(a.token, input);
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
  });

  it('counts a lease past its expiry as ended even before the scheduler runs', async () => {
    await createKey(server, admin);
    const a = await user();
    const first = ok(await request(a.token), 'requestLease');
    clock.advance(2 * 86400_000);
    const second = ok(await request(a.token), 'requestLease');
    expect(second.id).not.toBe(first.id);
    const old = ok(await server.gql(Q.lease, { id: first.id }, admin), 'lease');
    expect(old).toMatchObject({ status: 'EXPIRED', endReason: 'expired' });
    expect(second.user.activeLeaseCount).toBe(1);
  });
});

describe('transitions', () => {
  it('release: own lease once; twice is LEASE_NOT_ACTIVE; another user gets NOT_FOUND', async () => {
    const key = await createKey(server, admin);
    const a = await user();
    const b = await user();
    const lease = ok(await request(a.token), 'requestLease');
    await expectRefused(server.gql(Q.release, { id: lease.id }, b.token), 'NOT_FOUND');
    const released = ok(await server.gql(Q.release, { id: lease.id }, a.token), 'releaseLease');
    expect(released).toMatchObject({
      status: 'RELEASED',
      endReason: 'released by user',
      user: { activeLeaseCount: 0 },
    });
    expect(released.endedAt).toBe(clock.now().toISOString());
    expect(ok(await server.gql(Q.key, { id: key.id }, admin), 'managedKey').activeLeaseCount).toBe(0);
    await expectRefused(server.gql(Q.release, { id: lease.id }, a.token), 'LEASE_NOT_ACTIVE');
    await expectRefused(server.gql(Q.release, { id: randomUUID() }, a.token), 'NOT_FOUND');
  });

  it('revoke: an active lease with its reason; an expired or revoked one is LEASE_NOT_ACTIVE', async () => {
    await createKey(server, admin);
    const a = await user();
    const lease = ok(await request(a.token), 'requestLease');
    const revoked = ok(await server.gql(Q.revoke, { id: lease.id, reason: 'abuse report #12' }, admin), 'revokeLease');
    expect(revoked).toMatchObject({ status: 'REVOKED', endReason: 'abuse report #12', user: { activeLeaseCount: 0 } });
    await expectRefused(server.gql(Q.revoke, { id: lease.id }, admin), 'LEASE_NOT_ACTIVE');

    const b = await user();
    const other = ok(await request(b.token), 'requestLease');
    clock.advance(3 * 86400_000);
    // Past its expiry: the revoke is refused, and the lease is recorded as expired.
    const res = await server.gql(Q.revoke, { id: other.id }, admin);
    expect(codeOf(res)).toBe('LEASE_NOT_ACTIVE');
    expect(ok(await server.gql(Q.lease, { id: other.id }, admin), 'lease').status).toBe('EXPIRED');
    await expectRefused(server.gql(Q.revoke, { id: other.id }, admin), 'LEASE_NOT_ACTIVE');
  });

  it('extend: adds time to an active lease; a revoked one is LEASE_NOT_ACTIVE', async () => {
    await createKey(server, admin);
    const a = await user();
    const lease = ok(await request(a.token), 'requestLease');
    const extended = ok(await server.gql(Q.extend, { id: lease.id, by: 3600 }, admin), 'extendLease');
    expect(new Date(extended.expiresAt).getTime() - new Date(lease.expiresAt).getTime()).toBe(3600_000);
    await expectRefused(server.gql(Q.extend, { id: lease.id, by: 0 }, admin), 'BAD_USER_INPUT');
    ok(await server.gql(Q.revoke, { id: lease.id }, admin), 'revokeLease');
    await expectRefused(server.gql(Q.extend, { id: lease.id, by: 3600 }, admin), 'LEASE_NOT_ACTIVE');
    await expectRefused(server.gql(Q.extend, { id: lease.id, by: 3600, re: true }, admin), 'LEASE_NOT_ACTIVE');
  });

  it('reactivate: only with reactivate: true, and only within the tier limit and the key', async () => {
    const key = await createKey(server, admin, { maxActiveLeases: 1 });
    const a = await user();
    const lease = ok(await request(a.token), 'requestLease');
    clock.advance(2 * 86400_000 + 1000);
    expect((await server.app.services.leases.expireDueBatch(1000)).events.map((e) => e.leaseId)).toContain(lease.id);
    expect(ok(await server.gql(Q.lease, { id: lease.id }, admin), 'lease').status).toBe('EXPIRED');
    await expectRefused(server.gql(Q.extend, { id: lease.id, by: 60 }, admin), 'LEASE_NOT_ACTIVE');

    // The key's only slot is taken by someone else: no room to come back.
    const b = await user();
    const taker = ok(await request(b.token), 'requestLease');
    await expectRefused(server.gql(Q.extend, { id: lease.id, by: 60, re: true }, admin), 'NO_KEY_AVAILABLE');
    ok(await server.gql(Q.release, { id: taker.id }, b.token), 'releaseLease');

    // The user holds another lease (on another key): the FREE tier has no room either.
    await createKey(server, admin);
    const second = ok(await request(a.token), 'requestLease');
    await expectRefused(server.gql(Q.extend, { id: lease.id, by: 60, re: true }, admin), 'TIER_LIMIT_REACHED');
    ok(await server.gql(Q.release, { id: second.id }, a.token), 'releaseLease');

    const back = ok(await server.gql(Q.extend, { id: lease.id, by: 600, re: true }, admin), 'extendLease');
    expect(back).toMatchObject({ status: 'ACTIVE', endedAt: null, endReason: null, user: { activeLeaseCount: 1 } });
    expect(new Date(back.expiresAt).getTime()).toBe(clock.now().getTime() + 600_000);
    expect(ok(await server.gql(Q.key, { id: key.id }, admin), 'managedKey').activeLeaseCount).toBe(1);
  });

  it('disabling a key revokes its leases with the reason and frees every slot', async () => {
    const key = await createKey(server, admin);
    const holders = await Promise.all([user(), user(), user()]);
    const leases = [];
    for (const h of holders) leases.push(ok(await request(h.token), 'requestLease'));
    const disabled = ok(
      await server.gql(Q.disableKey, { id: key.id, reason: 'provider suspended the account' }, admin),
      'disableManagedKey',
    );
    expect(disabled).toMatchObject({
      status: 'DISABLED',
      disabledReason: 'provider suspended the account',
      activeLeaseCount: 0,
    });
    for (const [i, l] of leases.entries()) {
      const after = ok(await server.gql(Q.lease, { id: l.id }, admin), 'lease');
      expect(after).toMatchObject({
        status: 'REVOKED',
        endReason: 'provider suspended the account',
        user: { id: holders[i]!.sub, activeLeaseCount: 0 },
      });
    }
  });

  it('every transition writes its lease event and audit entry', async () => {
    await createKey(server, admin);
    const a = await user();
    const lease = ok(await request(a.token, { agentId: 'evt' }), 'requestLease');
    ok(await server.gql(Q.extend, { id: lease.id, by: 60 }, admin), 'extendLease');
    ok(await server.gql(Q.release, { id: lease.id }, a.token), 'releaseLease');
    const events = await server.app.db.leaseEvent.findMany({ where: { leaseId: lease.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => [e.type, e.stopAgent, e.agentId, e.userId])).toEqual([
      ['GRANTED', false, 'evt', a.sub],
      ['EXTENDED', false, 'evt', a.sub],
      ['RELEASED', true, 'evt', a.sub],
    ]);
    const audits = await server.app.db.auditEntry.findMany({ where: { targetId: lease.id }, orderBy: { id: 'asc' } });
    expect(audits.map((e) => [e.action, e.actorId])).toEqual([
      ['lease.grant', a.sub],
      ['lease.extend', 'admin-1'],
      ['lease.released', a.sub],
    ]);
  });
});

describe('queries', () => {
  it('a user sees only their own leases; others see all, filtered and paged newest first', async () => {
    await createKey(server, admin);
    const a = await user();
    const b = await user();
    ok(await server.gql(Q.setTier, { userId: a.sub, tier: 'PRO' }, admin), 'setUserTier');
    const mine = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      mine.push(ok(await request(a.token, { agentId: `a-${i}` }), 'requestLease'));
    }
    clock.advance(1000);
    const theirs = ok(await request(b.token), 'requestLease');

    const own = ok(await server.gql(Q.leases, {}, a.token), 'leases');
    expect(own.edges.map((e: any) => e.node.id)).toEqual(mine.map((l) => l.id).reverse());
    const sneaky = ok(await server.gql(Q.leases, { userId: b.sub }, a.token), 'leases');
    expect(sneaky.totalCount).toBe(0);
    expect(codeOf(await server.gql(Q.lease, { id: theirs.id }, a.token))).toBe('NOT_FOUND');

    const pages: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = ok(await server.gql(Q.leases, { first: 2, after, userId: a.sub }, worker), 'leases');
      pages.push(...page.edges.map((e: any) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages).toEqual(mine.map((l) => l.id).reverse());
    const byAgent = ok(await server.gql(Q.leases, { agentId: 'a-1' }, admin), 'leases');
    expect(byAgent.edges.map((e: any) => e.node.id)).toEqual([mine[1].id]);
    ok(await server.gql(Q.release, { id: mine[0].id }, a.token), 'releaseLease');
    const released = ok(await server.gql(Q.leases, { status: 'RELEASED', userId: a.sub }, admin), 'leases');
    expect(released.edges.map((e: any) => e.node.id)).toEqual([mine[0].id]);
  });
});
