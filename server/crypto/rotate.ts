// Re-encryption of stored secrets under the active master key, and the start-up check that every
// stored secret names a master key the server has.
import type { Db } from '../db/client.js';
import { KeyringError, type Keyring } from './keyring.js';

export interface RotateResult {
  rotated: number;
  alreadyCurrent: number;
}

async function storedKeyIds(db: Db): Promise<Map<string, number>> {
  const rows = await db.$queryRaw<{ keyId: string; n: bigint }[]>`
    SELECT split_part("secretCiphertext", '.', 2) AS "keyId", count(*) AS n FROM "ManagedKey" GROUP BY 1`;
  return new Map(rows.map((r) => [r.keyId, Number(r.n)]));
}

function unknownIds(counts: Map<string, number>, keyring: Keyring) {
  return [...counts].filter(([id]) => !keyring.has(id));
}

export async function assertKeyringCoversStoredSecrets(db: Db, keyring: Keyring): Promise<void> {
  const missing = unknownIds(await storedKeyIds(db), keyring);
  if (missing.length) {
    const names = missing.map(([id, n]) => `"${id}" (${n} secret${n === 1 ? '' : 's'})`).join(', ');
    throw new KeyringError(`Stored secrets use master key id(s) ${names} that MPK_MASTER_KEYS does not list; add them (any listed key decrypts) before starting`);
  }
}

/**
 * Re-seals every secret not yet under the active key, one row at a time with a conditional update,
 * so a crash leaves each row readable under its old or its new key and a re-run finishes the rest.
 */
export async function rotateSecrets(
  db: Db,
  keyring: Keyring,
  options: { batchSize?: number; afterEach?: (keyId: string) => void | Promise<void> } = {},
): Promise<RotateResult> {
  const counts = await storedKeyIds(db);
  const missing = unknownIds(counts, keyring);
  if (missing.length) {
    const names = missing.map(([id, n]) => `"${id}" (${n} secret${n === 1 ? '' : 's'})`).join(', ');
    throw new KeyringError(`Cannot rotate: stored secrets use master key id(s) ${names} that MPK_MASTER_KEYS does not list`);
  }
  const active = keyring.activeKeyId;
  const batchSize = options.batchSize ?? 100;
  let rotated = 0;
  let lastId = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const batch = await db.$queryRaw<{ id: string; secretCiphertext: string }[]>`
      SELECT id::text AS id, "secretCiphertext" FROM "ManagedKey"
      WHERE split_part("secretCiphertext", '.', 2) <> ${active} AND id > ${lastId}::uuid
      ORDER BY id LIMIT ${batchSize}`;
    if (batch.length === 0) break;
    for (const row of batch) {
      const resealed = keyring.encrypt(keyring.decrypt(row.secretCiphertext, row.id), row.id);
      const { count } = await db.managedKey.updateMany({
        where: { id: row.id, secretCiphertext: row.secretCiphertext },
        data: { secretCiphertext: resealed },
      });
      rotated += count;
      if (count) await options.afterEach?.(row.id);
    }
    lastId = batch.at(-1)!.id;
  }
  return { rotated, alreadyCurrent: counts.get(active) ?? 0 };
}
