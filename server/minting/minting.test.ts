// Minted keys end to end: a real server and database, the providers' key-management APIs faked on
// local HTTP servers in their documented wire formats (demo/fake-key-admin.ts), and a clock the
// runner and the fakes share. The runner is driven by the tests (runNow) so that every provider
// call can be checked in order; one test lets it run on its own, as the scheduler does.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFakeKeyAdmin, type FakeKeyAdmin, type KeyAdminStyle } from '../../demo/fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { createManualClock } from '../../tests/support/clock.js';
import {
  codeOf,
  completionStatus,
  createMintingKey,
  disableKeys,
  newUser,
  ok,
  Q,
  requestLease,
} from '../../tests/support/fixtures.js';
import { startTestServer, type TestServer } from '../../tests/support/server.js';

const clock = createManualClock('2026-06-01T10:00:00.000Z');
const ATTEMPTS = 3;
let server: TestServer;
let admin: string;
let worker: string;
const fakes: { admin: FakeKeyAdmin; upstream: FakeUpstream }[] = [];
/** Every GraphQL answer but resolveLease's, for the secret scan at the end. */
const answers: string[] = [];

const MINTED = `mintedKey { status maskedKey providerKeyId limitUsd expiresAt }`;
const LEASE = `query($id: ID!) { lease(id: $id) { id status expiresAt spendCapUsd ${MINTED} } }`;
const KEY = `query($id: ID!) { managedKey(id: $id) { id mode maxMintedKeys mintedKeyCount activeLeaseCount } }`;
const JOBS = `query($leaseId: ID, $status: ProviderJobStatus) {
  providerJobs(first: 50, leaseId: $leaseId, status: $status) {
    totalCount edges { node { id kind status attempts lastError runAfter } } } }`;
const RETRY = `mutation($id: ID!) { retryProviderJob(id: $id) { id status attempts } }`;

async function gql(query: string, variables: Record<string, unknown>, token: string) {
  const res = await server.gql(query, variables, token);
  answers.push(JSON.stringify(res));
  return res;
}

async function fake(style: KeyAdminStyle) {
  const keyAdmin = createFakeKeyAdmin({ style, clock });
  const upstream = await startFakeUpstream({ keyAdmin });
  fakes.push({ admin: keyAdmin, upstream });
  return { keyAdmin, upstream };
}

/** A MINT key (the only active one) on a fresh fake of `style`'s key-management API. */
async function mintingKey(style: KeyAdminStyle, config: Record<string, unknown> = { delivery: 'DIRECT' }) {
  await disableKeys(server);
  const { keyAdmin, upstream } = await fake(style);
  const provider = style === 'openrouter' ? 'OPENROUTER' : 'VENICE';
  const key = await createMintingKey(
    { gql },
    admin,
    { provider, adminKey: keyAdmin.adminKey, url: upstream.url },
    { config },
  );
  return { key, keyAdmin, upstream, provider };
}

async function grant(provider: string) {
  const user = await newUser(server);
  return (await requestLease(server, user.token, { provider, framework: 'GENERIC' })) as {
    id: string;
    expiresAt: string;
  };
}

const drain = () => server.app.providerJobs.runNow();
const calls = (a: FakeKeyAdmin) => a.calls.map((c) => `${c.method} ${c.path}`);
const leaseOf = async (id: string) => ok(await gql(LEASE, { id }, admin), 'lease');
const keyOf = async (id: string) => ok(await gql(KEY, { id }, admin), 'managedKey');
const jobsOf = async (leaseId: string) =>
  ok(await gql(JOBS, { leaseId }, admin), 'providerJobs').edges.map((e: { node: unknown }) => e.node);

beforeAll(async () => {
  server = await startTestServer({ clock, scheduler: false, config: { providerJobAttempts: ATTEMPTS } });
  admin = await server.token('ADMIN', 'admin-mint');
  worker = await server.token('WORKER', 'worker-mint');
});
afterAll(async () => {
  await server?.close();
  for (const f of fakes) await f.upstream.close();
});
beforeEach(() => clock.advance(1000));

describe('a grant on a MINT key mints a provider key of its own', () => {
  it('OpenRouter: one key with the lease cap and expiry; resolveLease (DIRECT) hands it out, never the management key', async () => {
    const { key, keyAdmin } = await mintingKey('openrouter');
    expect(await keyOf(key.id)).toMatchObject({ mode: 'MINT', maxMintedKeys: null, mintedKeyCount: 0 });
    const lease = await grant('OPENROUTER');
    // The grant queued the creation in its own transaction; nothing reached the provider yet.
    expect(keyAdmin.calls).toEqual([]);
    expect((await leaseOf(lease.id)).mintedKey).toMatchObject({ status: 'PENDING', maskedKey: null });
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 1, activeLeaseCount: 1 });

    expect(await drain()).toBe(1);
    expect(calls(keyAdmin)).toEqual(['POST /keys']);
    expect(keyAdmin.calls[0]!.body).toEqual({ name: `mpk-lease-${lease.id}`, limit: 5, expires_at: lease.expiresAt });
    const [made] = keyAdmin.keys.values();
    const minted = (await leaseOf(lease.id)).mintedKey;
    expect(minted).toEqual({
      status: 'ACTIVE',
      maskedKey: expect.stringMatching(/^sk-or-\.\.\.[0-9a-f]{4}$/),
      providerKeyId: made!.id,
      limitUsd: '5.00',
      expiresAt: lease.expiresAt,
    });

    const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    expect(resolved.apiKey).toBe(made!.secret);
    expect(resolved.apiKey).not.toBe(keyAdmin.adminKey);
    expect(JSON.stringify(resolved)).not.toContain(keyAdmin.adminKey);
  });

  it('resolveLease waits briefly for a key still being created, then answers KEY_NOT_READY with a retry hint', async () => {
    await mintingKey('openrouter');
    const lease = await grant('OPENROUTER');
    const started = performance.now();
    const res = await gql(Q.resolve, { leaseId: lease.id }, worker);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2900);
    expect(codeOf(res)).toBe('KEY_NOT_READY');
    expect(res.errors?.[0]).toMatchObject({ extensions: { retryAfterSeconds: 2 } });
  });

  it('with the runner leading, a grant nudges it: resolveLease gets the key within its wait', async () => {
    const { keyAdmin } = await mintingKey('venice');
    server.app.providerJobs.start();
    try {
      const lease = await grant('VENICE');
      const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
      expect(resolved.apiKey).toBe([...keyAdmin.keys.values()][0]!.secret);
    } finally {
      await server.app.providerJobs.stop();
    }
  });

  it('PROXY delivery: the metering proxy goes upstream with the lease minted key', async () => {
    const { keyAdmin, upstream } = await mintingKey('openrouter', {});
    const lease = await grant('OPENROUTER');
    const resolved = ok(await gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    // Not made yet: the proxy says so, in OpenAI's shape, with Retry-After.
    const early = await fetch(`${resolved.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${resolved.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages: [] }),
    });
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).toBe('2');
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('key_not_ready');

    await drain();
    expect(await completionStatus(resolved.baseUrl, resolved.apiKey)).toBe(200);
    const [made] = keyAdmin.keys.values();
    expect(upstream.authorizations.at(-1)).toBe(`Bearer ${made!.secret}`);
    expect(upstream.authorizations).not.toContain(`Bearer ${resolved.apiKey}`);
  });
});

describe('the minted key follows its lease, call by call as the providers document them', () => {
  it('OpenRouter: cap, suspension, resumption, extension (a replacement: expiry cannot move), release', async () => {
    const { key, keyAdmin } = await mintingKey('openrouter');
    const lease = await grant('OPENROUTER');
    await drain();
    const first = [...keyAdmin.keys.values()][0]!;

    ok(await gql(Q.updateCap, { id: lease.id, cap: '3.5' }, admin), 'updateLeaseCap');
    await drain();
    // Cap at zero: suspended, its key disabled (the new limit first, in the order the changes were made).
    ok(await gql(Q.updateCap, { id: lease.id, cap: '0' }, admin), 'updateLeaseCap');
    await drain();
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('DISABLED');
    ok(await gql(Q.updateCap, { id: lease.id, cap: '4' }, admin), 'updateLeaseCap');
    await drain();
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('ACTIVE');
    const hash = encodeURIComponent(first.id);
    expect(calls(keyAdmin).slice(1)).toEqual([
      `PATCH /keys/${hash}`,
      `PATCH /keys/${hash}`,
      `PATCH /keys/${hash}`,
      `PATCH /keys/${hash}`,
      `PATCH /keys/${hash}`,
    ]);
    expect(keyAdmin.calls.slice(1).map((c) => c.body)).toEqual([
      { limit: 3.5 },
      { limit: 0 },
      { disabled: true },
      { limit: 4 },
      { disabled: false },
    ]);

    first.usageUsd = 1.25;
    keyAdmin.calls.length = 0;
    const extended = ok(await gql(Q.extend, { id: lease.id, by: 3600 }, admin), 'extendLease');
    await drain();
    const second = [...keyAdmin.keys.values()][1]!;
    expect(calls(keyAdmin)).toEqual([`GET /keys/${hash}`, 'POST /keys', `DELETE /keys/${hash}`]);
    // What is left of the cap on the new key: $4 less the $1.25 the old one spent.
    expect(keyAdmin.calls[1]!.body).toEqual({
      name: `mpk-lease-${lease.id}`,
      limit: 2.75,
      expires_at: extended.expiresAt,
    });
    expect(first.deletedAt).not.toBeNull();
    expect((await leaseOf(lease.id)).mintedKey).toMatchObject({
      providerKeyId: second.id,
      expiresAt: extended.expiresAt,
    });
    const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    expect(resolved.apiKey).toBe(second.secret);

    keyAdmin.calls.length = 0;
    ok(await gql(Q.release, { id: lease.id }, admin), 'releaseLease');
    await drain();
    // The key's usage read one last time (the lease's final figure), then the key deleted.
    const secondHash = encodeURIComponent(second.id);
    expect(calls(keyAdmin)).toEqual([`GET /keys/${secondHash}`, `DELETE /keys/${secondHash}`]);
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('DELETED');
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 0, activeLeaseCount: 0 });
    expect(keyAdmin.activeKeys()).toEqual([]);
    expect(await jobsOf(lease.id)).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'DELETE', status: 'DONE', attempts: 1 })]),
    );
  });

  it('Venice: creation, extension, cap, suspension, resumption and revocation', async () => {
    const { key, keyAdmin } = await mintingKey('venice');
    const lease = await grant('VENICE');
    await drain();
    const made = [...keyAdmin.keys.values()][0]!;
    expect(keyAdmin.calls[0]).toMatchObject({
      method: 'POST',
      path: '/api_keys',
      body: {
        apiKeyType: 'INFERENCE',
        description: `mpk-lease-${lease.id}`,
        consumptionLimit: { usd: 5 },
        limitPeriod: 'LIFETIME',
        expiresAt: lease.expiresAt,
      },
    });
    const extended = ok(await gql(Q.extend, { id: lease.id, by: 600 }, admin), 'extendLease');
    await drain();
    ok(await gql(Q.updateCap, { id: lease.id, cap: '2' }, admin), 'updateLeaseCap');
    await drain();
    ok(await gql(Q.updateCap, { id: lease.id, cap: '0' }, admin), 'updateLeaseCap');
    await drain();
    ok(await gql(Q.updateCap, { id: lease.id, cap: '3' }, admin), 'updateLeaseCap');
    await drain();
    ok(await gql(Q.revoke, { id: lease.id, reason: 'done' }, admin), 'revokeLease');
    await drain();
    const id = made.id;
    expect(keyAdmin.calls.slice(1).map((c) => [`${c.method} ${c.path}`, c.body])).toEqual([
      ['PATCH /api_keys', { id, expiresAt: extended.expiresAt }],
      ['PATCH /api_keys', { id, consumptionLimit: { usd: 2 }, limitPeriod: 'LIFETIME' }],
      // Cap 0: the new limit, then the suspension's switch (Venice's is a zero limit); the raised cap
      // waits for the enabling call, which puts it on.
      ['PATCH /api_keys', { id, consumptionLimit: { usd: 0 }, limitPeriod: 'LIFETIME' }],
      ['PATCH /api_keys', { id, consumptionLimit: { usd: 0 }, limitPeriod: 'LIFETIME' }],
      ['PATCH /api_keys', { id, consumptionLimit: { usd: 3 }, limitPeriod: 'LIFETIME' }],
      [`GET /api_keys/${id}`, {}],
      [`DELETE /api_keys?id=${id}`, {}],
    ]);
    expect(made.expiresAt).toBe(extended.expiresAt);
    expect(made.deletedAt).not.toBeNull();
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 0, maxMintedKeys: 500 });
  });

  it('expiry deletes the key; a disabled minting key has all its leases keys deleted', async () => {
    const { key, keyAdmin } = await mintingKey('openrouter');
    const lease = await grant('OPENROUTER');
    await drain();
    clock.set(new Date(new Date(lease.expiresAt).getTime() - 1000));
    const others = [await grant('OPENROUTER'), await grant('OPENROUTER')];
    await drain();
    expect(keyAdmin.activeKeys()).toHaveLength(3);

    clock.set(new Date(new Date(lease.expiresAt).getTime() + 1000));
    await server.app.expiry.expireAll();
    keyAdmin.calls.length = 0;
    await drain();
    const expired = [...keyAdmin.keys.values()][0]!;
    const expiredHash = encodeURIComponent(expired.id);
    expect(calls(keyAdmin)).toEqual([`GET /keys/${expiredHash}`, `DELETE /keys/${expiredHash}`]);
    expect((await leaseOf(lease.id)).status).toBe('EXPIRED');

    ok(await gql(Q.disableKey, { id: key.id, reason: 'rotating' }, admin), 'disableManagedKey');
    await drain();
    expect(calls(keyAdmin).slice(2).sort()).toEqual(
      [...keyAdmin.keys.values()]
        .slice(1)
        .flatMap((k) => [`GET /keys/${encodeURIComponent(k.id)}`, `DELETE /keys/${encodeURIComponent(k.id)}`])
        .sort(),
    );
    for (const other of others) expect((await leaseOf(other.id)).mintedKey.status).toBe('DELETED');
    expect(keyAdmin.activeKeys()).toEqual([]);
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 0 });
    // Each key deleted once: a second DELETE would have found it gone.
    expect([...keyAdmin.keys.values()].map((k) => k.deletes)).toEqual([1, 1, 1]);
  });

  it('an expired lease brought back gets a new key (the old one deleted first)', async () => {
    const { key, keyAdmin } = await mintingKey('venice');
    const lease = await grant('VENICE');
    await drain();
    const old = [...keyAdmin.keys.values()][0]!;
    clock.set(new Date(Date.parse(lease.expiresAt) + 1000));
    await server.app.expiry.expireAll();
    const back = ok(await gql(Q.extend, { id: lease.id, by: 3600, re: true }, admin), 'extendLease');
    expect(back.status).toBe('ACTIVE');
    // Counted twice until the old key is confirmed gone: both exist at the provider meanwhile.
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 2 });
    await drain();
    const renewed = [...keyAdmin.keys.values()][1]!;
    expect(keyAdmin.calls.slice(1).map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET /api_keys/${old.id}`,
      `DELETE /api_keys?id=${old.id}`,
      'POST /api_keys',
    ]);
    expect(keyAdmin.calls[3]!.body).toMatchObject({ description: `mpk-lease-${lease.id}`, expiresAt: back.expiresAt });
    expect(ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease').apiKey).toBe(renewed.secret);
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 1 });
    expect(keyAdmin.activeKeys().map((k) => k.id)).toEqual([renewed.id]);
  });

  it("the provider-side limit is the cap, within what the key's daily and monthly limits still allow", async () => {
    await disableKeys(server);
    const { keyAdmin, upstream } = await fake('openrouter');
    await createMintingKey(
      { gql },
      admin,
      { provider: 'OPENROUTER', adminKey: keyAdmin.adminKey, url: upstream.url },
      { dailyLimitUsd: '2.5', monthlyLimitUsd: '40' },
    );
    const lease = await grant('OPENROUTER');
    await drain();
    expect(keyAdmin.calls[0]!.body).toMatchObject({ limit: 2.5 });
    expect((await leaseOf(lease.id)).mintedKey.limitUsd).toBe('2.50');
  });

  it('a suspended lease on a minting key at its cap resumes: its own key is counted already', async () => {
    const { key } = await mintingKey('venice');
    const setMax = 'mutation($id: ID!) { updateManagedKey(id: $id, input: { maxMintedKeys: 1 }) { maxMintedKeys } }';
    expect(ok(await gql(setMax, { id: key.id }, admin), 'updateManagedKey')).toEqual({ maxMintedKeys: 1 });
    const lease = await grant('VENICE');
    await drain();
    const other = await gql(Q.request, { input: { provider: 'VENICE' } }, (await newUser(server)).token);
    expect(other.errors?.[0]?.extensions).toMatchObject({ code: 'NO_KEY_AVAILABLE', reason: 'MINT_CAPACITY' });
    ok(await gql(Q.updateCap, { id: lease.id, cap: '0' }, admin), 'updateLeaseCap');
    expect(ok(await gql(Q.updateCap, { id: lease.id, cap: '5' }, admin), 'updateLeaseCap').status).toBe('ACTIVE');
    await drain();
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('ACTIVE');
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 1, maxMintedKeys: 1 });
  });

  it('a lease that ends before its key is made: no key is made, and none is left', async () => {
    const { key, keyAdmin } = await mintingKey('venice');
    const lease = await grant('VENICE');
    ok(await gql(Q.release, { id: lease.id }, admin), 'releaseLease');
    await drain();
    expect(keyAdmin.calls).toEqual([]);
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('DELETED');
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 0 });
  });
});

describe('failures', () => {
  it('retries with backoff (a 429 after its Retry-After) until the provider answers', async () => {
    const { keyAdmin } = await mintingKey('openrouter');
    const lease = await grant('OPENROUTER');
    keyAdmin.failNext = { count: 2, status: 429, retryAfterSeconds: 30 };
    await drain();
    let [job] = await jobsOf(lease.id);
    expect(job).toMatchObject({ kind: 'CREATE', status: 'PENDING', attempts: 1, lastError: 'POST /keys answered 429' });
    expect(Date.parse(job.runAfter) - clock.now().getTime()).toBe(30_000);
    // Not due yet: nothing is tried.
    clock.advance(29_000);
    await drain();
    expect((await jobsOf(lease.id))[0]).toMatchObject({ attempts: 1 });
    clock.advance(1000);
    await drain();
    [job] = await jobsOf(lease.id);
    expect(job).toMatchObject({ status: 'PENDING', attempts: 2 });
    clock.advance(30_000);
    await drain();
    [job] = await jobsOf(lease.id);
    expect(job).toMatchObject({ status: 'DONE', attempts: 3, lastError: null });
    expect(calls(keyAdmin)).toEqual(['POST /keys', 'POST /keys', 'POST /keys']);
    expect(keyAdmin.activeKeys()).toHaveLength(1);
  });

  it('after the last try the job is IRRECOVERABLE, with an event and an audit entry; an admin retries it', async () => {
    const { keyAdmin } = await mintingKey('venice');
    const lease = await grant('VENICE');
    keyAdmin.failNext = { count: ATTEMPTS, status: 503 };
    for (let i = 0; i < ATTEMPTS; i++) {
      await drain();
      clock.advance(10 * 60_000);
    }
    const failed = ok(await gql(JOBS, { status: 'IRRECOVERABLE', leaseId: lease.id }, admin), 'providerJobs');
    expect(failed.totalCount).toBe(1);
    const job = failed.edges[0].node;
    expect(job).toMatchObject({ kind: 'CREATE', attempts: ATTEMPTS, lastError: 'POST /api_keys answered 503' });

    const events = await server.app.db.leaseEvent.findMany({
      where: { leaseId: lease.id, type: 'PROVIDER_JOB_FAILED' },
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      stopAgent: false,
      details: { jobId: job.id, kind: 'CREATE', attempts: ATTEMPTS },
    });
    const audit = await server.app.db.auditEntry.findMany({
      where: { targetId: lease.id, action: 'providerJob.failed' },
    });
    expect(audit).toHaveLength(1);
    const metrics = await server.app.metrics.render();
    expect(metrics).toContain('mpk_provider_jobs{status="IRRECOVERABLE"} 1');
    expect(metrics).toContain('mpk_provider_job_runs_total{kind="CREATE",outcome="irrecoverable"} 1');
    // Failed for good: no further try however long it waits.
    clock.advance(3600_000);
    await drain();
    expect((await jobsOf(lease.id))[0]).toMatchObject({ status: 'IRRECOVERABLE', attempts: ATTEMPTS });

    expect(codeOf(await gql(RETRY, { id: job.id }, worker))).toBe('FORBIDDEN');
    expect(ok(await gql(RETRY, { id: job.id }, admin), 'retryProviderJob')).toMatchObject({
      status: 'PENDING',
      attempts: 0,
    });
    expect(codeOf(await gql(RETRY, { id: job.id }, admin))).toBe('CONFLICT');
    await drain();
    expect((await jobsOf(lease.id))[0]).toMatchObject({ status: 'DONE', attempts: 1 });
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('ACTIVE');
    expect(await server.app.db.auditEntry.count({ where: { targetId: job.id, action: 'providerJob.retry' } })).toBe(1);
  });

  it('a deletion the provider answers 404 counts as done', async () => {
    const { key, keyAdmin } = await mintingKey('openrouter');
    const lease = await grant('OPENROUTER');
    await drain();
    const made = [...keyAdmin.keys.values()][0]!;
    made.deletedAt = clock.now().getTime();
    ok(await gql(Q.release, { id: lease.id }, admin), 'releaseLease');
    await drain();
    // The final reading is answered 404 too: said so, and the deletion goes on to find the key gone.
    expect(keyAdmin.calls.slice(-2)).toMatchObject([
      { method: 'GET', status: 404 },
      { method: 'DELETE', status: 404 },
    ]);
    expect((await leaseOf(lease.id)).mintedKey.status).toBe('DELETED');
    expect((await server.app.db.mintedKey.findUniqueOrThrow({ where: { leaseId: lease.id } })).providerError).toBe(
      'the provider no longer knows this key (404)',
    );
    expect(await keyOf(key.id)).toMatchObject({ mintedKeyCount: 0 });
  });
});

describe('the orphan sweep', () => {
  /** A key made at the provider behind MPK's back (as a crash between creating and recording leaves one). */
  async function stray(upstream: FakeUpstream, keyAdmin: FakeKeyAdmin, name: string) {
    const res = await fetch(`${upstream.url}/api/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyAdmin.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    return ((await res.json()) as { data: { hash: string } }).data.hash;
  }

  it('deletes MPK-named keys MPK does not know or has ended; never one whose creation is unfinished', async () => {
    const { key, keyAdmin, upstream } = await mintingKey('openrouter');
    const live = await grant('OPENROUTER');
    const ended = await grant('OPENROUTER');
    await drain();
    const [liveKey, endedKey] = [...keyAdmin.keys.values()];
    ok(await gql(Q.release, { id: ended.id }, admin), 'releaseLease');
    await drain();
    // The provider kept it all the same (say a deletion MPK saw answered was not carried out).
    endedKey!.deletedAt = null;
    const unknown = await stray(upstream, keyAdmin, 'mpk-lease-00000000-0000-4000-8000-000000000000');
    const duplicate = await stray(upstream, keyAdmin, `mpk-lease-${live.id}`);
    const foreign = await stray(upstream, keyAdmin, 'someone-else');
    // A lease whose key is being made: a key by its name may be the one about to be recorded.
    const making = await grant('OPENROUTER');
    const inFlight = await stray(upstream, keyAdmin, `mpk-lease-${making.id}`);
    keyAdmin.calls.length = 0;

    const swept = await server.app.providerJobs.sweepNow();
    expect(swept.map((k) => [k.providerKeyId, k.reason]).sort()).toEqual(
      [
        [unknown, 'unknown lease'],
        [duplicate, 'not the lease key'],
        [endedKey!.id, 'lease ended'],
      ].sort(),
    );
    const alive = keyAdmin.activeKeys().map((k) => k.id);
    expect(alive).toEqual(expect.arrayContaining([liveKey!.id, foreign, inFlight]));
    expect(alive).toHaveLength(3);
    expect(
      await server.app.db.auditEntry.count({ where: { targetId: key.id, action: 'mintedKey.orphanDeleted' } }),
    ).toBe(3);

    // Once its creation is recorded, the other key by its name is an orphan too.
    await drain();
    expect((await server.app.providerJobs.sweepNow()).map((k) => k.providerKeyId)).toEqual([inFlight]);
    expect(await server.app.providerJobs.sweepNow()).toEqual([]);
    // Each orphan deleted once; the live key and the foreign one never.
    const deletes = (id: string) => keyAdmin.keys.get(id)!.deletes;
    expect([unknown, duplicate, inFlight, liveKey!.id, foreign].map(deletes)).toEqual([1, 1, 1, 0, 0]);
  });
});

describe('minted secrets stay sealed', () => {
  it('appear in no log line, audit entry, event, job row, table column or response but resolveLease', async () => {
    const secrets = fakes.flatMap((f) => [...f.admin.keys.values()].map((k) => k.secret));
    const managementKeys = fakes.map((f) => f.admin.adminKey);
    expect(secrets.length).toBeGreaterThan(5);
    const tables = await server.app.db.$queryRaw<{ name: string }[]>`
      SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'`;
    const dump: string[] = [];
    for (const { name } of tables) {
      const rows = await server.app.db.$queryRawUnsafe<{ row: string }[]>(
        `SELECT row_to_json(t)::text AS row FROM "${name}" t`,
      );
      dump.push(...rows.map((r) => `${name}: ${r.row}`));
    }
    expect(dump.some((line) => line.startsWith('ProviderJob:'))).toBe(true);
    const haystacks = { logs: server.logs.join('\n'), tables: dump.join('\n'), answers: answers.join('\n') };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of [...secrets, ...managementKeys]) {
        expect(text.includes(secret), `${where} holds a secret`).toBe(false);
      }
    }
  });
});
