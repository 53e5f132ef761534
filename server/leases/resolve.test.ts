// Worker resolution: the rendered config for each framework, and every refusal.
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import { codeOf, createKey, disableKeys, leaseForNewUser, ok, Q } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';
import { deepMerge } from './renderers.js';

const clock = createManualClock('2026-05-01T08:00:00.000Z');
const SECRET = 'sk-or-v1-RESOLVE-0123456789abcdef';
let server: TestServer;
let admin: string;
let worker: string;

async function leaseFor(framework: string, keyInput: Record<string, unknown> = {}, agentId?: string) {
  await disableKeys(server);
  const key = await createKey(server, admin, { apiKey: SECRET, ...keyInput });
  const lease = await leaseForNewUser(server, { framework, provider: keyInput.provider ?? 'OPENROUTER', agentId });
  return { key, lease };
}

/** The response with the secret replaced, so the expected shapes can be written down. */
const redact = (value: unknown) => JSON.parse(JSON.stringify(value).replaceAll(SECRET, '<API_KEY>'));

withTestServer({ clock, roles: 'r' }, (s) => ({ server, admin, worker } = s));
beforeEach(() => clock.advance(1000));

describe('resolveLease renders each framework', () => {
  it('OPENCLAW: a models.providers entry keyed from env, and the default models, with overrides merged', async () => {
    const { lease } = await leaseFor('OPENCLAW', {
      fallbackModels: ['anthropic/claude-3.5-haiku', 'openai/gpt-4o-mini'],
      config: {
        delivery: 'DIRECT',
        frameworks: {
          OPENCLAW: {
            agents: { defaults: { timeoutSeconds: 600, model: { fallbacks: ['openrouter/openai/gpt-4o-mini'] } } },
          },
        },
      },
    });
    const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    expect(resolved.apiKey).toBe(SECRET);
    expect(redact(resolved)).toEqual({
      apiKey: '<API_KEY>',
      baseUrl: 'https://openrouter.ai/api/v1',
      model: 'openrouter/auto',
      fallbackModels: ['anthropic/claude-3.5-haiku', 'openai/gpt-4o-mini'],
      agentConfig: {
        models: {
          providers: {
            openrouter: {
              baseUrl: 'https://openrouter.ai/api/v1',
              apiKey: { source: 'env', provider: 'default', id: 'MPK_OPENROUTER_API_KEY' },
              api: 'openai-completions',
              models: [
                { id: 'openrouter/auto', name: 'openrouter/auto' },
                { id: 'anthropic/claude-3.5-haiku', name: 'anthropic/claude-3.5-haiku' },
                { id: 'openai/gpt-4o-mini', name: 'openai/gpt-4o-mini' },
              ],
            },
          },
        },
        agents: {
          defaults: {
            timeoutSeconds: 600,
            model: { primary: 'openrouter/openrouter/auto', fallbacks: ['openrouter/openai/gpt-4o-mini'] },
          },
        },
      },
      // The key only in the environment, never in the config file.
      env: { MPK_OPENROUTER_API_KEY: '<API_KEY>' },
      lease: { id: lease.id, status: 'ACTIVE', lastUsedAt: clock.now().toISOString() },
    });
  });

  it('ELIZA: the provider plugin and the variables it reads, in the character and the environment', async () => {
    const { lease } = await leaseFor('ELIZA', {
      provider: 'VENICE',
      defaultModel: 'llama-3.3-70b',
      fallbackModels: ['qwen3-235b', 'qwen3-4b'],
      config: { delivery: 'DIRECT', frameworks: { ELIZA: { settings: { VENICE_EMBEDDING_MODEL: 'bge-m3' } } } },
    });
    const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    const variables = {
      VENICE_API_KEY: '<API_KEY>',
      VENICE_BASE_URL: 'https://api.venice.ai/api/v1',
      // SMALL is the last fallback, LARGE the lease's model.
      VENICE_SMALL_MODEL: 'qwen3-4b',
      VENICE_LARGE_MODEL: 'llama-3.3-70b',
    };
    expect(redact(resolved.agentConfig)).toEqual({
      plugins: ['@elizaos/plugin-venice'],
      settings: { secrets: variables, VENICE_EMBEDDING_MODEL: 'bge-m3' },
    });
    expect(redact(resolved.env)).toEqual(variables);
  });

  it('ELIZA: each provider its plugin; without fallbacks both slots take the model', async () => {
    const expected = {
      OPENROUTER: ['@elizaos/plugin-openrouter', 'OPENROUTER', 'openrouter/auto'],
      OPENAI_COMPATIBLE: ['@elizaos/plugin-openai', 'OPENAI', 'local-llm'],
    } as const;
    for (const [provider, [plugin, prefix, model]] of Object.entries(expected)) {
      const { lease } = await leaseFor('ELIZA', {
        provider,
        baseUrl: 'http://127.0.0.1:8000/v1',
        defaultModel: model,
        config: { delivery: 'DIRECT' },
      });
      const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
      const variables = {
        [`${prefix}_API_KEY`]: '<API_KEY>',
        [`${prefix}_BASE_URL`]: 'http://127.0.0.1:8000/v1',
        [`${prefix}_SMALL_MODEL`]: model,
        [`${prefix}_LARGE_MODEL`]: model,
      };
      expect(redact(resolved.agentConfig)).toEqual({ plugins: [plugin], settings: { secrets: variables } });
      expect(redact(resolved.env)).toEqual(variables);
    }
  });

  it('GENERIC: OpenAI-style environment variables', async () => {
    const { lease } = await leaseFor('GENERIC', {
      provider: 'OPENAI_COMPATIBLE',
      baseUrl: 'http://127.0.0.1:8000/v1',
      defaultModel: 'local-llm',
      fallbackModels: ['local-small', 'local-llm'],
      config: { delivery: 'DIRECT' },
    });
    const resolved = ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    expect(resolved.fallbackModels).toEqual(['local-small']);
    expect(redact(resolved.env)).toEqual({
      OPENAI_API_KEY: '<API_KEY>',
      OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1',
      OPENAI_API_BASE: 'http://127.0.0.1:8000/v1',
      OPENAI_MODEL: 'local-llm',
      MODEL: 'local-llm',
      FALLBACK_MODELS: 'local-small',
    });
    expect(redact(resolved.agentConfig)).toEqual({
      provider: 'mpk',
      baseUrl: 'http://127.0.0.1:8000/v1',
      apiKey: '<API_KEY>',
      model: 'local-llm',
      fallbackModels: ['local-small'],
    });
  });

  it('PROXY delivery (the default): a lease token and the metering proxy, never the provider key', async () => {
    const { lease } = await leaseFor('GENERIC');
    const res = await server.gql(Q.resolve, { leaseId: lease.id }, worker);
    const resolved = ok(res, 'resolveLease');
    expect(res.raw).not.toContain(SECRET);
    expect(resolved.apiKey).toMatch(new RegExp(`^mpk_lt_${lease.id}\\.[\\w-]+$`));
    expect(resolved.baseUrl).toBe(`${server.url}/v1`);
    expect(resolved.env).toMatchObject({ OPENAI_API_KEY: resolved.apiKey, OPENAI_BASE_URL: `${server.url}/v1` });
  });

  it('resolves by agent id, stamps lastUsedAt, and audits without the secret', async () => {
    const { key, lease } = await leaseFor('GENERIC', {}, `agent-${randomUUID()}`);
    const by = { agentId: lease.agentId, userId: lease.user.id };
    const resolved = ok(await server.gql(Q.resolve, by, worker), 'resolveLease');
    expect(resolved.lease.id).toBe(lease.id);
    const stored = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(stored.lastUsedAt?.toISOString()).toBe(clock.now().toISOString());
    expect(ok(await server.gql(Q.key, { id: key.id }, admin), 'managedKey').lastUsedAt).toBe(clock.now().toISOString());
    const audit = await server.app.db.auditEntry.findMany({ where: { targetId: lease.id, action: 'lease.resolve' } });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actorId: 'worker-r', actorRole: 'WORKER' });
    expect(JSON.stringify(audit, (_, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(SECRET);
  });

  it('deep merge replaces arrays and scalars, merges objects, and ignores prototype keys', () => {
    const merged = deepMerge(
      { a: { b: 1, c: [1, 2] }, d: 'x' },
      JSON.parse('{"a":{"c":[3],"e":2},"d":null,"__proto__":{"polluted":true}}'),
    );
    expect(merged).toEqual({ a: { b: 1, c: [3], e: 2 }, d: null });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('resolveLease refuses', () => {
  it('a lease past its expiry time, before any scheduler has run', async () => {
    const { lease } = await leaseFor('OPENCLAW');
    clock.advance(2 * 86400_000);
    const res = await server.gql(Q.resolve, { leaseId: lease.id }, worker);
    expect(codeOf(res)).toBe('LEASE_NOT_ACTIVE');
    expect(res.raw).not.toContain(SECRET);
    const stored = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(stored.status).toBe('ACTIVE');
    expect(stored.lastUsedAt).toBeNull();
  });

  it('a lease whose key is disabled (directly, and through disableManagedKey)', async () => {
    const { key, lease } = await leaseFor('OPENCLAW');
    await server.app.db.managedKey.update({ where: { id: key.id }, data: { status: 'DISABLED' } });
    expect(codeOf(await server.gql(Q.resolve, { leaseId: lease.id }, worker))).toBe('LEASE_NOT_ACTIVE');
    await server.app.db.managedKey.update({ where: { id: key.id }, data: { status: 'ACTIVE' } });
    ok(await server.gql(Q.resolve, { leaseId: lease.id }, worker), 'resolveLease');
    ok(await server.gql(Q.disableKey, { id: key.id }, admin), 'disableManagedKey');
    expect(codeOf(await server.gql(Q.resolve, { leaseId: lease.id }, worker))).toBe('LEASE_NOT_ACTIVE');
  });

  it('released leases, unknown ids, and calls with neither id', async () => {
    const { lease } = await leaseFor('OPENCLAW');
    const owner = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
    ok(await server.gql(Q.release, { id: lease.id }, await server.token('USER', owner.userId)), 'releaseLease');
    expect(codeOf(await server.gql(Q.resolve, { leaseId: lease.id }, worker))).toBe('LEASE_NOT_ACTIVE');
    expect(codeOf(await server.gql(Q.resolve, { leaseId: randomUUID() }, worker))).toBe('NOT_FOUND');
    expect(codeOf(await server.gql(Q.resolve, { agentId: 'nobody', userId: owner.userId }, worker))).toBe('NOT_FOUND');
    expect((await server.gql(Q.resolve, {}, worker)).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'leaseId',
    });
  });
});
