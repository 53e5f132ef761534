import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyring, KeyringError, parseMasterKeys } from './keyring.js';

const b64 = () => randomBytes(32).toString('base64');
const k1 = b64();
const k2 = b64();
const ring = (spec: string) => createKeyring(parseMasterKeys(spec));

function flip(envelope: string, part: number, byte = 0) {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[byte]! ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('keyring', () => {
  const keyring = ring(`k1:${k1},k0:${k2}`);

  it('round-trips, with a fresh IV each time, naming its key id', () => {
    const a = keyring.encrypt('sk-or-v1-secret ünïcødé 🔑', 'row-1');
    const b = keyring.encrypt('sk-or-v1-secret ünïcødé 🔑', 'row-1');
    expect(a).not.toBe(b);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
    expect(keyring.decrypt(a, 'row-1')).toBe('sk-or-v1-secret ünïcødé 🔑');
    expect(keyring.keyIdOf(a)).toBe('k1');
    expect(a).toMatch(/^mpk1\.k1\.[\w-]{16}\.[\w-]+$/);
    expect(a).not.toContain('secret');
  });

  it('opens envelopes sealed by any listed key, seals with the first', () => {
    const old = ring(`k0:${k2}`).encrypt('legacy', 'row');
    expect(keyring.decrypt(old, 'row')).toBe('legacy');
    expect(keyring.activeKeyId).toBe('k1');
    expect(keyring.keyIds).toEqual(['k1', 'k0']);
  });

  it('detects tampering of the IV, the ciphertext, the tag and the key id', () => {
    const envelope = keyring.encrypt('sk-live-abcdef', 'row');
    const sealedLength = Buffer.from(envelope.split('.')[3]!, 'base64url').length;
    const tampered = [
      flip(envelope, 2),
      flip(envelope, 3, 0),
      flip(envelope, 3, sealedLength - 1),
      envelope.replace('.k1.', '.k0.'),
    ];
    for (const bad of tampered) {
      expect(() => keyring.decrypt(bad, 'row')).toThrow(KeyringError);
      expect(() => keyring.decrypt(bad, 'row')).toThrow(/failed authentication/);
    }
  });

  it('refuses an envelope bound to another row', () => {
    const envelope = keyring.encrypt('sk-live-abcdef', 'row-a');
    expect(() => keyring.decrypt(envelope, 'row-b')).toThrow(/failed authentication/);
  });

  it('refuses an unknown key id loudly, without leaking', () => {
    const foreign = ring(`k9:${b64()}`).encrypt('sk-live-abcdef', 'row');
    expect(() => keyring.decrypt(foreign, 'row')).toThrow(/master key "k9", which is not configured/);
  });

  it('refuses malformed envelopes', () => {
    for (const bad of ['', 'plain', 'mpk1.k1', 'mpk2.k1.aaaa.bbbb', 'mpk1.k1..bbbb', 'mpk1.k 1.aaaa.bbbb', 'mpk1.k1.aaaa.bb.cc', 'mpk1.k1.AAAA.AAAA']) {
      expect(() => keyring.decrypt(bad, 'row'), bad).toThrow(KeyringError);
    }
  });

  it('never puts plaintext or key material in an error', () => {
    const envelope = keyring.encrypt('sk-live-TOPSECRET', 'row');
    const messages = [flip(envelope, 3), 'mpk1.k9.aaaaaaaaaaaaaaaa.bbbb'].map((bad) => {
      try {
        keyring.decrypt(bad, 'row');
        return '';
      } catch (error) {
        return String((error as Error).message) + String((error as Error).stack);
      }
    });
    for (const m of messages) {
      expect(m).not.toContain('TOPSECRET');
      expect(m).not.toContain(k1);
    }
  });
});

describe('parseMasterKeys', () => {
  it('parses id:base64 pairs in order', () => {
    expect(parseMasterKeys(` a:${k1} , b_2:${k2} `).map((k) => k.id)).toEqual(['a', 'b_2']);
  });

  it.each([
    ['empty', '', /empty/],
    ['no id', `:${k1}`, /needs an id/],
    ['bad id', `a b:${k1}`, /needs an id/],
    ['duplicate id', `a:${k1},a:${k2}`, /twice/],
    ['short key', `a:${randomBytes(16).toString('base64')}`, /32 bytes/],
    ['long key', `a:${randomBytes(48).toString('base64')}`, /32 bytes/],
    ['not base64', `a:${'!'.repeat(44)}`, /32 bytes/],
  ])('refuses %s', (_name, spec, message) => {
    let error: unknown;
    try {
      parseMasterKeys(spec);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(k1);
  });
});
