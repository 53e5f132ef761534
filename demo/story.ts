// The demo's cast: the fake world's prices, the keys in the pool, the users of each tier, the tier
// policies tuned so that things happen within minutes, and the agents that run. Data only: what
// is done with it lives in setup.ts, backfill.ts and agents.ts.
import type { Framework, Provider, Tier } from '../server/db/enums.js';
import type { TierPolicyInput } from '../server/leases/policies.js';
import type { CostStyle, ModelPrice } from './fake-provider.js';

/** USD per million tokens in the fake world; OpenAI-compatible keys carry them as `config.prices`. */
export const PRICES: Record<string, ModelPrice> = {
  'anthropic/claude-sonnet-4': { prompt: 3, completion: 15 },
  'openai/gpt-4o': { prompt: 2.5, completion: 10 },
  'openai/gpt-4o-mini': { prompt: 0.15, completion: 0.6 },
  'deepseek-r1-671b': { prompt: 3.5, completion: 14 },
  'llama-3.3-70b': { prompt: 0.7, completion: 2.8 },
  'qwen2.5-coder-32b': { prompt: 0.8, completion: 1.6 },
  'mistral-small-3.1': { prompt: 0.1, completion: 0.3 },
  'text-embedding-3-small': { prompt: 0.02, completion: 0 },
};
export const EMBEDDING_MODEL = 'text-embedding-3-small';

export interface DemoKey {
  label: string;
  provider: Provider;
  /**
   * MINT: the key's secret is the fake OpenRouter's management key, and each lease on it gets a
   * provider key of its own, minted (and deleted when the lease ends) at the fake's key-management API.
   */
  mode?: 'MINT';
  /** A MINT key's cap on its minted keys at once. */
  maxMintedKeys?: number;
  /** How the fake reports cost to this key: as the real provider does (none: MPK prices it). */
  costStyle: CostStyle;
  defaultModel: string;
  fallbackModels: string[];
  dailyLimitUsd: string;
  monthlyLimitUsd: string;
  maxActiveLeases: number;
  /** OpenRouter's credit limit on the key, as its GET /key reports it. */
  creditLimitUsd?: number;
  /** Venice's USD balance before the demo's history. */
  balanceUsd?: number;
  /** Disabled this many days ago, with this reason (its leases then were revoked). */
  disabled?: { daysAgo: number; reason: string };
  /** Today's history keeps this key busy until it has spent this share of its daily limit. */
  busyTodayUntil?: number;
}

const pricesOf = (models: string[]) =>
  Object.fromEntries(
    models.map((m) => [m, { prompt: String(PRICES[m]!.prompt), completion: String(PRICES[m]!.completion) }]),
  );

export const KEYS: DemoKey[] = [
  {
    label: 'openrouter-main',
    provider: 'OPENROUTER',
    costStyle: 'openrouter',
    defaultModel: 'anthropic/claude-sonnet-4',
    fallbackModels: ['openai/gpt-4o-mini'],
    dailyLimitUsd: '60',
    monthlyLimitUsd: '900',
    maxActiveLeases: 4,
    creditLimitUsd: 1000,
  },
  {
    label: 'openrouter-burst',
    provider: 'OPENROUTER',
    costStyle: 'openrouter',
    defaultModel: 'openai/gpt-4o',
    fallbackModels: ['openai/gpt-4o-mini'],
    dailyLimitUsd: '20',
    monthlyLimitUsd: '300',
    maxActiveLeases: 2,
    creditLimitUsd: 400,
  },
  {
    label: 'openrouter-minting',
    provider: 'OPENROUTER',
    mode: 'MINT',
    // Its leases' minted keys report cost as OpenRouter does (the fake's default for keys it minted).
    costStyle: 'openrouter',
    defaultModel: 'anthropic/claude-sonnet-4',
    fallbackModels: ['openai/gpt-4o-mini'],
    dailyLimitUsd: '25',
    monthlyLimitUsd: '400',
    maxActiveLeases: 3,
    // Room for its three leases' keys, and for keys of ended leases until their deletion is confirmed.
    maxMintedKeys: 5,
  },
  {
    label: 'venice-pool',
    provider: 'VENICE',
    costStyle: 'venice',
    defaultModel: 'deepseek-r1-671b',
    fallbackModels: ['llama-3.3-70b'],
    dailyLimitUsd: '3',
    monthlyLimitUsd: '80',
    maxActiveLeases: 3,
    balanceUsd: 150,
    busyTodayUntil: 0.85,
  },
  {
    label: 'local-gateway',
    provider: 'OPENAI_COMPATIBLE',
    costStyle: 'none',
    defaultModel: 'qwen2.5-coder-32b',
    fallbackModels: ['mistral-small-3.1'],
    dailyLimitUsd: '10',
    monthlyLimitUsd: '200',
    maxActiveLeases: 4,
  },
  {
    label: 'legacy-gateway',
    provider: 'OPENAI_COMPATIBLE',
    costStyle: 'none',
    defaultModel: 'mistral-small-3.1',
    fallbackModels: [],
    dailyLimitUsd: '5',
    monthlyLimitUsd: '100',
    maxActiveLeases: 2,
    disabled: { daysAgo: 6, reason: 'Contract with the legacy gateway ended; its traffic moved to local-gateway' },
  },
];

/** `config.prices` of a key: what MPK charges when the provider does not say (OpenAI-compatible keys). */
export const configOf = (key: DemoKey) =>
  key.costStyle === 'none' ? { prices: pricesOf([key.defaultModel, ...key.fallbackModels, EMBEDDING_MODEL]) } : {};

export interface DemoUser {
  id: string;
  email: string;
  tier: Tier;
}

export const ADMIN = { id: 'admin@demo', email: 'admin@demo.example' };
export const WORKER = { id: 'worker@demo' };
export const USERS: DemoUser[] = [
  { id: 'ada@demo', email: 'ada@demo.example', tier: 'FREE' },
  { id: 'alan@demo', email: 'alan@demo.example', tier: 'FREE' },
  { id: 'grace@demo', email: 'grace@demo.example', tier: 'PRO' },
  { id: 'margaret@demo', email: 'margaret@demo.example', tier: 'PRO' },
  { id: 'linus@demo', email: 'linus@demo.example', tier: 'ENTERPRISE' },
];

/**
 * Short FREE leases with a small cap, so that within minutes some leases expire and some are
 * suspended at their cap; PRO and ENTERPRISE longer and roomier. 60 s is the shortest MPK allows.
 */
export const POLICIES: Record<
  Tier,
  { leaseDurationSeconds: number; maxActiveLeases: number; spendCapUsd: string } & TierPolicyInput
> = {
  FREE: { leaseDurationSeconds: 120, maxActiveLeases: 1, spendCapUsd: '0.10' },
  PRO: { leaseDurationSeconds: 600, maxActiveLeases: 2, spendCapUsd: '1.50' },
  ENTERPRISE: { leaseDurationSeconds: 1800, maxActiveLeases: 10, spendCapUsd: '15' },
};

export interface AgentProfile {
  agentId: string;
  userId: string;
  provider: Provider;
  framework: Framework;
  /** Share of its requests that are embeddings rather than chat. */
  embeddings: number;
  /** Where the platform sends it when its provider has no key with room. */
  fallbackProvider?: Provider;
}

/** In the order `agents: n` takes them: the first six cover every tier, provider and refusal. */
export const AGENTS: AgentProfile[] = [
  { agentId: 'ada-scout', userId: 'ada@demo', provider: 'OPENROUTER', framework: 'OPENCLAW', embeddings: 0.1 },
  {
    agentId: 'grace-writer',
    userId: 'grace@demo',
    provider: 'VENICE',
    framework: 'ELIZA',
    embeddings: 0,
    fallbackProvider: 'OPENROUTER',
  },
  { agentId: 'linus-ci', userId: 'linus@demo', provider: 'OPENAI_COMPATIBLE', framework: 'GENERIC', embeddings: 0.1 },
  { agentId: 'ada-helper', userId: 'ada@demo', provider: 'OPENROUTER', framework: 'GENERIC', embeddings: 0.2 },
  { agentId: 'grace-analyst', userId: 'grace@demo', provider: 'OPENROUTER', framework: 'OPENCLAW', embeddings: 0.1 },
  {
    agentId: 'linus-embed',
    userId: 'linus@demo',
    provider: 'OPENAI_COMPATIBLE',
    framework: 'GENERIC',
    embeddings: 0.8,
  },
  { agentId: 'alan-bot', userId: 'alan@demo', provider: 'OPENROUTER', framework: 'ELIZA', embeddings: 0 },
  { agentId: 'margaret-eval', userId: 'margaret@demo', provider: 'OPENROUTER', framework: 'GENERIC', embeddings: 0.1 },
];
