// Reconciliation per lease (issue 15, item 5): each minted key's own usage read from the fake
// key-management APIs (OpenRouter GET /keys/{hash}, Venice GET /api_keys/{id}), whose figures grow
// with the inference the fake provider serves with that key. Requests go through the metering proxy,
// so MPK's figure and the provider's come from the same answers: the drift is zero until the fake
// charges a request MPK never saw.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeKeyAdmin, type KeyAdminStyle } from '../../demo/fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { createManualClock } from '../../tests/support/clock.js';
import {
  completionStatus,
  createMintingKey,
  disableKeys,
  newUser,
  ok,
  Q,
  requestLease,
} from '../../tests/support/fixtures.js';
import { startTestServer, type TestServer } from '../../tests/support/server.js';
import { mintedKeyDrift } from '../minting/service.js';

const clock = createManualClock('2026-06-01T10:00:00.000Z');
let server: TestServer;
let admin: string;
let worker: string;
const upstreams: FakeUpstream[] = [];

const LEASE = `query($id: ID!) { lease(id: $id) { usageUsd requestCount mintedKey {
  status providerKeyId providerUsageUsd providerCheckedAt providerError driftUsd } } }`;

beforeAll(async () => {
  server = await startTestServer({ clock, scheduler: false });
  admin = await server.token('ADMIN', 'admin-reconcile-minted');
  worker = await server.token('WORKER', 'worker-reconcile-minted');
});
afterAll(async () => {
  await server?.close();
  for (const u of upstreams) await u.close();
});

const leaseOf = async (id: string) => ok(await server.gql(LEASE, { id }, admin), 'lease');

/** A proxied lease on a fresh MINT key of `style`, its minted key made: the proxy URL and token. */
async function mintedLease(style: KeyAdminStyle) {
  await disableKeys(server);
  const keyAdmin = createFakeKeyAdmin({ style, clock });
  const upstream = await startFakeUpstream({ keyAdmin });
  upstreams.push(upstream);
  const provider = style === 'openrouter' ? 'OPENROUTER' : 'VENICE';
  upstream.costStyle = style;
  const mintingKey = await createMintingKey(server, admin, {
    provider,
    adminKey: keyAdmin.adminKey,
    url: upstream.url,
  });
  const user = await newUser(server);
  const lease = (await requestLease(server, user.token, { provider, framework: 'GENERIC' })) as { id: string };
  await server.app.providerJobs.runNow();
  const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
  const made = [...keyAdmin.keys.values()][0]!;
  return {
    lease,
    mintingKeyId: mintingKey.id,
    keyAdmin,
    upstream,
    made,
    baseUrl: resolved.baseUrl as string,
    token: resolved.apiKey as string,
  };
}

/** `n` proxied completions, then until the meter has written them (it writes behind, in batches). */
async function complete(lease: { id: string }, baseUrl: string, token: string, n: number) {
  const before = (await leaseOf(lease.id)).requestCount as number;
  for (let i = 0; i < n; i++) expect(await completionStatus(baseUrl, token)).toBe(200);
  const deadline = Date.now() + 5000;
  while ((await leaseOf(lease.id)).requestCount < before + n) {
    if (Date.now() > deadline) throw new Error('the metered requests were not written within 5 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The lease, whose minted key holds a good reading taken now that equals what MPK metered. */
async function exactReadingNow(lease: { id: string }, made: { id: string; usageUsd: number }, status: string) {
  const now = await leaseOf(lease.id);
  // The provider's figure is the sum of what the fake charged this key: what MPK metered, exactly.
  expect(made.usageUsd).toBe(Number(now.usageUsd));
  expect(now.mintedKey).toEqual({
    status,
    providerKeyId: made.id,
    providerUsageUsd: now.usageUsd,
    providerCheckedAt: clock.now().toISOString(),
    providerError: null,
    driftUsd: '0.00',
  });
  return now;
}

describe("reconciliation reads each minted key's own usage", () => {
  for (const style of ['openrouter', 'venice'] as const) {
    it(`${style}: drift zero when MPK metered every request, the unmetered request's cost when the provider counted one more`, async () => {
      const { lease, mintingKeyId, made, upstream, baseUrl, token } = await mintedLease(style);
      expect((await leaseOf(lease.id)).mintedKey).toMatchObject({ providerUsageUsd: null, driftUsd: null });

      await complete(lease, baseUrl, token, 3);
      clock.advance(60_000);
      await server.app.reconcile.runOnce();
      const metered = await exactReadingNow(lease, made, 'ACTIVE');
      expect(Number(metered.usageUsd)).toBeGreaterThan(0);
      // The minting key itself has no key-level figures: its own usage at the provider is not its leases'.
      const mintingKey = ok(
        await server.gql(
          `query($id: ID!) { managedKey(id: $id) { mode providerUsage { checkedAt } } }`,
          { id: mintingKeyId },
          admin,
        ),
        'managedKey',
      );
      expect(mintingKey).toEqual({ mode: 'MINT', providerUsage: null });

      // Requests after the reading are in neither figure: no drift that is only time between the two.
      clock.advance(1000);
      await complete(lease, baseUrl, token, 1);
      expect((await leaseOf(lease.id)).mintedKey.driftUsd).toBe('0.00');

      // A request MPK never saw (the agent went around the proxy, say): the provider counts it.
      upstream.bill(made.secret, 0.25, clock.now());
      clock.advance(60_000);
      await server.app.reconcile.runOnce();
      const drifted = (await leaseOf(lease.id)).mintedKey;
      const now = await leaseOf(lease.id);
      expect(Number(drifted.providerUsageUsd)).toBeCloseTo(Number(now.usageUsd) + 0.25, 9);
      expect(drifted.driftUsd).toBe('0.25');
      expect(drifted.providerCheckedAt).toBe(clock.now().toISOString());
    });
  }

  it("a failed reading is stored in MPK's words (never the provider's) and keeps the last figure", async () => {
    const { lease, keyAdmin, made, baseUrl, token } = await mintedLease('openrouter');
    await complete(lease, baseUrl, token, 1);
    await server.app.reconcile.runOnce();
    const good = (await leaseOf(lease.id)).mintedKey;
    expect(good.providerError).toBeNull();

    keyAdmin.failNext = { count: 1, status: 500 };
    clock.advance(60_000);
    await server.app.reconcile.runOnce();
    const failed = (await leaseOf(lease.id)).mintedKey;
    // The last good figure and its time stay, so the drift still compares like with like.
    expect(failed).toMatchObject({
      providerError: `GET /keys/${made.id} answered 500`,
      providerUsageUsd: good.providerUsageUsd,
      providerCheckedAt: good.providerCheckedAt,
      driftUsd: '0.00',
    });
    expect(failed.providerError).not.toContain('Temporarily unavailable');

    // The provider lost the key (deleted at its console): said so, not taken for zero usage.
    made.deletedAt = clock.now().getTime();
    await server.app.reconcile.runOnce();
    expect((await leaseOf(lease.id)).mintedKey.providerError).toBe('the provider no longer knows this key (404)');

    made.deletedAt = null;
    await server.app.reconcile.runOnce();
    expect((await leaseOf(lease.id)).mintedKey.providerError).toBeNull();
  });
});

describe("an ended lease's key is read once more before it is deleted", () => {
  /** Ends the lease and runs its DELETE job: the provider calls it made, method and status. */
  async function end(lease: { id: string }, keyAdmin: { calls: { method: string; status: number }[] }) {
    ok(await server.gql(Q.release, { id: lease.id }, admin), 'releaseLease');
    keyAdmin.calls.length = 0;
    await server.app.providerJobs.runNow();
    return keyAdmin.calls.map((c) => [c.method, c.status]);
  }

  for (const style of ['openrouter', 'venice'] as const) {
    it(`${style}: requests after the last periodic reading are in the final figure; drift 0.00 when MPK metered them all`, async () => {
      const { lease, keyAdmin, made, baseUrl, token } = await mintedLease(style);
      await complete(lease, baseUrl, token, 2);
      clock.advance(60_000);
      await server.app.reconcile.runOnce();
      const periodic = await leaseOf(lease.id);
      expect(periodic.mintedKey.providerUsageUsd).toBe(periodic.usageUsd);

      // More requests, then the lease ends before reconciliation comes round again.
      clock.advance(1000);
      await complete(lease, baseUrl, token, 3);
      clock.advance(1000);
      expect(await end(lease, keyAdmin)).toEqual([
        ['GET', 200],
        ['DELETE', 200],
      ]);
      expect(made.deletedAt).not.toBeNull();
      const ended = await exactReadingNow(lease, made, 'DELETED');
      expect(Number(ended.usageUsd)).toBeGreaterThan(Number(periodic.usageUsd));

      // Reconciliation reads only keys the provider still holds: the final figure stays.
      clock.advance(60_000);
      await server.app.reconcile.runOnce();
      expect((await leaseOf(lease.id)).mintedKey).toEqual(ended.mintedKey);
    });
  }

  it('a request the provider charged after the last periodic reading is in the final drift', async () => {
    const { lease, keyAdmin, made, upstream, baseUrl, token } = await mintedLease('openrouter');
    await complete(lease, baseUrl, token, 1);
    clock.advance(60_000);
    await server.app.reconcile.runOnce();
    expect((await leaseOf(lease.id)).mintedKey.driftUsd).toBe('0.00');
    clock.advance(1000);
    upstream.bill(made.secret, 0.25, clock.now());
    clock.advance(1000);
    await end(lease, keyAdmin);
    expect((await leaseOf(lease.id)).mintedKey).toMatchObject({ status: 'DELETED', driftUsd: '0.25' });
  });

  it("a final reading that fails is stored in MPK's words, and the key is deleted all the same", async () => {
    const { lease, keyAdmin, made, baseUrl, token } = await mintedLease('openrouter');
    await complete(lease, baseUrl, token, 1);
    clock.advance(60_000);
    await server.app.reconcile.runOnce();
    const periodic = (await leaseOf(lease.id)).mintedKey;
    clock.advance(1000);
    keyAdmin.failNext = { count: 1, status: 500 };
    expect(await end(lease, keyAdmin)).toEqual([
      ['GET', 500],
      ['DELETE', 200],
    ]);
    expect(made.deletedAt).not.toBeNull();
    // The last good figure and its time stay, with the reason the final one is missing.
    expect((await leaseOf(lease.id)).mintedKey).toEqual({
      ...periodic,
      status: 'DELETED',
      providerError: `GET /keys/${made.id} answered 500`,
    });
    const jobs = await server.app.db.providerJob.findMany({ where: { leaseId: lease.id, kind: 'DELETE' } });
    expect(jobs).toMatchObject([{ status: 'DONE', attempts: 1, lastError: null }]);
  });

  it('a reading never replaces a later one (reconciliation and a DELETE job may read one key at once)', async () => {
    const { lease, made, upstream, baseUrl, token } = await mintedLease('openrouter');
    await complete(lease, baseUrl, token, 1);
    const later = clock.now();
    await server.app.reconcile.runOnce();
    const stored = (await leaseOf(lease.id)).mintedKey;
    // A reading that began earlier (its time is taken before the request) and is stored after.
    upstream.bill(made.secret, 0.25, clock.now());
    clock.set(new Date(later.getTime() - 30_000));
    try {
      await server.app.reconcile.runOnce();
      made.deletedAt = clock.now().getTime();
      await server.app.reconcile.runOnce();
      made.deletedAt = null;
    } finally {
      clock.set(new Date(later.getTime() + 1000));
    }
    expect((await leaseOf(lease.id)).mintedKey).toEqual(stored);
    await server.app.reconcile.runOnce();
    expect((await leaseOf(lease.id)).mintedKey.driftUsd).toBe('0.25');
  });
});

describe('mintedKeyDrift', () => {
  const base = {
    leaseUsageUsd: '1.5',
    providerUsageUsd: '1.25',
    providerCreatedAt: new Date('2026-06-01T00:00:00Z'),
    providerCheckedAt: new Date('2026-06-03T00:00:00Z'),
  };
  it("is the provider's figure less MPK's, null before a reading", () => {
    expect(mintedKeyDrift({ ...base, provider: 'OPENROUTER' })?.toString()).toBe('-0.25');
    expect(mintedKeyDrift({ ...base, provider: 'OPENROUTER', providerUsageUsd: null })).toBeNull();
    expect(mintedKeyDrift({ ...base, provider: 'OPENROUTER', providerCheckedAt: null })).toBeNull();
  });
  it("is null on a Venice key older than the seven days Venice's figure covers, but not on OpenRouter", () => {
    const late = new Date('2026-06-08T00:00:01Z');
    expect(mintedKeyDrift({ ...base, provider: 'VENICE' })?.toString()).toBe('-0.25');
    expect(mintedKeyDrift({ ...base, provider: 'VENICE', providerCheckedAt: late })).toBeNull();
    expect(mintedKeyDrift({ ...base, provider: 'OPENROUTER', providerCheckedAt: late })?.toString()).toBe('-0.25');
  });
});
