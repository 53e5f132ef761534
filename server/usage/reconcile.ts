// Provider reconciliation: ask each provider what it thinks a key has spent, store those figures
// beside MPK's metered ones, and so expose the drift. OpenRouter: GET {baseUrl}/key
// (`usage_daily`, `usage_monthly`, `limit`, `limit_remaining`); Venice: GET
// {baseUrl}/api_keys/rate_limits (`balances.USD`). Run by the scheduler's instance.
//
// Minted keys (issue 15) are read one by one with the minting key's management secret, so the drift
// is per lease: OpenRouter's GET /keys/{hash} (`usage`, all the key has spent, since MPK sets no
// limit_reset) and Venice's GET /api_keys/{id} (`usage.trailingSevenDays.usd`, the only usage Venice
// documents for a key). Every minted key the provider still holds is read: live leases and ended
// ones whose deletion has not happened yet.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { Decimal } from '../core/money.js';
import { periodicJob } from '../core/periodic.js';
import { ProviderRequestError, providerData, reasonOf } from '../core/provider-request.js';
import type { Db, ManagedKey } from '../db/client.js';
import type { KeyService } from '../keys/service.js';
import { mintingClient } from '../minting/providers.js';

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
   * Each minted key's own usage at the provider, stored on its row with the time of reading (the
   * figure covers the lease's earlier keys too: an OpenRouter extension replaces the key, and what
   * the replaced one spent was kept). A failure is stored in MPK's words on the row it concerns.
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
      const checkedAt = clock.now();
      try {
        let client = clients.get(mintingKey.id);
        if (!client) {
          client = mintingClient(mintingKey.provider, mintingKey.baseUrl, keys.revealSecret(mintingKey));
          clients.set(mintingKey.id, client);
        }
        const usage = await client.usage(m.providerKeyId!);
        if (usage === null) throw new ProviderRequestError('the provider no longer knows this key (404)', 404);
        await db.mintedKey.update({
          where: { id: m.id },
          data: {
            providerUsageUsd: new Decimal(m.earlierKeysUsageUsd).plus(new Decimal(usage)),
            providerCheckedAt: checkedAt,
            providerError: null,
          },
        });
        checked++;
      } catch (error) {
        // The client words its failures itself (method, path, status): never a provider's body. The
        // last figure and its time stay: the drift compares MPK's ledger at that time with it.
        const message = reasonOf(error, 'the usage could not be read');
        logger.warn({ mintedKeyId: m.id, error: message }, 'minted key reconciliation failed');
        await db.mintedKey.update({ where: { id: m.id }, data: { providerError: message } });
      }
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
