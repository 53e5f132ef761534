// Provider reconciliation: ask each provider what it thinks a key has spent, store those figures
// beside MPK's metered ones, and so expose the drift. OpenRouter: GET {baseUrl}/key
// (`usage_daily`, `usage_monthly`, `limit`, `limit_remaining`); Venice: GET
// {baseUrl}/api_keys/rate_limits (`balances.USD`). Run by the scheduler's instance.
//
// Minted keys (issue 15) are read one by one with the minting key's management secret, so the drift
// is per lease: OpenRouter's GET /keys/{hash} (`usage`, all the key has spent, since MPK sets no
// limit_reset) and Venice's GET /api_keys/{id} (`usage.trailingSevenDays.usd`, the only usage Venice
// documents for a key). Every minted key the provider still holds is read: live leases and ended
// ones whose deletion has not happened yet; the DELETE job reads a key once more just before it
// deletes it (minting/runner.ts), so an ended lease's figure covers its last requests.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { Decimal } from '../core/money.js';
import { periodicJob } from '../core/periodic.js';
import { providerData, reasonOf } from '../core/provider-request.js';
import type { Db, ManagedKey } from '../db/client.js';
import type { KeyService } from '../keys/service.js';
import { mintingClient } from '../minting/providers.js';
import { createUsageReading } from '../minting/usage-reading.js';

export interface ProviderFigures {
  usageDailyUsd: Decimal | null;
  usageMonthlyUsd: Decimal | null;
  limitUsd: Decimal | null;
  limitRemainingUsd: Decimal | null;
  balanceUsd: Decimal | null;
}

const usd = (value: unknown): Decimal | null =>
  typeof value === 'number' && Number.isFinite(value)
    ? new Decimal(value).toDecimalPlaces(6)
    : typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)
      ? new Decimal(value).toDecimalPlaces(6)
      : null;

/** The provider's figures for one key, or null for providers without such an API. */
export async function fetchProviderFigures(
  key: Pick<ManagedKey, 'provider' | 'baseUrl'>,
  apiKey: string,
): Promise<ProviderFigures | null> {
  if (key.provider === 'OPENROUTER') {
    const data = await providerData(`${key.baseUrl}/key`, apiKey);
    return {
      usageDailyUsd: usd(data.usage_daily),
      usageMonthlyUsd: usd(data.usage_monthly),
      limitUsd: usd(data.limit),
      limitRemainingUsd: usd(data.limit_remaining),
      balanceUsd: null,
    };
  }
  if (key.provider === 'VENICE') {
    const data = await providerData(`${key.baseUrl}/api_keys/rate_limits`, apiKey);
    const balances = (data.balances ?? {}) as Record<string, unknown>;
    return {
      usageDailyUsd: null,
      usageMonthlyUsd: null,
      limitUsd: null,
      limitRemainingUsd: null,
      balanceUsd: usd(balances.USD),
    };
  }
  return null;
}

export function createReconcileJob(deps: {
  db: Db;
  keys: Pick<KeyService, 'revealSecret'>;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
}) {
  const { db, keys, clock, logger } = deps;
  const readUsage = createUsageReading({ db, logger });

  async function runOnce(): Promise<number> {
    // A minting key's own figures say nothing of its leases' spend, which lands on their minted
    // keys: those are read one by one below, and a minting key has no key-level drift.
    const list = await db.managedKey.findMany({
      where: { status: 'ACTIVE', mode: 'SHARED', provider: { in: ['OPENROUTER', 'VENICE'] } },
    });
    let checked = 0;
    for (const key of list) {
      const checkedAt = clock.now();
      try {
        const figures = await fetchProviderFigures(key, keys.revealSecret(key));
        if (!figures) continue;
        await db.managedKey.update({
          where: { id: key.id },
          data: {
            providerCheckedAt: checkedAt,
            providerUsageDailyUsd: figures.usageDailyUsd,
            providerUsageMonthlyUsd: figures.usageMonthlyUsd,
            providerLimitUsd: figures.limitUsd,
            providerLimitRemainingUsd: figures.limitRemainingUsd,
            providerBalanceUsd: figures.balanceUsd,
            providerError: null,
          },
        });
        checked++;
      } catch (error) {
        // The endpoint, the status and a short reason: never the key, never the provider's words.
        const message = reasonOf(error);
        logger.warn({ keyId: key.id, error: message }, 'provider reconciliation failed');
        await db.managedKey.update({
          where: { id: key.id },
          data: { providerCheckedAt: checkedAt, providerError: message },
        });
      }
    }
    return checked + (await reconcileMintedKeys());
  }

  /**
   * Each minted key's own usage at the provider, stored on its row with the time of reading
   * (minting/usage-reading.ts, which the DELETE job also calls for a final reading).
   */
  async function reconcileMintedKeys(): Promise<number> {
    const minted = await db.mintedKey.findMany({
      where: { providerKeyId: { not: null }, status: { in: ['ACTIVE', 'DISABLED'] } },
      select: {
        id: true,
        providerKeyId: true,
        earlierKeysUsageUsd: true,
        mintingKey: { select: { id: true, provider: true, baseUrl: true, secretCiphertext: true } },
      },
      orderBy: { id: 'asc' },
    });
    const clients = new Map<string, ReturnType<typeof mintingClient>>();
    let checked = 0;
    for (const m of minted) {
      const { mintingKey } = m;
      const clientOf = () => {
        let client = clients.get(mintingKey.id);
        if (!client) {
          client = mintingClient(mintingKey.provider, mintingKey.baseUrl, keys.revealSecret(mintingKey));
          clients.set(mintingKey.id, client);
        }
        return client;
      };
      if (await readUsage(clientOf, m, clock.now())) checked++;
    }
    return checked;
  }

  return periodicJob({
    name: 'provider-reconciliation',
    intervalMs: deps.intervalMs ?? 5 * 60_000,
    logger,
    failure: 'reconciliation run failed',
    run: runOnce,
  });
}
export type ReconcileJob = ReturnType<typeof createReconcileJob>;
