// `npm run demo` as a newcomer meets it: the demo starts on a fresh embedded database, writes its
// history through MPK's services, and its agents lease keys and send metered requests through the
// proxy. Everything is checked through the GraphQL API, as the dashboard reads it. And the fake
// provider behind it stays out of the server: no server source imports anything from demo/.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Demo, startDemo } from '../demo/demo.js';
import { createGraphQLClient, type GraphQL } from '../demo/graphql.js';
import { AGENTS, KEYS } from '../demo/story.js';
import { mintToken } from '../server/auth/authenticator.js';
import { loadConfig } from '../server/config.js';

const root = path.resolve(import.meta.dirname, '..');
const AGENT_COUNT = 6;
let dataDir: string;
let demo: Demo | undefined;
let gql: GraphQL;
let admin: string;
/** When the agents began: what is newer came from them, not from the backfill. */
let liveSince: Date;
const lines: string[] = [];

interface LeaseNode {
  id: string;
  status: string;
  agentId: string | null;
  grantedAt: string;
  endedAt: string | null;
}

/** The newest leases: the live ones come first. */
const LEASES = `{ leases(first: 100) { edges { node { id status agentId grantedAt endedAt } } } }`;
const KEY_LIST = `{ managedKeys(first: 50) { totalCount edges { node { id label provider mode status disabledReason
  providerUsage { usageTodayUsd balanceUsd error } } } } }`;
const MINTED_LEASES = `query($keyId: ID) { leases(keyId: $keyId, first: 200) { edges { node {
  id status grantedAt endedAt requestCount usageUsd
  mintedKey { status providerKeyId maskedKey providerCreatedAt deletedAt } } } } }`;

interface MintedLease {
  id: string;
  status: string;
  grantedAt: string;
  endedAt: string | null;
  requestCount: number;
  usageUsd: string;
  mintedKey: {
    status: string;
    providerKeyId: string | null;
    maskedKey: string | null;
    providerCreatedAt: string | null;
    deletedAt: string | null;
  } | null;
}

const leases = async () =>
  (await gql<{ leases: { edges: { node: LeaseNode }[] } }>(admin, LEASES)).leases.edges.map((e) => e.node);
const isNew = (iso: string | null) => iso !== null && new Date(iso) >= liveSince;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-demo-'));
  demo = await startDemo({
    port: 0,
    host: '127.0.0.1',
    dataDir,
    agents: AGENT_COUNT,
    log: (line) => lines.push(line),
    logLevel: 'silent',
  });
  liveSince = new Date();
  gql = createGraphQLClient(demo.url);
  // Signed with the generated development secret in the demo's data folder, as `npm run token` does.
  const { jwtSecret } = await loadConfig({ MPK_DATA_DIR: dataDir });
  admin = await mintToken({ secret: jwtSecret, sub: 'admin@demo', role: 'ADMIN' });
});

afterAll(async () => {
  await demo?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('registers the pool: every key of the story, one disabled with its reason, one minting', async () => {
    const { managedKeys } = await gql(admin, KEY_LIST);
    expect(managedKeys.totalCount).toBe(KEYS.length);
    const nodes = managedKeys.edges.map((e: { node: unknown }) => e.node);
    expect(nodes.filter((k: { mode: string }) => k.mode === 'MINT')).toEqual([
      expect.objectContaining({ label: 'openrouter-minting', provider: 'OPENROUTER' }),
    ]);
    expect(new Set(nodes.map((k: { provider: string }) => k.provider))).toEqual(
      new Set(['OPENROUTER', 'VENICE', 'OPENAI_COMPATIBLE']),
    );
    const disabled = nodes.filter((k: { status: string }) => k.status === 'DISABLED');
    expect(disabled).toHaveLength(1);
    expect(disabled[0].disabledReason).toMatch(/\w/);
  });

  it('has 30 days of spend history, on every key, and one key near its daily limit', async () => {
    const { spendSeries: pool } = await gql(admin, `{ spendSeries(days: 30) { day costUsd requests } }`);
    const spendingDays = pool.filter((p: { costUsd: string }) => Number(p.costUsd) > 0);
    expect(spendingDays.length).toBeGreaterThanOrEqual(28);
    const { managedKeys } = await gql(admin, KEY_LIST);
    for (const { node } of managedKeys.edges) {
      const { spendSeries } = await gql(admin, `query($id: ID) { spendSeries(days: 30, keyId: $id) { costUsd } }`, {
        id: node.id,
      });
      expect(
        spendSeries.filter((p: { costUsd: string }) => Number(p.costUsd) > 0).length,
        node.label,
      ).toBeGreaterThanOrEqual(5);
    }
    const { poolSummary } = await gql(admin, `{ poolSummary { nearLimitShare keysNearLimit { label } } }`);
    expect(poolSummary.keysNearLimit.map((k: { label: string }) => k.label)).toContain('venice-pool');
  });

  it('the history has every ending: released, revoked, expired and suspended leases', async () => {
    for (const status of ['RELEASED', 'REVOKED', 'EXPIRED']) {
      const { leases: found } = await gql(
        admin,
        `query($status: LeaseStatus) { leases(status: $status, first: 1) { totalCount } }`,
        { status },
      );
      expect(found.totalCount, status).toBeGreaterThan(0);
    }
    // A suspended lease past its time has since expired: its suspension is in the event log.
    const { recentLeaseEvents: suspensions } = await gql(
      admin,
      `{ recentLeaseEvents(types: [SUSPENDED], first: 1) { type details } }`,
      {},
    );
    expect(suspensions).toEqual([
      { type: 'SUSPENDED', details: expect.objectContaining({ reason: 'spend cap reached' }) },
    ]);
  });

  it('agents take leases, send metered requests through the proxy, and leases end while it runs', async () => {
    const agentIds = new Set(AGENTS.slice(0, AGENT_COUNT).map((a) => a.agentId));
    await expect
      .poll(async () => (await leases()).filter((l) => isNew(l.grantedAt) && agentIds.has(l.agentId ?? '')).length, {
        timeout: 20_000,
        interval: 1000,
      })
      .toBeGreaterThanOrEqual(3);
    // The proxy meters each request with the provider's cost (OpenRouter, Venice) or the key's prices.
    const proxied = async () => {
      const live = (await leases()).filter((l) => isNew(l.grantedAt));
      let records: { at: string; costSource: string; costUsd: string }[] = [];
      for (const lease of live) {
        const { usageRecords } = await gql(
          admin,
          `query($id: ID) { usageRecords(leaseId: $id, first: 200) { edges { node { at costSource costUsd } } } }`,
          { id: lease.id },
        );
        records = records.concat(usageRecords.edges.map((e: { node: (typeof records)[number] }) => e.node));
      }
      return records;
    };
    await expect
      .poll(async () => new Set((await proxied()).map((r) => r.costSource)), { timeout: 20_000, interval: 1000 })
      .toEqual(new Set(['PROVIDER', 'PRICE']));
    const records = await proxied();
    // Every request priced (an embedding can cost less than the ledger's micro-dollar: its record
    // reads 0 but still says where its price came from).
    expect(records.every((r) => isNew(r.at) && (r.costSource === 'PROVIDER' || r.costSource === 'PRICE'))).toBe(true);
    expect(records.reduce((sum, r) => sum + Number(r.costUsd), 0)).toBeGreaterThan(0);
    // Today's last backfilled leases run out seconds after the demo goes live; agents release theirs.
    await expect
      .poll(async () => (await leases()).filter((l) => isNew(l.endedAt)).length, { timeout: 20_000, interval: 1000 })
      .toBeGreaterThanOrEqual(1);
    expect(lines.some((line) => /^\[[\w-]+\] (FREE|PRO|ENTERPRISE) lease on /.test(line))).toBe(true);
  }, 70_000);

  it("the minting key's leases get provider keys of their own: minted, used, deleted when they end", async () => {
    const { managedKeys } = await gql(admin, KEY_LIST);
    const minting = managedKeys.edges.find((e: { node: { mode: string } }) => e.node.mode === 'MINT').node;
    const mintedLeases = async () =>
      (
        await gql<{ leases: { edges: { node: MintedLease }[] } }>(admin, MINTED_LEASES, { keyId: minting.id })
      ).leases.edges.map((e) => e.node);
    const atProvider = (lease: MintedLease) => demo!.keyAdmin.keys.get(lease.mintedKey?.providerKeyId ?? '');

    // The history: every lease on the key had its own key at the fake's key-management API, charged
    // what MPK metered on the lease, and deleted once the lease ended.
    const history = (await mintedLeases()).filter((l) => l.endedAt !== null && !isNew(l.endedAt));
    expect(history.length).toBeGreaterThanOrEqual(5);
    for (const lease of history) {
      expect(lease.mintedKey, lease.id).toMatchObject({
        status: 'DELETED',
        providerKeyId: expect.any(String),
        maskedKey: expect.stringMatching(/^sk-or-/),
      });
      const made = atProvider(lease);
      expect(made?.name, lease.id).toBe(`mpk-lease-${lease.id}`);
      expect(made?.deletedAt, lease.id).not.toBeNull();
      expect(made?.usageUsd, lease.id).toBeCloseTo(Number(lease.usageUsd), 6);
    }
    expect(history.some((l) => l.requestCount > 0)).toBe(true);

    // Live: an agent's lease on it is answered through the proxy with its minted key, which the
    // fake charges; and leases that end while the demo runs have their keys deleted too. With six
    // agents the OpenRouter leases are grace-analyst's (600 s) and ada's (FREE: one at a time, at
    // its $0.10 cap within about half a minute); MPK gives each new one the key with the fewest
    // active leases, so ada's alternate between the two keys grace's does not hold, and the
    // minting key has a live lease by ada's second one at the latest: a minute and a half or more
    // when the machine is busy (CI runs the other test files beside this one).
    await expect
      .poll(
        async () =>
          (await mintedLeases()).some(
            (l) => isNew(l.grantedAt) && l.mintedKey?.status === 'ACTIVE' && (atProvider(l)?.usageUsd ?? 0) > 0,
          ),
        { timeout: 150_000, interval: 1000 },
      )
      .toBe(true);
    await expect
      .poll(
        async () =>
          (await mintedLeases())
            .filter((l) => l.endedAt !== null)
            // (a lease that ended before its key was made has none to delete)
            .every(
              (l) =>
                l.mintedKey?.status === 'DELETED' &&
                (l.mintedKey.providerKeyId === null || atProvider(l)?.deletedAt != null),
            ),
        { timeout: 30_000, interval: 500 },
      )
      .toBe(true);
    const { providerJobs } = await gql(
      admin,
      `query($keyId: ID) { providerJobs(keyId: $keyId, status: IRRECOVERABLE) { totalCount } }`,
      { keyId: minting.id },
    );
    expect(providerJobs.totalCount).toBe(0);
    expect(lines.some((line) => /lease on openrouter-minting with its own minted key sk-or-/.test(line))).toBe(true);
  }, 200_000);

  it("asks the providers' own figures: OpenRouter's GET /key and Venice's balance", async () => {
    await expect
      .poll(
        async () => {
          const { managedKeys } = await gql(admin, KEY_LIST);
          return managedKeys.edges.map((e: { node: { label: string; providerUsage: unknown } }) => [
            e.node.label,
            e.node.providerUsage,
          ]);
        },
        { timeout: 10_000 },
      )
      .toEqual(
        expect.arrayContaining([
          ['openrouter-main', expect.objectContaining({ usageTodayUsd: expect.any(String), error: null })],
          ['venice-pool', expect.objectContaining({ balanceUsd: expect.any(String), error: null })],
        ]),
      );
  });

  it('stops cleanly: agents, then MPK, then the fake provider', async () => {
    const { url, fake } = demo!;
    await demo!.stop();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    await expect(fetch(`${fake.url}/models`)).rejects.toThrow();
    demo = undefined;
  }, 30_000);

  it('refuses to wipe a folder it did not make', async () => {
    const foreign = await mkdtemp(path.join(os.tmpdir(), 'mpk-not-demo-'));
    try {
      await writeFile(path.join(foreign, 'precious.txt'), 'keep me');
      await expect(
        startDemo({ port: 0, host: '127.0.0.1', dataDir: foreign, agents: 0, log: () => {} }),
      ).rejects.toThrow(/refusing to wipe/);
      expect(await readdir(foreign)).toEqual(['precious.txt']);
    } finally {
      await rm(foreign, { recursive: true, force: true });
    }
  });
});

describe('the fake provider stays out of the server', () => {
  /** Every import specifier of a source file: static, re-exported and dynamic. */
  const importsOf = (source: string) =>
    [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);

  // Tests beside the server's code may use the fake (that is what it is for); the server may not,
  // neither directly nor through tests/ or bench/, which use it.
  it('no server source imports anything from demo/ (nor from tests/ or bench/)', async () => {
    const files = (await readdir(path.join(root, 'server'), { recursive: true })).filter(
      (f) => /\.(ts|tsx|js|mjs)$/.test(f) && !/\.test\.ts$/.test(f),
    );
    expect(files.length).toBeGreaterThan(20);
    const offenders: string[] = [];
    for (const file of files) {
      const absolute = path.join(root, 'server', file);
      for (const specifier of importsOf(await readFile(absolute, 'utf8'))) {
        const target = specifier.startsWith('.')
          ? path.relative(root, path.resolve(path.dirname(absolute), specifier))
          : specifier;
        if (['demo', 'tests', 'bench'].includes(target.split(path.sep)[0]!))
          offenders.push(`server/${file} imports ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('the scan would catch such an import', () => {
    expect(
      importsOf(
        `import { startFakeUpstream } from '../../demo/fake-provider.js';\nconst m = await import("../demo/run.js");`,
      ),
    ).toEqual(['../../demo/fake-provider.js', '../demo/run.js']);
  });
});
