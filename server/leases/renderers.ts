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

/** The provider's id inside agent frameworks, and the prefix of its environment variables. */
const PROVIDER_IDS: Record<Provider, { id: string; env: string }> = {
  OPENROUTER: { id: 'openrouter', env: 'OPENROUTER' },
  VENICE: { id: 'venice', env: 'VENICE' },
  OPENAI_COMPATIBLE: { id: 'mpk', env: 'OPENAI' },
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

function openclaw(input: RenderInput): Rendered {
  const { id, env } = PROVIDER_IDS[input.provider];
  const models = [input.model, ...input.fallbackModels];
  // OpenClaw splits a model ref at its first "/", so OpenRouter-style ids keep the provider prefix.
  const ref = (model: string) => `${id}/${model}`;
  return {
    agentConfig: {
      auth: { profiles: { [`${id}:mpk`]: { provider: id, mode: 'api_key' } } },
      models: {
        mode: 'merge',
        providers: {
          [id]: {
            baseUrl: input.baseUrl,
            apiKey: input.apiKey,
            api: 'openai-completions',
            models: models.map((model) => ({ id: model, name: model })),
          },
        },
      },
      agents: { defaults: { model: { primary: ref(input.model), fallbacks: input.fallbackModels.map(ref) } } },
    },
    env: { [`${env}_API_KEY`]: input.apiKey, [`${env}_BASE_URL`]: input.baseUrl },
  };
}

function eliza(input: RenderInput): Rendered {
  const { id, env } = PROVIDER_IDS[input.provider];
  const apiKeyName = `${env}_API_KEY`;
  const urlName = input.provider === 'OPENAI_COMPATIBLE' ? 'OPENAI_API_URL' : `${env}_BASE_URL`;
  const small = input.fallbackModels.at(-1) ?? input.model;
  return {
    agentConfig: {
      modelProvider: input.provider === 'OPENAI_COMPATIBLE' ? 'openai' : id,
      settings: {
        model: input.model,
        fallbackModels: input.fallbackModels,
        secrets: { [apiKeyName]: input.apiKey, [urlName]: input.baseUrl },
      },
    },
    env: {
      [apiKeyName]: input.apiKey,
      [urlName]: input.baseUrl,
      [`${env}_MODEL`]: input.model,
      [`SMALL_${env}_MODEL`]: small,
      [`MEDIUM_${env}_MODEL`]: input.model,
      [`LARGE_${env}_MODEL`]: input.model,
    },
  };
}

function generic(input: RenderInput): Rendered {
  return {
    agentConfig: {
      provider: PROVIDER_IDS[input.provider].id,
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
