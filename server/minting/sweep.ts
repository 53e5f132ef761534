// The orphan sweep: lists each minting key's provider keys and deletes those named with MPK's prefix
// (`mpk-lease-`) that MPK does not know or has ended. A crash between a provider's "created" and
// MPK's record of it, or a replaced key whose deletion failed, leaves such a key; the sweep bounds
// how long it lives. It never touches a key whose lease's CREATE (or OpenRouter's replacement on
// extension) is unfinished, since that key may be the one being recorded, nor a key whose DELETE job
// is waiting, which will delete it (a key is never deleted twice). The runner runs it between jobs,
// never beside one.
import type { AuditService } from '../audit/service.js';
import { isUuid } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { reasonOf } from '../core/provider-request.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/client.js';
import { mintingClient } from './providers.js';

export const MINTED_NAME_PREFIX = 'mpk-lease-';
const SWEEP_ACTOR = { userId: 'system:minting', role: 'ADMIN' as const };

export interface SweptKey {
  mintingKeyId: string;
  providerKeyId: string;
  name: string;
  reason: 'unknown lease' | 'not the lease key' | 'lease ended';
}

interface KnownKey {
  leaseId: string;
  providerKeyId: string | null;
  status: string;
  inFlight: boolean;
  deleting: boolean;
}

export function createOrphanSweep(deps: {
  db: Db;
  keyring: Keyring;
  logger: Logger;
  audit: Pick<AuditService, 'record'>;
}) {
  const { db, keyring, logger, audit } = deps;

  /** Why a listed key is an orphan, or null when it is to be left alone. */
  function verdict(key: { providerKeyId: string }, known: KnownKey | undefined): SweptKey['reason'] | null {
    if (!known) return 'unknown lease';
    if (known.inFlight) return null;
    if (known.providerKeyId !== key.providerKeyId) return 'not the lease key';
    if (known.deleting) return null;
    return known.status === 'DELETED' || known.status === 'EXPIRED' ? 'lease ended' : null;
  }

  /** One sweep over every minting key; what it deleted. A key whose listing fails is tried next time. */
  return async function sweep(): Promise<SweptKey[]> {
    const swept: SweptKey[] = [];
    const mintingKeys = await db.managedKey.findMany({
      where: { mode: 'MINT' },
      select: { id: true, provider: true, baseUrl: true, secretCiphertext: true },
    });
    for (const minting of mintingKeys) {
      const client = mintingClient(
        minting.provider,
        minting.baseUrl,
        keyring.decrypt(minting.secretCiphertext, minting.id),
      );
      let listed: Awaited<ReturnType<typeof client.list>>;
      try {
        listed = (await client.list()).filter((k) => k.name.startsWith(MINTED_NAME_PREFIX));
      } catch (error) {
        const reason = reasonOf(error, 'unexpected failure');
        logger.warn({ mintingKeyId: minting.id, reason }, 'orphan sweep could not list the provider keys');
        continue;
      }
      if (listed.length === 0) continue;
      const leaseIds = [...new Set(listed.map((k) => k.name.slice(MINTED_NAME_PREFIX.length)).filter(isUuid))];
      // Read after the listing: a key made before it is recorded by now, or its CREATE is unfinished.
      const rows = await db.$queryRaw<KnownKey[]>`
        SELECT m."leaseId"::text AS "leaseId", m."providerKeyId", m.status::text AS status,
               EXISTS (SELECT 1 FROM "ProviderJob" j WHERE j."mintedKeyId" = m.id AND j.status <> 'DONE'
                         AND (j.kind = 'CREATE' OR (j.kind = 'SET_EXPIRY' AND ${minting.provider}::text = 'OPENROUTER'))) AS "inFlight",
               EXISTS (SELECT 1 FROM "ProviderJob" j WHERE j."mintedKeyId" = m.id AND j.status <> 'DONE'
                         AND j.kind = 'DELETE') AS deleting
        FROM "MintedKey" m WHERE m."mintingKeyId" = ${minting.id}::uuid AND m."leaseId" = ANY(${leaseIds}::uuid[])`;
      const known = new Map(rows.map((r) => [r.leaseId, r]));
      for (const key of listed) {
        const reason = verdict(key, known.get(key.name.slice(MINTED_NAME_PREFIX.length)));
        if (!reason) continue;
        try {
          await client.remove(key.providerKeyId);
        } catch (error) {
          const why = reasonOf(error, 'unexpected failure');
          logger.warn(
            { mintingKeyId: minting.id, providerKeyId: key.providerKeyId, reason: why },
            'orphan not deleted',
          );
          continue;
        }
        const entry: SweptKey = { mintingKeyId: minting.id, providerKeyId: key.providerKeyId, name: key.name, reason };
        swept.push(entry);
        await db.$transaction((tx) =>
          audit.record(tx, SWEEP_ACTOR, {
            action: 'mintedKey.orphanDeleted',
            targetType: 'ManagedKey',
            targetId: minting.id,
            details: { providerKeyId: key.providerKeyId, name: key.name, reason },
          }),
        );
        logger.info(entry, 'deleted an orphaned minted key at the provider');
      }
    }
    return swept;
  };
}
