// A minted key's usage at its provider, read and stored on its row (providerUsageUsd at
// providerCheckedAt, or providerError). Two callers: reconciliation, every few minutes for each key
// the provider still holds (server/usage/reconcile.ts), and the DELETE job, once more just before it
// deletes the key (runner.ts), so that an ended lease's figure covers its last requests and its
// drift is final. One function, so that both store the same figure the same way.
import type { Logger } from '../core/logger.js';
import { Decimal } from '../core/money.js';
import { reasonOf } from '../core/provider-request.js';
import type { Db, MintedKey, Prisma } from '../db/client.js';
import type { MintingClient } from './providers.js';

export function createUsageReading(deps: { db: Db; logger: Logger }) {
  const { db, logger } = deps;

  /**
   * Reads the key's usage with its minting key's client (made inside the reading, so that a secret
   * that cannot be opened is a failed reading too) and stores it as of `checkedAt`, taken before the
   * request: the figure covers at least what was spent until then, and the lease's earlier keys too
   * (an OpenRouter extension replaces the key, and what the replaced one spent was kept). A failure
   * is stored in MPK's words (method, path, status) with the last figure and its time kept: the
   * drift compares MPK's ledger at that time with it. Whether the usage was read.
   */
  return async function readUsage(
    clientOf: () => MintingClient,
    minted: Pick<MintedKey, 'id' | 'providerKeyId' | 'earlierKeysUsageUsd'>,
    checkedAt: Date,
  ): Promise<boolean> {
    // Never over a later reading: reconciliation and a DELETE job can read the same key at once, and
    // the DELETE's final figure must not give way to an older one (nor to the 404 of a key it deleted).
    const notLater: Prisma.MintedKeyWhereInput = {
      id: minted.id,
      OR: [{ providerCheckedAt: null }, { providerCheckedAt: { lte: checkedAt } }],
    };
    let failure: string;
    try {
      const usage = await clientOf().usage(minted.providerKeyId!);
      if (usage !== null) {
        await db.mintedKey.updateMany({
          where: notLater,
          data: {
            providerUsageUsd: new Decimal(minted.earlierKeysUsageUsd).plus(new Decimal(usage)),
            providerCheckedAt: checkedAt,
            providerError: null,
          },
        });
        return true;
      }
      // Said so, not taken for zero usage.
      failure = 'the provider no longer knows this key (404)';
    } catch (error) {
      // The client words its failures itself: never a provider's body.
      failure = reasonOf(error, 'the usage could not be read');
    }
    logger.warn({ mintedKeyId: minted.id, error: failure }, 'minted key usage reading failed');
    await db.mintedKey.updateMany({ where: notLater, data: { providerError: failure } });
    return false;
  };
}
