// The domain tests' shared set-up over GraphQL: operation documents, keys, users and their
// leases, usage reports, and calls through the metering proxy. Every helper that takes a
// `GraphQLServer` works on a server in this process (startTestServer) or in its own
// (startServerProcess).
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { GraphQLServer } from './graphql.js';
import type { TestServer } from './server.js';

export const LEASE_FIELDS = `id status tier provider framework agentId grantedAt expiresAt endedAt endReason usageUsd
  requestCount lastUsedAt spendCapUsd user { id tier activeLeaseCount }`;

export const Q = {
  createKey: `mutation($input: CreateManagedKeyInput!) {
    createManagedKey(input: $input) { id activeLeaseCount status } }`,
  key: `query($id: ID!) { managedKey(id: $id) { id activeLeaseCount status lastUsedAt spendTodayUsd } }`,
  request: `mutation($input: RequestLeaseInput!) { requestLease(input: $input) { ${LEASE_FIELDS} } }`,
  release: `mutation($id: ID!) { releaseLease(id: $id) { ${LEASE_FIELDS} } }`,
  revoke: `mutation($id: ID!, $reason: String) { revokeLease(id: $id, reason: $reason) { ${LEASE_FIELDS} } }`,
  extend: `mutation($id: ID!, $by: Int!, $re: Boolean) {
    extendLease(id: $id, bySeconds: $by, reactivate: $re) { ${LEASE_FIELDS} } }`,
  disableKey: `mutation($id: ID!, $reason: String) {
    disableManagedKey(id: $id, reason: $reason) { id status disabledReason activeLeaseCount } }`,
  updateCap: `mutation($id: ID!, $cap: Decimal!) {
    updateLeaseCap(id: $id, spendCapUsd: $cap) { id status spendCapUsd endReason } }`,
  lease: `query($id: ID!) { lease(id: $id) { ${LEASE_FIELDS} key { id } } }`,
  leases: `query($first: Int, $after: String, $status: LeaseStatus, $keyId: ID, $userId: ID, $agentId: String) {
    leases(first: $first, after: $after, status: $status, keyId: $keyId, userId: $userId, agentId: $agentId) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status agentId user { id } } } } }`,
  me: `{ me { id tier activeLeaseCount } }`,
  policies: `{ tierPolicies { tier leaseDurationSeconds maxActiveLeases spendCapUsd } }`,
  updatePolicy: `mutation($tier: Tier!, $input: TierPolicyInput!) {
    updateTierPolicy(tier: $tier, input: $input) { tier leaseDurationSeconds maxActiveLeases spendCapUsd } }`,
  setTier: `mutation($userId: ID!, $tier: Tier!) { setUserTier(userId: $userId, tier: $tier) { id tier } }`,
  resolve: `query($leaseId: ID, $agentId: String, $userId: ID) {
    resolveLease(leaseId: $leaseId, agentId: $agentId, userId: $userId) {
    apiKey baseUrl model fallbackModels agentConfig env lease { id status lastUsedAt } } }`,
  report: `mutation($input: ReportUsageInput!) {
    reportUsage(input: $input) { duplicate lease { id status usageUsd requestCount } } }`,
};

export const providerSecret = (tag = 'k') => `sk-or-v1-${tag}-${randomBytes(12).toString('hex')}`;

/** Data of a successful operation; fails the test with the errors otherwise. */
export function ok<T = any>(res: { data: any; errors?: unknown[] }, field: string): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data[field] as T;
}

export const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;

export async function createKey(
  server: Pick<GraphQLServer, 'gql'>,
  admin: string,
  input: Record<string, unknown> = {},
) {
  const res = await server.gql(
    Q.createKey,
    { input: { provider: 'OPENROUTER', label: 'pool', apiKey: providerSecret(), ...input } },
    admin,
  );
  expect(res.errors).toBeUndefined();
  return res.data.createManagedKey as { id: string };
}

/**
 * A MINT key whose management secret is `fake`'s admin key, at `fake`'s URL: a fake key-management
 * API (demo/fake-key-admin.ts) served by a fake upstream. `input` adds or overrides fields.
 */
export const createMintingKey = (
  server: Pick<GraphQLServer, 'gql'>,
  admin: string,
  fake: { provider: 'OPENROUTER' | 'VENICE'; adminKey: string; url: string },
  input: Record<string, unknown> = {},
) =>
  createKey(server, admin, {
    provider: fake.provider,
    label: `minting-${fake.provider.toLowerCase()}`,
    apiKey: fake.adminKey,
    baseUrl: fake.url,
    defaultModel: 'fake-model',
    mode: 'MINT',
    ...input,
  });

/** Every key steps aside (DISABLED) but `keep`, so that a test builds the pool it needs. */
export async function disableKeys(server: TestServer, keep?: string) {
  await server.app.db.managedKey.updateMany({ where: keep ? { id: { not: keep } } : {}, data: { status: 'DISABLED' } });
}

export interface NewUserOptions {
  /** How its sub starts (`u` unless given): `<prefix>-<8 random characters>`. */
  prefix?: string;
  /** Set by `admin` when it is not FREE, the tier every new user starts on. */
  tier?: 'FREE' | 'PRO' | 'ENTERPRISE';
  admin?: string;
  /** The token carries the email `<sub>@example.com`. */
  withEmail?: boolean;
}

/** A user the server has not seen: a fresh sub and its token. */
export async function newUser(server: GraphQLServer, options: NewUserOptions = {}) {
  const sub = `${options.prefix ?? 'u'}-${randomUUID().slice(0, 8)}`;
  const token = await server.token('USER', sub, options.withEmail ? { email: `${sub}@example.com` } : {});
  if (options.tier && options.tier !== 'FREE') {
    if (!options.admin) throw new Error(`newUser: setting the tier ${options.tier} needs an admin's token`);
    ok(await server.gql(Q.setTier, { userId: sub, tier: options.tier }, options.admin), 'setUserTier');
  }
  return { sub, token };
}

/** `token`'s requestLease with `input`; fails the test unless the lease is granted. */
export const requestLease = async (server: GraphQLServer, token: string, input: Record<string, unknown> = {}) =>
  ok(await server.gql(Q.request, { input }, token), 'requestLease');

/** A lease granted to a new user (see `newUser`). */
export const leaseForNewUser = async (
  server: GraphQLServer,
  input: Record<string, unknown> = {},
  user: NewUserOptions = {},
) => requestLease(server, (await newUser(server, user)).token, input);

export interface UsageInput {
  leaseId: string;
  costUsd: string;
  /** A fresh one unless given. */
  requestId?: string;
  model?: string | null;
  promptTokens?: number;
  completionTokens?: number;
}

/** `worker` reports usage on a lease: the response, for `ok` or `codeOf`. */
export const reportUsage = (server: GraphQLServer, worker: string, input: UsageInput) =>
  server.gql(Q.report, { input: { ...input, requestId: input.requestId ?? randomUUID() } }, worker);

/** A new user's lease resolved by `worker`: the token and base URL the agent is handed. */
export async function resolvedLease(
  server: GraphQLServer,
  worker: string,
  input: Record<string, unknown>,
  user: NewUserOptions = {},
) {
  const lease = await leaseForNewUser(server, input, user);
  const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
  return { lease, token: resolved.apiKey as string, baseUrl: resolved.baseUrl as string };
}

/**
 * A lease served by the metering proxy: a key on `keyInput.baseUrl` made the only active one, a new
 * user's lease on it, and what resolveLease hands the agent (the lease token and the proxy's URL).
 * The key is OPENAI_COMPATIBLE unless `keyInput.provider` says otherwise.
 */
export async function proxiedLease(
  server: TestServer,
  admin: string,
  worker: string,
  keyInput: Record<string, unknown>,
) {
  await disableKeys(server);
  return leaseOnNewKey(server, admin, worker, keyInput);
}

/**
 * Like `proxiedLease`, on a server of any kind (a process too) whose pool holds no other key that
 * could be chosen: the new key, a new user's lease on it, and the token and URL the agent is handed.
 */
export async function leaseOnNewKey(
  server: GraphQLServer,
  admin: string,
  worker: string,
  keyInput: Record<string, unknown>,
) {
  const provider = keyInput.provider ?? 'OPENAI_COMPATIBLE';
  const key = await createKey(server, admin, { provider, defaultModel: 'fake-model', ...keyInput });
  return {
    key,
    ...(await resolvedLease(server, worker, { provider, framework: 'GENERIC' }, { prefix: 'proxied' })),
  };
}

/**
 * A call to an OpenAI-style API (the metering proxy, or the fake provider directly): POST with a JSON
 * body, else GET.
 */
export const callProvider = (baseUrl: string, token: string, path: string, body?: object, init: RequestInit = {}) =>
  fetch(`${baseUrl}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
    ...init,
  });

/** A chat completion of the fake model: its HTTP status, once the answer is read. */
export async function completionStatus(baseUrl: string, token: string, messages: object[] = []) {
  const res = await callProvider(baseUrl, token, '/chat/completions', { model: 'fake-model', messages });
  await res.text();
  return res.status;
}

/**
 * Proxied load until stopped: `clients` loops of chat completions on a lease. `served` maps each
 * request answered 200 (its x-mpk-request-id) to when the answer arrived; `statuses` counts the
 * answers by status, and failed requests as 'network'. A refused request waits 20 ms to go again.
 */
export function proxiedLoad(baseUrl: string, token: string, clients = 8) {
  const served = new Map<string, number>();
  const statuses = new Map<number | 'network', number>();
  const count = (status: number | 'network') => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const res = await callProvider(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
        await res.arrayBuffer();
        count(res.status);
        if (res.status === 200) served.set(res.headers.get('x-mpk-request-id')!, Date.now());
        else await new Promise((r) => setTimeout(r, 20));
      } catch {
        count('network');
      }
    }
  };
  const loops = Array.from({ length: clients }, loop);
  return {
    served,
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
