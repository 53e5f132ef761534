// Shared set-up of the framework tests: a key of each provider on a local fake upstream, served
// through MPK's metering proxy (PROXY delivery, the default), a new user's lease on it for one
// framework, and what resolveLease renders for the agent.
import { expect } from 'vitest';
import type { FakeUpstream } from '../../demo/fake-provider.js';
import { createKey, disableKeys, leaseForNewUser, ok, Q } from '../support/fixtures.js';
import type { TestServer } from '../support/server.js';

export const PROVIDERS = ['OPENROUTER', 'VENICE', 'OPENAI_COMPATIBLE'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Model ids in each provider's style; SMALL is the last fallback. */
export const MODELS: Record<ProviderName, { model: string; fallbackModels: string[] }> = {
  OPENROUTER: { model: 'anthropic/claude-sonnet-4', fallbackModels: ['openai/gpt-4o', 'openai/gpt-4o-mini'] },
  VENICE: { model: 'llama-3.3-70b', fallbackModels: ['qwen3-4b'] },
  OPENAI_COMPATIBLE: { model: 'local-large', fallbackModels: ['local-small'] },
};

export interface Resolved {
  apiKey: string;
  baseUrl: string;
  model: string;
  fallbackModels: string[];
  agentConfig: Record<string, unknown>;
  env: Record<string, string>;
  lease: { id: string };
}

/**
 * The only active key: `provider`'s, with `upstreamKey` as its secret and the fake upstream as its
 * base URL; a new user's `framework` lease on it, resolved by `worker`.
 */
export async function frameworkLease(
  server: TestServer,
  tokens: { admin: string; worker: string },
  input: { framework: 'OPENCLAW' | 'ELIZA'; provider: ProviderName; upstreamUrl: string; upstreamKey: string },
): Promise<Resolved> {
  await disableKeys(server);
  const { model, fallbackModels } = MODELS[input.provider];
  await createKey(server, tokens.admin, {
    provider: input.provider,
    label: `${input.framework.toLowerCase()}-${input.provider.toLowerCase()}`,
    apiKey: input.upstreamKey,
    baseUrl: input.upstreamUrl,
    defaultModel: model,
    fallbackModels,
  });
  const lease = await leaseForNewUser(server, { framework: input.framework, provider: input.provider });
  const resolved = ok<Resolved>(await server.gql(Q.resolve, { leaseId: lease.id }, tokens.worker), 'resolveLease');
  // PROXY delivery: the agent gets a lease token and MPK's proxy, never the provider's key.
  expect(resolved.baseUrl).toBe(`${server.url}/v1`);
  expect(resolved.apiKey).toMatch(/^mpk_lt_/);
  return resolved;
}

/** The ledger rows of a lease, once `count` of them have been written (the proxy meters after answering). */
export async function meteredRows(server: TestServer, leaseId: string, count: number) {
  const rows = () => server.app.db.usageRecord.findMany({ where: { leaseId }, orderBy: { id: 'asc' } });
  await expect.poll(async () => (await rows()).length, { timeout: 10_000 }).toBe(count);
  return rows();
}

/** What reached the upstream with a model in it: route, model and the key it was sent with. */
export const upstreamCalls = (upstream: FakeUpstream) =>
  upstream.bodies
    .map((body, i) => ({ body, path: upstream.paths[i], authorization: upstream.authorizations[i] }))
    .filter(({ body }) => typeof body.model === 'string')
    .map(({ body, path, authorization }) => ({ path, model: body.model, authorization }));

/** Forgets what the upstream received, so that `upstreamCalls` sees one test's calls only. */
export function forgetUpstreamCalls(upstream: FakeUpstream) {
  upstream.bodies.length = 0;
  upstream.paths.length = 0;
  upstream.authorizations.length = 0;
}
