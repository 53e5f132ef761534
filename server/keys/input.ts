// Validation of key registry input. Every refusal names the input field it is about.
import { z } from 'zod';
import { badInput } from '../core/errors.js';
import { parseUsd } from '../core/money.js';
import type { Prisma } from '../db/client.js';
import { FRAMEWORKS, KEY_MODES, type KeyMode, PROVIDERS, type Provider } from '../db/enums.js';

/** What a provider implies when the admin leaves base URL or model out. */
export const PROVIDER_DEFAULTS: Record<Provider, { baseUrl?: string; defaultModel?: string }> = {
  OPENROUTER: { baseUrl: 'https://openrouter.ai/api/v1', defaultModel: 'openrouter/auto' },
  VENICE: { baseUrl: 'https://api.venice.ai/api/v1' },
  OPENAI_COMPATIBLE: {},
};

const MAX_CONFIG_BYTES = 64 * 1024;

const label = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
/**
 * OpenRouter's and Venice's keys are long; a local OpenAI-compatible server often takes any word
 * (`ollama` is customary), so OPENAI_COMPATIBLE keys may be as short as one character.
 */
const apiKeyOf = (provider: Provider) =>
  z
    .string()
    .min(
      provider === 'OPENAI_COMPATIBLE' ? 1 : 8,
      provider === 'OPENAI_COMPATIBLE' ? 'must not be empty' : 'must be at least 8 characters',
    )
    .max(4096, 'must be at most 4096 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const baseUrl = z
  .string()
  .trim()
  .max(2048, 'must be at most 2048 characters')
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password;
    } catch {
      return false;
    }
  }, 'must be an http(s) URL without credentials')
  .transform((value) => value.replace(/\/+$/, ''));
const model = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const fallbackModels = z
  .array(model)
  .max(20, 'must list at most 20 models')
  .refine((list) => new Set(list).size === list.length, 'must not repeat a model');
/** Venice allows 500 active API keys an account: a Venice minting key holds no more unless told. */
export const VENICE_MAX_MINTED_KEYS = 500;
/** The providers whose keys MPK can mint (server/minting/providers.ts). */
const MINTING_PROVIDERS: readonly Provider[] = ['OPENROUTER', 'VENICE'];
const maxMintedKeys = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(1_000_000, 'is too large');
const maxActiveLeases = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(1_000_000, 'is too large');

const plainObject = z.custom<Record<string, unknown>>(
  (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  'must be an object',
);
const pricePerMillion = z.union([z.string(), z.number()]);
/**
 * `config` is an object of objects: `frameworks` maps a framework to the overrides deep-merged
 * into its rendered agent config; `prices` maps a model to its per-million-token USD prices;
 * `delivery` (PROXY or DIRECT) chooses what resolveLease hands the agent.
 */
const config = z
  .object({
    frameworks: z.partialRecord(z.enum(FRAMEWORKS), plainObject).optional(),
    prices: z.record(model, z.object({ prompt: pricePerMillion, completion: pricePerMillion }).strict()).optional(),
    delivery: z.enum(['PROXY', 'DIRECT']).optional(),
  })
  .strict()
  .refine((v) => JSON.stringify(v).length <= MAX_CONFIG_BYTES, `must be at most ${MAX_CONFIG_BYTES} bytes as JSON`);

const usd = (field: string) => (value: string | null | undefined) =>
  value === undefined ? undefined : value === null ? null : parseUsd(value, field);

/** For an update: undefined leaves the field as it is, null clears it, a value is validated. */
function clearable<T>(schema: z.ZodType<T>, value: unknown, field: string): T | null | undefined {
  return value === undefined ? undefined : value === null ? null : parse(schema, value, field);
}

function parse<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = [field, ...issue.path.map(String)].join('.');
  throw badInput(path, `${path} ${issue.message}`);
}

function validateConfig(value: unknown): Prisma.InputJsonObject {
  const parsed = parse(config, value, 'config');
  for (const [name, price] of Object.entries(parsed.prices ?? {})) {
    parseUsd(price.prompt, `config.prices.${name}.prompt`);
    parseUsd(price.completion, `config.prices.${name}.completion`);
  }
  return parsed as Prisma.InputJsonObject;
}

export interface CreateKeyInput {
  provider: Provider;
  label: string;
  apiKey: string;
  baseUrl?: string | null;
  defaultModel?: string | null;
  fallbackModels?: string[] | null;
  config?: unknown;
  dailyLimitUsd?: string | null;
  monthlyLimitUsd?: string | null;
  maxActiveLeases?: number | null;
  /** MINT: `apiKey` is the provider's key-management key and each lease gets a key of its own. */
  mode?: KeyMode | null;
  /** MINT keys: how many minted keys may exist at once (500 for Venice unless given). */
  maxMintedKeys?: number | null;
}

export type UpdateKeyInput = {
  [K in keyof Omit<CreateKeyInput, 'provider' | 'apiKey' | 'mode'>]?: CreateKeyInput[K] | null;
};

export function validateCreate(input: CreateKeyInput) {
  const provider = parse(z.enum(PROVIDERS), input.provider, 'provider');
  const defaults = PROVIDER_DEFAULTS[provider];
  const url = input.baseUrl ?? defaults.baseUrl;
  if (!url) throw badInput('baseUrl', `baseUrl is required for provider ${provider}`);
  const mode = parse(z.enum(KEY_MODES), input.mode ?? 'SHARED', 'mode');
  if (mode === 'MINT' && !MINTING_PROVIDERS.includes(provider))
    throw badInput('mode', `MPK can mint keys at ${MINTING_PROVIDERS.join(' and ')} only, not ${provider}`);
  if (mode === 'SHARED' && input.maxMintedKeys != null)
    throw badInput('maxMintedKeys', 'maxMintedKeys applies to MINT keys only');
  return {
    mode,
    maxMintedKeys:
      input.maxMintedKeys != null
        ? parse(maxMintedKeys, input.maxMintedKeys, 'maxMintedKeys')
        : mode === 'MINT' && provider === 'VENICE'
          ? VENICE_MAX_MINTED_KEYS
          : null,
    provider,
    label: parse(label, input.label, 'label'),
    apiKey: parse(apiKeyOf(provider), input.apiKey, 'apiKey'),
    baseUrl: parse(baseUrl, url, 'baseUrl'),
    defaultModel:
      input.defaultModel != null ? parse(model, input.defaultModel, 'defaultModel') : (defaults.defaultModel ?? null),
    fallbackModels: parse(fallbackModels, input.fallbackModels ?? [], 'fallbackModels'),
    config: validateConfig(input.config ?? {}),
    dailyLimitUsd: usd('dailyLimitUsd')(input.dailyLimitUsd) ?? null,
    monthlyLimitUsd: usd('monthlyLimitUsd')(input.monthlyLimitUsd) ?? null,
    maxActiveLeases:
      input.maxActiveLeases != null ? parse(maxActiveLeases, input.maxActiveLeases, 'maxActiveLeases') : null,
  };
}

/** Only the fields present in the input; `null` clears a nullable field. */
export function validateUpdate(input: UpdateKeyInput) {
  const nonNull = (field: keyof UpdateKeyInput) => {
    if (input[field] === null) throw badInput(field, `${field} cannot be cleared`);
  };
  (['label', 'baseUrl', 'fallbackModels', 'config'] as const).forEach(nonNull);
  return {
    label: input.label != null ? parse(label, input.label, 'label') : undefined,
    baseUrl: input.baseUrl != null ? parse(baseUrl, input.baseUrl, 'baseUrl') : undefined,
    defaultModel: clearable(model, input.defaultModel, 'defaultModel'),
    fallbackModels:
      input.fallbackModels != null ? parse(fallbackModels, input.fallbackModels, 'fallbackModels') : undefined,
    config: input.config !== undefined ? validateConfig(input.config) : undefined,
    dailyLimitUsd: usd('dailyLimitUsd')(input.dailyLimitUsd),
    monthlyLimitUsd: usd('monthlyLimitUsd')(input.monthlyLimitUsd),
    maxActiveLeases: clearable(maxActiveLeases, input.maxActiveLeases, 'maxActiveLeases'),
    maxMintedKeys: clearable(maxMintedKeys, input.maxMintedKeys, 'maxMintedKeys'),
  };
}

export const validateApiKey = (value: string, provider: Provider) => parse(apiKeyOf(provider), value, 'apiKey');
export const validateReason = (value: string | null | undefined) =>
  value == null ? null : parse(z.string().trim().max(500, 'must be at most 500 characters'), value, 'reason') || null;

/** A short prefix and the last four characters: enough to recognize a key, never to use it. */
export function maskKey(secret: string): string {
  // A short key (a local server's `ollama`) would be half shown by any prefix and suffix.
  if (secret.length < 8) return '*'.repeat(secret.length);
  const prefixLength = Math.min(6, Math.floor(secret.length / 4));
  const suffixLength = secret.length >= 16 ? 4 : 2;
  return `${secret.slice(0, prefixLength)}...${secret.slice(-suffixLength)}`;
}
