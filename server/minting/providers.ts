// The providers' key-management APIs, as MPK calls them to mint, change and delete a lease's own
// provider key. One client per provider behind one interface, the request and response shapes as the
// providers document them (demo/fake-key-admin.ts serves the same shapes to the tests):
// - OpenRouter (openrouter.ai/docs/api/api-reference/api-keys): POST /keys { name, limit,
//   expires_at } answers { data: { hash, ... }, key } (the key shown once); PATCH /keys/{hash}
//   { disabled | limit }; DELETE /keys/{hash}; GET /keys/{hash} { data: { usage } }; GET /keys?offset=.
//   Its update has no expiry, so a key's expiry cannot be moved: `canMoveExpiry` is false and an
//   extension replaces the key (server/minting/runner.ts).
// - Venice (docs.venice.ai/api-reference/endpoint/api_keys): POST /api_keys { apiKeyType: INFERENCE,
//   description, consumptionLimit: { usd }, limitPeriod, expiresAt } answers { data: { id, apiKey } };
//   PATCH /api_keys { id, consumptionLimit | expiresAt }; DELETE /api_keys?id=; GET /api_keys/{id}
//   { data: { usage: { trailingSevenDays: { usd } } } }; GET /api_keys. Venice has no "disabled"
//   flag: a disabled minted key is one whose consumption limit is zero, and enabling it puts the
//   lease's limit back. The limit period is LIFETIME (the lease's cap is a total, not a daily figure).
// Requests and their failures (in MPK's words only) are server/core/provider-request.ts's.
import { ProviderRequestError, providerRequest } from '../core/provider-request.js';
import type { Provider } from '../db/enums.js';

export interface CreatedKey {
  providerKeyId: string;
  /** The new key's secret: the provider shows it once, in this answer. */
  secret: string;
}

export interface ProviderKeySummary {
  providerKeyId: string;
  name: string;
}

export interface MintingClient {
  /** Whether an existing key's expiry can be moved (else an extension replaces the key). */
  canMoveExpiry: boolean;
  create(input: { name: string; limitUsd: number | null; expiresAt: Date }): Promise<CreatedKey>;
  setExpiry(providerKeyId: string, expiresAt: Date): Promise<void>;
  setLimit(providerKeyId: string, limitUsd: number | null): Promise<void>;
  disable(providerKeyId: string): Promise<void>;
  /** `limitUsd`: what the key may spend once enabled (Venice keeps no separate flag). */
  enable(providerKeyId: string, limitUsd: number | null): Promise<void>;
  /** 'gone' when the provider no longer knows the key (404): deleted already, or never made. */
  remove(providerKeyId: string): Promise<'deleted' | 'gone'>;
  /** The key's spend as the provider reports it; null when the provider does not know the key. */
  usage(providerKeyId: string): Promise<number | null>;
  /** Every key the account holds (their ids and names), for the orphan sweep. */
  list(): Promise<ProviderKeySummary[]>;
}

/** One JSON request to the management API at `baseUrl`; the parsed answer, or null for a 404 when `allow404`. */
const call = (
  baseUrl: string,
  adminKey: string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  allow404 = false,
) => providerRequest(`${baseUrl}${path}`, adminKey, { method, body, allow404 });

/** The value at `path` in a parsed JSON answer, or undefined. */
function at(value: unknown, ...path: string[]): unknown {
  let here = value;
  for (const step of path) {
    if (here === null || typeof here !== 'object') return undefined;
    here = (here as Record<string, unknown>)[step];
  }
  return here;
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

const usd = (value: unknown): number | null => {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
};

function openRouterClient(baseUrl: string, adminKey: string): MintingClient {
  const keyPath = (hash: string) => `/keys/${encodeURIComponent(hash)}`;
  return {
    canMoveExpiry: false,
    async create({ name, limitUsd, expiresAt }) {
      const answer = await call(baseUrl, adminKey, 'POST', '/keys', {
        name,
        ...(limitUsd === null ? {} : { limit: limitUsd }),
        expires_at: expiresAt.toISOString(),
      });
      const hash = at(answer, 'data', 'hash');
      const secret = at(answer, 'key');
      if (typeof hash !== 'string' || typeof secret !== 'string')
        throw new ProviderRequestError('POST /keys answered without the new key and its hash', null);
      return { providerKeyId: hash, secret };
    },
    async setExpiry() {
      throw new Error('OpenRouter cannot move a key expiry: the runner replaces the key instead');
    },
    async setLimit(hash, limitUsd) {
      await call(baseUrl, adminKey, 'PATCH', keyPath(hash), { limit: limitUsd });
    },
    async disable(hash) {
      await call(baseUrl, adminKey, 'PATCH', keyPath(hash), { disabled: true });
    },
    async enable(hash) {
      await call(baseUrl, adminKey, 'PATCH', keyPath(hash), { disabled: false });
    },
    async remove(hash) {
      return (await call(baseUrl, adminKey, 'DELETE', keyPath(hash), undefined, true)) === null ? 'gone' : 'deleted';
    },
    async usage(hash) {
      const answer = await call(baseUrl, adminKey, 'GET', keyPath(hash), undefined, true);
      return answer === null ? null : usd(at(answer, 'data', 'usage'));
    },
    async list() {
      const found: ProviderKeySummary[] = [];
      for (let offset = 0; ; offset += 100) {
        const answer = await call(baseUrl, adminKey, 'GET', `/keys?offset=${offset}`);
        const page = list(at(answer, 'data'));
        for (const k of page) {
          const hash = at(k, 'hash');
          if (typeof hash === 'string') found.push({ providerKeyId: hash, name: String(at(k, 'name') ?? '') });
        }
        if (page.length < 100) return found;
      }
    },
  };
}

function veniceClient(baseUrl: string, adminKey: string): MintingClient {
  const limit = (limitUsd: number | null) =>
    limitUsd === null ? {} : { consumptionLimit: { usd: limitUsd }, limitPeriod: 'LIFETIME' };
  return {
    canMoveExpiry: true,
    async create({ name, limitUsd, expiresAt }) {
      const answer = await call(baseUrl, adminKey, 'POST', '/api_keys', {
        apiKeyType: 'INFERENCE',
        description: name,
        ...limit(limitUsd),
        expiresAt: expiresAt.toISOString(),
      });
      const id = at(answer, 'data', 'id');
      const secret = at(answer, 'data', 'apiKey');
      if (typeof id !== 'string' || typeof secret !== 'string')
        throw new ProviderRequestError('POST /api_keys answered without the new key and its id', null);
      return { providerKeyId: id, secret };
    },
    async setExpiry(id, expiresAt) {
      await call(baseUrl, adminKey, 'PATCH', '/api_keys', { id, expiresAt: expiresAt.toISOString() });
    },
    async setLimit(id, limitUsd) {
      await call(baseUrl, adminKey, 'PATCH', '/api_keys', { id, ...limit(limitUsd) });
    },
    async disable(id) {
      await call(baseUrl, adminKey, 'PATCH', '/api_keys', { id, ...limit(0) });
    },
    async enable(id, limitUsd) {
      // No limit at all to put back: a very large one stands for it (Venice's PATCH sets, never clears).
      await call(baseUrl, adminKey, 'PATCH', '/api_keys', { id, ...limit(limitUsd ?? 1e9) });
    },
    async remove(id) {
      const answer = await call(baseUrl, adminKey, 'DELETE', `/api_keys?id=${encodeURIComponent(id)}`, undefined, true);
      return answer === null ? 'gone' : 'deleted';
    },
    async usage(id) {
      const answer = await call(baseUrl, adminKey, 'GET', `/api_keys/${encodeURIComponent(id)}`, undefined, true);
      return answer === null ? null : usd(at(answer, 'data', 'usage', 'trailingSevenDays', 'usd'));
    },
    async list() {
      const answer = await call(baseUrl, adminKey, 'GET', '/api_keys');
      return list(at(answer, 'data'))
        .filter((k) => typeof at(k, 'id') === 'string')
        .map((k) => ({ providerKeyId: at(k, 'id') as string, name: String(at(k, 'description') ?? '') }));
    },
  };
}

/** Whether MPK can mint keys at this provider. */
export const canMint = (provider: Provider) => provider === 'OPENROUTER' || provider === 'VENICE';

/** The key-management client for a minting key: its provider, base URL and management secret. */
export function mintingClient(provider: Provider, baseUrl: string, adminKey: string): MintingClient {
  if (provider === 'OPENROUTER') return openRouterClient(baseUrl, adminKey);
  if (provider === 'VENICE') return veniceClient(baseUrl, adminKey);
  throw new Error(`${provider} keys cannot be minted`);
}
