// The key registry: admins register provider keys into the pool. The plaintext secret exists
// only on its way into the keyring and in `revealSecret`, which the lease resolution path calls.
import type { AuditService } from '../audit/service.js';
import { diffFields } from '../audit/service.js';
import { authorize } from '../auth/permissions.js';
import type { Clock } from '../core/clock.js';
import { notFound } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { isUuid, uuidv7 } from '../core/ids.js';
import { type PageRequest, pageOfModel, timeKeyset } from '../core/paging.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db, ManagedKey, Tx } from '../db/client.js';
import type { Provider } from '../db/enums.js';
import { estimatedRows } from '../db/estimate.js';
import {
  type CreateKeyInput,
  maskKey,
  type UpdateKeyInput,
  validateApiKey,
  validateCreate,
  validateReason,
  validateUpdate,
} from './input.js';
import { currentSpend } from './spend.js';

export interface KeyFilter extends PageRequest {
  provider?: Provider | null;
  status?: 'ACTIVE' | 'DISABLED' | null;
}

export function createKeyService(deps: {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  audit: AuditService;
  /** Told after a key's settings, status or secret changed (the proxy's admission cache listens). */
  onChanged?: (keyId: string) => void;
}) {
  const { db, keyring, clock, audit } = deps;
  const changed = <T>(id: string, result: T): T => {
    deps.onChanged?.(id);
    return result;
  };

  /** Locks the key's row for the rest of the transaction; NOT_FOUND when there is none. */
  async function lockKey(tx: Tx, id: string): Promise<ManagedKey> {
    if (!isUuid(id)) throw notFound('Managed key');
    await tx.$queryRaw`SELECT 1 FROM "ManagedKey" WHERE id = ${id}::uuid FOR UPDATE`;
    const key = await tx.managedKey.findUnique({ where: { id } });
    if (!key) throw notFound('Managed key');
    return key;
  }

  /** Sets the key's status inside the caller's transaction (which also ends its leases). */
  async function setStatusInTx(
    tx: Tx,
    admin: Identity,
    id: string,
    status: 'ACTIVE' | 'DISABLED',
    reason: string | null,
  ) {
    const key = await lockKey(tx, id);
    const disabledReason = status === 'DISABLED' ? reason : null;
    const updated = await tx.managedKey.update({ where: { id }, data: { status, disabledReason } });
    await audit.record(tx, admin, {
      action: status === 'DISABLED' ? 'managedKey.disable' : 'managedKey.enable',
      targetType: 'ManagedKey',
      targetId: id,
      details: { changes: diffFields(key, { status, disabledReason }) } as never,
    });
    return updated;
  }

  return {
    lockKey,

    async create(actor: Identity | null, input: CreateKeyInput) {
      const admin = authorize(actor, 'createManagedKey');
      const { apiKey, ...fields } = validateCreate(input);
      const id = uuidv7();
      return db.$transaction(async (tx) => {
        const key = await tx.managedKey.create({
          // The clock's time, not the database's: the same clock stamps everything else about the key.
          data: {
            id,
            ...fields,
            secretCiphertext: keyring.encrypt(apiKey, id),
            maskedKey: maskKey(apiKey),
            createdAt: clock.now(),
          },
        });
        await audit.record(tx, admin, {
          action: 'managedKey.create',
          targetType: 'ManagedKey',
          targetId: id,
          details: {
            provider: key.provider,
            label: key.label,
            maskedKey: key.maskedKey,
            baseUrl: key.baseUrl,
            dailyLimitUsd: key.dailyLimitUsd?.toString() ?? null,
            monthlyLimitUsd: key.monthlyLimitUsd?.toString() ?? null,
            maxActiveLeases: key.maxActiveLeases,
            mode: key.mode,
            maxMintedKeys: key.maxMintedKeys,
          },
        });
        return key;
      });
    },

    async update(actor: Identity | null, id: string, input: UpdateKeyInput) {
      const admin = authorize(actor, 'updateManagedKey');
      const changes = validateUpdate(input);
      const updated = await db.$transaction(async (tx) => {
        const key = await lockKey(tx, id);
        return audit.recordUpdate(
          tx,
          admin,
          { action: 'managedKey.update', targetType: 'ManagedKey', targetId: id },
          {
            before: key,
            changes: changes as Partial<ManagedKey>,
            write: () => tx.managedKey.update({ where: { id }, data: changes }),
          },
        );
      });
      return changed(id, updated);
    },

    setStatusInTx,
    validateReason,

    async enable(actor: Identity | null, id: string) {
      const admin = authorize(actor, 'enableManagedKey');
      return changed(id, await db.$transaction((tx) => setStatusInTx(tx, admin, id, 'ACTIVE', null)));
    },

    async rotateSecret(actor: Identity | null, id: string, newApiKey: string) {
      const admin = authorize(actor, 'rotateManagedKeySecret');
      const rotated = await db.$transaction(async (tx) => {
        const key = await lockKey(tx, id);
        const apiKey = validateApiKey(newApiKey, key.provider);
        const maskedKey = maskKey(apiKey);
        const updated = await tx.managedKey.update({
          where: { id },
          data: { secretCiphertext: keyring.encrypt(apiKey, id), maskedKey },
        });
        await audit.record(tx, admin, {
          action: 'managedKey.rotateSecret',
          targetType: 'ManagedKey',
          targetId: id,
          details: { changes: { maskedKey: { from: key.maskedKey, to: maskedKey } } },
        });
        return updated;
      });
      return changed(id, rotated);
    },

    async get(actor: Identity | null, id: string) {
      authorize(actor, 'managedKey');
      if (!isUuid(id)) return null;
      return db.managedKey.findUnique({ where: { id } });
    },

    async list(actor: Identity | null, filter: KeyFilter) {
      authorize(actor, 'managedKeys');
      // Prisma leaves out a field whose filter is undefined.
      const where = { provider: filter.provider ?? undefined, status: filter.status ?? undefined };
      return pageOfModel(filter, {
        model: db.managedKey,
        estimateAll: () => estimatedRows(db, 'ManagedKey'),
        where,
        keyset: timeKeyset('createdAt'),
        positionOf: (k: ManagedKey) => ({ at: k.createdAt, id: k.id }),
      });
    },

    /** Spend in the current UTC day and month, and what remains under the limits. */
    spendOf: (key: ManagedKey) => currentSpend(key, clock.now()),

    /** The plaintext provider key: only for the lease resolution path, never for a response. */
    // A failure here is an operator's problem (a missing master key): it stays unexpected, so the
    // client sees INTERNAL_SERVER_ERROR and the log says why.
    revealSecret: (key: Pick<ManagedKey, 'id' | 'secretCiphertext'>): string =>
      keyring.decrypt(key.secretCiphertext, key.id),
  };
}
export type KeyService = ReturnType<typeof createKeyService>;
