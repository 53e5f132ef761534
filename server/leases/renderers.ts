// What a worker injects into an agent: the framework's own config shape and environment, rendered
// from the lease's key and deep-merged with the key's `config.frameworks[framework]` overrides.
import type { Framework, Provider } from '../db/enums.js';

export interface RenderInput {
  framework: Framework;
  provider: Provider;
  baseUrl: string;
  apiKey: string;
  model: string;
  fallbackModels: string[];
  overrides?: Record<string, unknown> | undefined;
}

export interface Rendered {
  agentConfig: Record<string, unknown>;
  env: Record<string, string>;
}

/** Each provider's id (GENERIC's `provider`), its id in OpenClaw, and the ElizaOS plugin for it. */
const PROVIDERS: Record<Provider, { id: string; openclaw: string; eliza: { plugin: string; prefix: string } }> = {
  // OpenClaw bundles its OpenRouter provider. Its Venice provider is a plugin that OpenClaw would
  // install from ClawHub on start when a config names the provider `venice` (a download the worker did
  // not ask for, which stalls offline); MPK's entry needs none of it, so it has an id of its own.
  OPENROUTER: {
    id: 'openrouter',
    openclaw: 'openrouter',
    eliza: { plugin: '@elizaos/plugin-openrouter', prefix: 'OPENROUTER' },
  },
  VENICE: { id: 'venice', openclaw: 'mpk-venice', eliza: { plugin: '@elizaos/plugin-venice', prefix: 'VENICE' } },
  OPENAI_COMPATIBLE: { id: 'mpk', openclaw: 'mpk', eliza: { plugin: '@elizaos/plugin-openai', prefix: 'OPENAI' } },
};

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars in `override` replace what `base` had. */
export function deepMerge(
  base: Record<string, unknown>,
  override: Record<string, unknown> | undefined,
): Record<string, unknown> {
  if (!override) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (UNSAFE_KEYS.has(key)) continue;
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/**
 * OpenClaw's `openclaw.json` fragment: the provider under `models.providers`, with MPK's base URL and
 * the lease's models, and the agents' default model and fallbacks as `<provider>/<model>` refs. The key
 * itself is only in `env`.
 */
function openclaw(input: RenderInput): Rendered {
  const id = PROVIDERS[input.provider].openclaw;
  // A name of MPK's own: OpenClaw reads OPENROUTER_API_KEY for other features too (web_search then
  // installs its Perplexity plugin and searches through OpenRouter directly), and the lease's key is
  // for MPK's provider entry only.
  const keyVariable = `MPK_${input.provider}_API_KEY`;
  // OpenClaw splits a model ref at its first "/", so OpenRouter-style ids keep the provider prefix.
  const ref = (model: string) => `${id}/${model}`;
  return {
    agentConfig: {
      models: {
        providers: {
          [id]: {
            baseUrl: input.baseUrl,
            // An env SecretRef, read when OpenClaw calls the model. Not the documented "${VAR}" string:
            // `doctor --lint` checks the config after substitution and reports that as a plaintext key.
            apiKey: { source: 'env', provider: 'default', id: keyVariable },
            // Chat completions: what every upstream MPK proxies speaks; a provider plugin may default
            // to another API.
            api: 'openai-completions',
            models: [input.model, ...input.fallbackModels].map((model) => ({ id: model, name: model })),
          },
        },
      },
      agents: { defaults: { model: { primary: ref(input.model), fallbacks: input.fallbackModels.map(ref) } } },
    },
    env: { [keyVariable]: input.apiKey },
  };
}

/**
 * An ElizaOS 1.x character fragment: the provider's plugin, and the variables that plugin reads in
 * `settings.secrets`, where ElizaOS puts environment variables itself, so either half is enough: the
 * plugins read the runtime's settings first, then the process environment. ElizaOS has two text
 * slots: LARGE is the lease's model, SMALL its last fallback (the model itself when there is none).
 */
function eliza(input: RenderInput): Rendered {
  const { plugin, prefix } = PROVIDERS[input.provider].eliza;
  const variables = {
    [`${prefix}_API_KEY`]: input.apiKey,
    [`${prefix}_BASE_URL`]: input.baseUrl,
    [`${prefix}_SMALL_MODEL`]: input.fallbackModels.at(-1) ?? input.model,
    [`${prefix}_LARGE_MODEL`]: input.model,
  };
  return { agentConfig: { plugins: [plugin], settings: { secrets: { ...variables } } }, env: variables };
}

function generic(input: RenderInput): Rendered {
  return {
    agentConfig: {
      provider: PROVIDERS[input.provider].id,
      baseUrl: input.baseUrl,
      apiKey: input.apiKey,
      model: input.model,
      fallbackModels: input.fallbackModels,
    },
    env: {
      OPENAI_API_KEY: input.apiKey,
      OPENAI_BASE_URL: input.baseUrl,
      OPENAI_API_BASE: input.baseUrl,
      OPENAI_MODEL: input.model,
      MODEL: input.model,
      FALLBACK_MODELS: input.fallbackModels.join(','),
    },
  };
}

const RENDERERS: Record<Framework, (input: RenderInput) => Rendered> = {
  OPENCLAW: openclaw,
  ELIZA: eliza,
  GENERIC: generic,
};

export function renderAgentConfig(input: RenderInput): Rendered {
  const rendered = RENDERERS[input.framework](input);
  return { agentConfig: deepMerge(rendered.agentConfig, input.overrides), env: rendered.env };
}
