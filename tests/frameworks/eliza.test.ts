// ElizaOS 1.x with what resolveLease renders for an ELIZA lease: the character fragment passes
// @elizaos/core's own validateCharacter once merged into a minimal character, the environment
// carries exactly the variables the provider's plugin reads, and an AgentRuntime with that plugin
// calls MPK's proxy with the leased models, which forwards to the upstream and meters each call.
import {
  AgentRuntime,
  type Character,
  type IDatabaseAdapter,
  ModelType,
  type Plugin,
  validateCharacter,
} from '@elizaos/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { deepMerge } from '../../server/leases/renderers.js';
import { type TestServer, withTestServer } from '../support/server.js';
import {
  forgetUpstreamCalls,
  frameworkLease,
  MODELS,
  meteredRows,
  PROVIDERS,
  type ProviderName,
  type Resolved,
  upstreamCalls,
} from './support.js';

const UPSTREAM_KEY = 'sk-eliza-upstream-0123456789';
let server: TestServer;
let upstream: FakeUpstream;
let admin: string;
let worker: string;

/** Each provider's plugin, the prefix of its variables, and the upstream route it calls for text. */
const PLUGINS: Record<ProviderName, { plugin: string; prefix: string; route: string }> = {
  OPENROUTER: { plugin: '@elizaos/plugin-openrouter', prefix: 'OPENROUTER', route: '/chat/completions' },
  VENICE: { plugin: '@elizaos/plugin-venice', prefix: 'VENICE', route: '/chat/completions' },
  // @ai-sdk/openai 2, under plugin-openai, speaks OpenAI's Responses API.
  OPENAI_COMPATIBLE: { plugin: '@elizaos/plugin-openai', prefix: 'OPENAI', route: '/responses' },
};

const MINIMAL = { name: 'Mpk Agent', bio: 'An agent that answers briefly.' };

const elizaLease = (provider: ProviderName) =>
  frameworkLease(
    server,
    { admin, worker },
    { framework: 'ELIZA', provider, upstreamUrl: upstream.url, upstreamKey: UPSTREAM_KEY },
  );

function character(fragment: Record<string, unknown>): Character {
  const result = validateCharacter(deepMerge(MINIMAL, fragment));
  expect(result.error?.issues ?? [], result.error?.message).toEqual([]);
  expect(result.success).toBe(true);
  return result.data!;
}

/**
 * A runtime as a worker starts one: the plugin loaded by the package name the character lists.
 * useModel writes each call to the agent's database log; a sink stands in for the database.
 */
async function runtimeWith(plugins: string[], options: { character: Character; settings: Record<string, string> }) {
  const runtime = new AgentRuntime({
    ...options,
    adapter: { log: async () => {} } as unknown as IDatabaseAdapter,
  });
  for (const name of plugins) {
    const plugin: Plugin = (await import(name)).default;
    await runtime.registerPlugin(plugin);
  }
  return runtime;
}

/** `work` with `variables` set in this process's environment, as a worker sets them for an agent. */
async function withEnv<T>(variables: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  Object.assign(process.env, variables);
  try {
    return await work();
  } finally {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());
withTestServer({ roles: 'eliza' }, (s) => ({ server, admin, worker } = s));
beforeEach(() => {
  forgetUpstreamCalls(upstream);
});

describe.each(PROVIDERS)('ElizaOS on a %s lease', (provider) => {
  const { plugin, prefix, route } = PLUGINS[provider];
  const large = MODELS[provider].model;
  const small = MODELS[provider].fallbackModels.at(-1)!;
  let resolved: Resolved;

  beforeEach(async () => {
    upstream.costStyle = provider === 'VENICE' ? 'venice' : 'openrouter';
    resolved = await elizaLease(provider);
  });

  it('renders a character validateCharacter accepts, and exactly the variables the plugin reads', () => {
    const merged = character(resolved.agentConfig);
    expect(merged.plugins).toEqual([plugin]);
    const variables = {
      [`${prefix}_API_KEY`]: resolved.apiKey,
      [`${prefix}_BASE_URL`]: resolved.baseUrl,
      [`${prefix}_SMALL_MODEL`]: small,
      [`${prefix}_LARGE_MODEL`]: large,
    };
    expect(resolved.env).toEqual(variables);
    expect(merged.settings?.secrets).toEqual(variables);
  });

  it('useModel calls the upstream through MPK with the leased models, and MPK meters each call', async () => {
    // The character alone (the plugins read the runtime's settings first)...
    const fromCharacter = await runtimeWith(resolved.agentConfig.plugins as string[], {
      character: character(resolved.agentConfig),
      settings: {},
    });
    expect(await fromCharacter.useModel(ModelType.TEXT_LARGE, { prompt: 'Say hello.' })).toBe('Hello there.');
    expect(await fromCharacter.useModel(ModelType.TEXT_SMALL, { prompt: 'Say hello.' })).toBe('Hello there.');
    // ...or the process environment alone (the plugins' fallback), with a bare character.
    const fromEnv = await withEnv(resolved.env, async () => {
      const runtime = await runtimeWith([plugin], { character: character({}), settings: {} });
      return runtime.useModel(ModelType.TEXT_LARGE, { prompt: 'Say hello.' });
    });
    expect(fromEnv).toBe('Hello there.');

    // The upstream saw the provider's key (MPK swapped the lease token for it) and the leased models.
    const sent = { path: route, authorization: `Bearer ${UPSTREAM_KEY}` };
    expect(upstreamCalls(upstream)).toEqual([
      { ...sent, model: large },
      { ...sent, model: small },
      { ...sent, model: large },
    ]);
    const rows = await meteredRows(server, resolved.lease.id, 3);
    expect(rows.map((row) => row.model)).toEqual([large, small, large]);
    for (const row of rows) expect(row.costUsd.toNumber()).toBeGreaterThan(0);
  });
});
