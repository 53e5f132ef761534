// Small helpers shared by the domain tests: GraphQL documents and key/lease set-up over HTTP.
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestServer } from './server.js';

export const LEASE_FIELDS = `id status tier provider framework agentId grantedAt expiresAt endedAt endReason usageUsd requestCount
  lastUsedAt spendCapUsd user { id tier activeLeaseCount }`;

export const Q = {
  createKey: `mutation($input: CreateManagedKeyInput!) { createManagedKey(input: $input) { id activeLeaseCount status } }`,
  key: `query($id: ID!) { managedKey(id: $id) { id activeLeaseCount status lastUsedAt spendTodayUsd } }`,
  request: `mutation($input: RequestLeaseInput!) { requestLease(input: $input) { ${LEASE_FIELDS} } }`,
  release: `mutation($id: ID!) { releaseLease(id: $id) { ${LEASE_FIELDS} } }`,
  revoke: `mutation($id: ID!, $reason: String) { revokeLease(id: $id, reason: $reason) { ${LEASE_FIELDS} } }`,
  extend: `mutation($id: ID!, $by: Int!, $re: Boolean) { extendLease(id: $id, bySeconds: $by, reactivate: $re) { ${LEASE_FIELDS} } }`,
  disableKey: `mutation($id: ID!, $reason: String) { disableManagedKey(id: $id, reason: $reason) { id status disabledReason activeLeaseCount } }`,
  lease: `query($id: ID!) { lease(id: $id) { ${LEASE_FIELDS} key { id } } }`,
  leases: `query($first: Int, $after: String, $status: LeaseStatus, $keyId: ID, $userId: ID, $agentId: String) {
    leases(first: $first, after: $after, status: $status, keyId: $keyId, userId: $userId, agentId: $agentId) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status agentId user { id } } } } }`,
  me: `{ me { id tier activeLeaseCount } }`,
  policies: `{ tierPolicies { tier leaseDurationSeconds maxActiveLeases spendCapUsd } }`,
  updatePolicy: `mutation($tier: Tier!, $input: TierPolicyInput!) { updateTierPolicy(tier: $tier, input: $input) { tier leaseDurationSeconds maxActiveLeases spendCapUsd } }`,
  setTier: `mutation($userId: ID!, $tier: Tier!) { setUserTier(userId: $userId, tier: $tier) { id tier } }`,
  resolve: `query($leaseId: ID, $agentId: String) { resolveLease(leaseId: $leaseId, agentId: $agentId) {
    apiKey baseUrl model fallbackModels agentConfig env lease { id status lastUsedAt } } }`,
};

export const providerSecret = (tag = 'k') => `sk-or-v1-${tag}-${randomBytes(12).toString('hex')}`;

export async function createKey(server: TestServer, admin: string, input: Record<string, unknown> = {}) {
  const res = await server.gql(Q.createKey, { input: { provider: 'OPENROUTER', label: 'pool', apiKey: providerSecret(), ...input } }, admin);
  expect(res.errors).toBeUndefined();
  return res.data.createManagedKey as { id: string };
}

/**
 * A lease served by the metering proxy: a key on `keyInput.baseUrl` made the only active one, a new
 * user's lease on it, and what resolveLease hands the agent (the lease token and the proxy's URL).
 */
export async function proxiedLease(server: TestServer, admin: string, worker: string, keyInput: Record<string, unknown>) {
  await server.app.db.managedKey.updateMany({ data: { status: 'DISABLED' } });
  const key = await createKey(server, admin, { provider: 'OPENAI_COMPATIBLE', defaultModel: 'fake-model', ...keyInput });
  const user = await server.token('USER', `proxied-${randomBytes(4).toString('hex')}`);
  const lease = ok(await server.gql(Q.request, { input: { provider: 'OPENAI_COMPATIBLE', framework: 'GENERIC' } }, user), 'requestLease');
  const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
  return { key, lease, token: resolved.apiKey as string, baseUrl: resolved.baseUrl as string };
}

/** Data of a successful operation; fails the test with the errors otherwise. */
export function ok<T = any>(res: { data: any; errors?: unknown[] }, field: string): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data[field] as T;
}

export const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;
