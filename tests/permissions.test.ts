// The role table (server/auth/permissions.ts) is the one list of who may call what. This test
// holds the schema and the server to it: every operation in schema.graphql has a row; and every
// operation, called by every role, succeeds for the roles its row names, is FORBIDDEN for the
// others, and UNAUTHENTICATED without a token. Adding an operation without a row, or a sample
// call here, fails the test.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { buildSchema, type GraphQLObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Operation, PERMISSIONS } from '../server/auth/permissions.js';
import type { Role } from '../server/core/identity.js';
import { codeOf, createKey, disableKeys, ok, Q, requestLease } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';
import { collect, settle, wsClient } from './support/ws.js';

const ROLES: Role[] = ['ADMIN', 'OBSERVER', 'USER', 'WORKER'];

interface Call {
  query: string;
  variables?: Record<string, unknown>;
}

let server: TestServer;
let tokens: Record<Role, string>;
const sub = (role: Role) => `matrix-${role.toLowerCase()}`;

/** A fresh ACTIVE lease of the role's own user (for USER calls), or of a tenant's. */
async function leaseFor(role: Role): Promise<string> {
  const owner = role === 'USER' ? sub('USER') : `tenant-${randomUUID().slice(0, 8)}`;
  ok(await server.gql(Q.setTier, { userId: owner, tier: 'ENTERPRISE' }, tokens.ADMIN), 'setUserTier');
  return (await requestLease(server, await server.token('USER', owner))).id as string;
}

const freshKey = async () =>
  (await createKey(server, tokens.ADMIN, { label: `matrix-${randomBytes(3).toString('hex')}` })).id;

/** What a refused call must leave as it was: every table's rows and their last change. */
async function digest(): Promise<string> {
  const tables = [
    'ManagedKey',
    'Lease',
    'User',
    'TierPolicy',
    'AuditEntry',
    'LeaseEvent',
    'UsageRecord',
    'ProviderJob',
  ];
  const digests = tables.map(
    (t) => `(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM "${t}" x) AS "${t}"`,
  );
  const rows = await server.app.db.$queryRawUnsafe<Record<string, unknown>[]>(`SELECT ${digests.join(', ')}`);
  return JSON.stringify(rows[0]);
}

/** A provider job that failed for good, on a lease of the role's (the only thing retryProviderJob takes). */
async function irrecoverableJob(role: Role): Promise<string> {
  const leaseId = await leaseFor(role);
  const lease = await server.app.db.lease.findUniqueOrThrow({ where: { id: leaseId } });
  const now = new Date();
  const minted = await server.app.db.mintedKey.create({
    // Already deleted: a retried run finishes without calling any provider.
    data: {
      id: randomUUID(),
      leaseId,
      mintingKeyId: lease.keyId,
      name: `mpk-lease-${leaseId}`,
      status: 'DELETED',
      expiresAt: lease.expiresAt,
      createdAt: now,
    },
  });
  const job = await server.app.db.providerJob.create({
    data: {
      kind: 'DELETE',
      mintedKeyId: minted.id,
      leaseId,
      mintingKeyId: lease.keyId,
      status: 'IRRECOVERABLE',
      attempts: 8,
      runAfter: now,
      createdAt: now,
    },
  });
  return String(job.id);
}

/** One valid call per operation, for a given role (fixtures made for it, so that only the role decides). */
const SAMPLES: Record<Exclude<Operation, `${string}.${string}`>, (role: Role) => Promise<Call>> = {
  me: async () => ({ query: '{ me { id } }' }),
  tierPolicies: async () => ({ query: Q.policies }),
  managedKeys: async () => ({ query: '{ managedKeys(first: 1) { totalCount } }' }),
  managedKey: async () => ({
    query: 'query($id: ID!) { managedKey(id: $id) { id } }',
    variables: { id: await freshKey() },
  }),
  leases: async () => ({ query: '{ leases(first: 1) { totalCount } }' }),
  lease: async (role) => ({
    query: 'query($id: ID!) { lease(id: $id) { id } }',
    variables: { id: await leaseFor(role) },
  }),
  recentLeaseEvents: async () => ({ query: '{ recentLeaseEvents(first: 1) { type } }' }),
  usageRecords: async (role) => ({
    query: 'query($id: ID) { usageRecords(leaseId: $id) { totalCount } }',
    variables: { id: await leaseFor(role) },
  }),
  users: async () => ({ query: '{ users(first: 1) { totalCount } }' }),
  auditLog: async () => ({ query: '{ auditLog(first: 1) { totalCount } }' }),
  poolSummary: async () => ({ query: '{ poolSummary { spendTodayUsd } }' }),
  spendSeries: async () => ({ query: '{ spendSeries(days: 2) { day } }' }),
  resolveLease: async (role) => ({
    query: 'query($id: ID) { resolveLease(leaseId: $id) { model } }',
    variables: { id: await leaseFor(role) },
  }),
  createManagedKey: async () => ({
    query: Q.createKey,
    variables: {
      input: { provider: 'OPENROUTER', label: 'matrix-made', apiKey: `sk-or-v1-${randomBytes(12).toString('hex')}` },
    },
  }),
  updateManagedKey: async () => ({
    query: 'mutation($id: ID!) { updateManagedKey(id: $id, input: { label: "renamed" }) { id } }',
    variables: { id: await freshKey() },
  }),
  disableManagedKey: async () => ({ query: Q.disableKey, variables: { id: await freshKey() } }),
  enableManagedKey: async () => ({
    query: 'mutation($id: ID!) { enableManagedKey(id: $id) { id } }',
    variables: { id: await freshKey() },
  }),
  rotateManagedKeySecret: async () => ({
    query: 'mutation($id: ID!, $k: String!) { rotateManagedKeySecret(id: $id, apiKey: $k) { id } }',
    variables: { id: await freshKey(), k: `sk-or-v1-${randomBytes(12).toString('hex')}` },
  }),
  requestLease: async () => ({ query: Q.request, variables: { input: { agentId: `matrix-${randomUUID()}` } } }),
  releaseLease: async (role) => ({ query: Q.release, variables: { id: await leaseFor(role) } }),
  extendLease: async (role) => ({ query: Q.extend, variables: { id: await leaseFor(role), by: 60 } }),
  revokeLease: async (role) => ({ query: Q.revoke, variables: { id: await leaseFor(role) } }),
  updateLeaseCap: async (role) => ({
    query: 'mutation($id: ID!) { updateLeaseCap(id: $id, spendCapUsd: "9") { id } }',
    variables: { id: await leaseFor(role) },
  }),
  setUserTier: async () => ({ query: Q.setTier, variables: { userId: `tiered-${randomUUID()}`, tier: 'PRO' } }),
  updateTierPolicy: async () => ({
    query: Q.updatePolicy,
    variables: { tier: 'ENTERPRISE', input: { maxActiveLeases: 10_000 } },
  }),
  reportUsage: async (role) => ({
    query: 'mutation($i: ReportUsageInput!) { reportUsage(input: $i) { duplicate } }',
    variables: { i: { leaseId: await leaseFor(role), requestId: randomUUID(), costUsd: '0.01' } },
  }),
  providerJobs: async () => ({ query: '{ providerJobs(first: 1) { totalCount } }' }),
  retryProviderJob: async (role) => ({
    query: 'mutation($id: ID!) { retryProviderJob(id: $id) { id status } }',
    variables: { id: await irrecoverableJob(role) },
  }),
  leaseEvents: async () => ({ query: 'subscription { leaseEvents { type } }' }),
  keyUsage: async () => ({ query: 'subscription { keyUsage { activeLeaseCount } }' }),
};

beforeAll(async () => {
  server = await startTestServer({ scheduler: false });
  tokens = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, await server.token(r, sub(r))]))) as Record<
    Role,
    string
  >;
  await disableKeys(server);
  await createKey(server, tokens.ADMIN, { label: 'matrix-pool' });
  ok(await server.gql(Q.setTier, { userId: sub('USER'), tier: 'ENTERPRISE' }, tokens.ADMIN), 'setUserTier');
  ok(await server.gql(Q.setTier, { userId: sub('ADMIN'), tier: 'ENTERPRISE' }, tokens.ADMIN), 'setUserTier');
  ok(
    await server.gql(Q.updatePolicy, { tier: 'ENTERPRISE', input: { maxActiveLeases: 10_000 } }, tokens.ADMIN),
    'updateTierPolicy',
  );
});
afterAll(async () => server?.close());

describe('the role table', () => {
  it('has a row for every operation in schema.graphql, and none for an operation that does not exist', async () => {
    const schema = buildSchema(await readFile(new URL('../schema.graphql', import.meta.url), 'utf8'));
    const operations = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((type) =>
      Object.keys((type as GraphQLObjectType).getFields()),
    );
    const rows = Object.keys(PERMISSIONS).filter((name) => !name.includes('.'));
    expect(
      operations.filter((op) => !rows.includes(op)),
      'operations without a row',
    ).toEqual([]);
    expect(
      rows.filter((row) => !operations.includes(row)),
      'rows without an operation',
    ).toEqual([]);
    expect(Object.keys(SAMPLES).sort(), 'a sample call per operation').toEqual([...operations].sort());
  });

  it.each(Object.keys(SAMPLES).filter((op) => !['leaseEvents', 'keyUsage'].includes(op)))(
    '%s: allowed roles succeed, others are refused',
    async (op) => {
      const operation = op as keyof typeof SAMPLES;
      const allowed = PERMISSIONS[operation] as readonly Role[];
      for (const role of [...ROLES, null]) {
        const call = await SAMPLES[operation](role ?? 'ADMIN');
        const before = await digest();
        const res = await server.gql(call.query, call.variables, role && tokens[role]);
        const outcome = res.errors ? `${codeOf(res)}: ${res.errors[0]!.message}` : 'ALLOWED';
        const expected =
          role === null
            ? 'UNAUTHENTICATED: Authentication required'
            : allowed.includes(role)
              ? 'ALLOWED'
              : `FORBIDDEN: Role ${role} may not do this`;
        expect(`${op} as ${role ?? 'anonymous'}: ${outcome}`).toBe(`${op} as ${role ?? 'anonymous'}: ${expected}`);
        if (outcome !== 'ALLOWED') {
          // Refused: no answer, and nothing changed.
          expect(res.data?.[op] ?? null).toBeNull();
          expect(await digest(), `${op} as ${role ?? 'anonymous'} changed nothing`).toBe(before);
        }
      }
    },
  );

  it.each(['leaseEvents', 'keyUsage'] as const)(
    '%s (subscription): allowed roles are served, others refused',
    async (op) => {
      const call = await SAMPLES[op]('ADMIN');
      for (const role of [...ROLES, null]) {
        const client = wsClient(server.url, role && tokens[role]);
        try {
          const stream = collect(client, call.query);
          await settle(300);
          const codes = stream.errors.map(
            (e) => (e as { extensions?: { code?: string } }).extensions?.code ?? String(e),
          );
          const expected =
            role === null
              ? ['UNAUTHENTICATED']
              : (PERMISSIONS[op] as readonly Role[]).includes(role)
                ? []
                : ['FORBIDDEN'];
          expect(codes, `${op} as ${role ?? 'anonymous'}`).toEqual(expected);
          stream.dispose();
        } finally {
          await client.dispose();
        }
      }
    },
  );

  it('Lease.key: a user reads their lease, but not the key behind it', async () => {
    const id = await leaseFor('USER');
    const res = await server.gql(Q.lease, { id }, tokens.USER);
    expect(res.data.lease.id).toBe(id);
    expect(res.errors?.[0]).toMatchObject({ path: ['lease', 'key'], extensions: { code: 'FORBIDDEN' } });
    for (const role of ['ADMIN', 'OBSERVER', 'WORKER'] as const)
      expect((await server.gql(Q.lease, { id }, tokens[role])).errors).toBeUndefined();
  });
});
