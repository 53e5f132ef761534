// The keyring: AES-256-GCM under versioned master keys. Each envelope names the master key that
// sealed it, so any listed key can open old envelopes while the first one seals new ones.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface MasterKey {
  id: string;
  key: Buffer;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

export interface Keyring {
  readonly activeKeyId: string;
  readonly keyIds: readonly string[];
  /** Seals `plaintext`, bound to `aad` (the owning row's id): a copy on another row won't open. */
  encrypt(plaintext: string, aad: string): string;
  decrypt(envelope: string, aad: string): string;
  keyIdOf(envelope: string): string;
  has(keyId: string): boolean;
}

const VERSION = 'mpk1';
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** `id:base64,id:base64`; the first key seals. Messages never include key material. */
export function parseMasterKeys(spec: string): MasterKey[] {
  const entries = spec
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 0)
    throw new KeyringError('MPK_MASTER_KEYS is empty: expected "id:base64key[,id:base64key...]"');
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    if (!KEY_ID.test(id))
      throw new KeyringError(
        `MPK_MASTER_KEYS entry ${index + 1} needs an id of 1-32 letters, digits, "-" or "_" before ":"`,
      );
    if (seen.has(id)) throw new KeyringError(`MPK_MASTER_KEYS lists key id "${id}" twice`);
    seen.add(id);
    const encoded = entry.slice(colon + 1);
    const key = Buffer.from(encoded, 'base64');
    // Buffer.from skips characters that are not base64, so check the text as well as the length.
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || key.length !== KEY_BYTES) {
      throw new KeyringError(`MPK_MASTER_KEYS key "${id}" must be 32 bytes in base64 (openssl rand -base64 32)`);
    }
    return { id, key };
  });
}

function split(envelope: string) {
  const parts = typeof envelope === 'string' ? envelope.split('.') : [];
  const [version, keyId = '', iv = '', sealed = ''] = parts;
  if (
    parts.length !== 4 ||
    version !== VERSION ||
    !KEY_ID.test(keyId) ||
    !BASE64URL.test(iv) ||
    !BASE64URL.test(sealed)
  ) {
    throw new KeyringError('Malformed secret envelope');
  }
  return { keyId, iv: Buffer.from(iv, 'base64url'), sealed: Buffer.from(sealed, 'base64url') };
}

export function createKeyring(keys: MasterKey[]): Keyring {
  if (keys.length === 0) throw new KeyringError('A keyring needs at least one master key');
  const byId = new Map(keys.map((k) => [k.id, k.key]));
  // Keys built by hand (not through parseMasterKeys) get the same checks, not an opaque error at first use.
  if (byId.size !== keys.length || keys.some((k) => !KEY_ID.test(k.id) || k.key.length !== KEY_BYTES)) {
    throw new KeyringError(
      `Master keys need distinct ids of 1-32 letters, digits, "-" or "_" and ${KEY_BYTES}-byte keys`,
    );
  }
  const active = keys[0]!;
  return {
    activeKeyId: active.id,
    keyIds: keys.map((k) => k.id),
    has: (keyId) => byId.has(keyId),
    keyIdOf: (envelope) => split(envelope).keyId,

    encrypt(plaintext, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', active.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(`${active.id}|${aad}`));
      const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return [VERSION, active.id, iv.toString('base64url'), sealed.toString('base64url')].join('.');
    },

    decrypt(envelope, aad) {
      const { keyId, iv, sealed } = split(envelope);
      const key = byId.get(keyId);
      if (!key) throw new KeyringError(`Secret was sealed with master key "${keyId}", which is not configured`);
      if (iv.length !== IV_BYTES || sealed.length < TAG_BYTES) throw new KeyringError('Malformed secret envelope');
      try {
        // The key id is authenticated too, so relabelling an envelope fails like tampering.
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(`${keyId}|${aad}`));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        return Buffer.concat([
          decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        throw new KeyringError('Secret envelope failed authentication (tampered, or bound to another record)');
      }
    },
  };
}
