// Re-encryption of stored secrets under the active master key, and the start-up check that every
// stored secret names a master key the server has.
import { type Db, Prisma } from '../db/client.js';
import { type Keyring, KeyringError } from './keyring.js';

export interface RotateResult {
  rotated: number;
  /** Rows that were already under the active key when the run started. */
  alreadyCurrent: number;
}

export interface RotateOptions {
  batchSize?: number;
  /** Called with the managed key's id after its row is rewritten; tests throw here to simulate a crash. */
  afterEach?: (keyId: string) => void | Promise<void>;
}

/** Stored secrets per master key id, read from the envelope prefix: no decryption needed. */
async function storedKeyIds(db: Db): Promise<Map<string, number>> {
  const rows = await db.$queryRaw<{ keyId: string; n: bigint }[]>`
    SELECT split_part("secretCiphertext", '.', 2) AS "keyId", count(*) AS n FROM "ManagedKey" GROUP BY 1`;
  return new Map(rows.map((r) => [r.keyId, Number(r.n)]));
}

/** `"k0" (3 secrets), "k1" (1 secret)` for the ids the keyring lacks, or undefined when it has them all. */
function describeMissing(counts: Map<string, number>, keyring: Keyring): string | undefined {
  const missing = [...counts].filter(([id]) => !keyring.has(id));
  if (missing.length === 0) return undefined;
  return missing.map(([id, n]) => `"${id}" (${n} secret${n === 1 ? '' : 's'})`).join(', ');
}

export async function assertKeyringCoversStoredSecrets(db: Db, keyring: Keyring): Promise<void> {
  const missing = describeMissing(await storedKeyIds(db), keyring);
  if (missing) {
    throw new KeyringError(
      `Stored secrets use master key id(s) ${missing} that MPK_MASTER_KEYS does not list; ` +
        `add them (any listed key decrypts) before starting`,
    );
  }
}

/**
 * Re-seals every secret not yet under the active key, one row at a time with a conditional update,
 * so a crash leaves each row readable under its old or its new key and a re-run finishes the rest.
 * A row whose secret changed since it was read is left alone: its new value wins.
 */
export async function rotateSecrets(db: Db, keyring: Keyring, options: RotateOptions = {}): Promise<RotateResult> {
  const counts = await storedKeyIds(db);
  // Checked up front so that a keyring missing an old key fails before changing anything.
  const missing = describeMissing(counts, keyring);
  if (missing)
    throw new KeyringError(
      `Cannot rotate: stored secrets use master key id(s) ${missing} that MPK_MASTER_KEYS does not list`,
    );

  const active = keyring.activeKeyId;
  const batchSize = options.batchSize ?? 100;
  let rotated = 0;
  let lastId: string | undefined;
  for (;;) {
    // Keyset paging, so skipped rows (changed underneath) are not read again in the same run.
    const batch = await db.$queryRaw<{ id: string; secretCiphertext: string }[]>`
      SELECT id::text AS id, "secretCiphertext" FROM "ManagedKey"
      WHERE split_part("secretCiphertext", '.', 2) <> ${active}
        ${lastId ? Prisma.sql`AND id > ${lastId}::uuid` : Prisma.empty}
      ORDER BY id LIMIT ${batchSize}`;
    if (batch.length === 0) break;
    for (const row of batch) {
      let plaintext: string;
      try {
        plaintext = keyring.decrypt(row.secretCiphertext, row.id);
      } catch (error) {
        throw new KeyringError(`Cannot rotate managed key ${row.id}: ${(error as Error).message}`);
      }
      const { count } = await db.managedKey.updateMany({
        where: { id: row.id, secretCiphertext: row.secretCiphertext },
        data: { secretCiphertext: keyring.encrypt(plaintext, row.id) },
      });
      if (count === 0) continue;
      rotated++;
      await options.afterEach?.(row.id);
    }
    lastId = batch.at(-1)!.id;
  }
  return { rotated, alreadyCurrent: counts.get(active) ?? 0 };
}
