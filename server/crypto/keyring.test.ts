import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyring, KeyringError, parseMasterKeys } from './keyring.js';

const b64 = () => randomBytes(32).toString('base64');
const k1 = b64();
const k0 = b64();
const ring = (spec: string) => createKeyring(parseMasterKeys(spec));
const SECRET = 'sk-or-v1-TOPSECRET-0123456789';

/** Flips one bit of byte `byte` (negative counts from the end) of envelope part `part`. */
function flip(envelope: string, part: number, byte: number) {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[(byte + bytes.length) % bytes.length]! ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

/** The message and stack of what `fn` throws, failing the test unless it is a KeyringError. */
function keyringError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).name).toBe('KeyringError');
    return `${(error as Error).message}\n${(error as Error).stack}`;
  }
  throw new Error('expected a KeyringError');
}

function expectNoLeak(text: string) {
  for (const material of [SECRET, 'TOPSECRET', k1, k0]) expect(text).not.toContain(material);
}

describe('keyring', () => {
  const keyring = ring(`k1:${k1},k0:${k0}`);

  it('round-trips ASCII, unicode and the empty string', () => {
    for (const plaintext of [SECRET, 'ünïcødé 🔑 ключ 鍵', '']) {
      expect(keyring.decrypt(keyring.encrypt(plaintext, 'row-1'), 'row-1')).toBe(plaintext);
    }
  });

  it('uses a fresh 96-bit IV each time and names its key id', () => {
    const a = keyring.encrypt(SECRET, 'row-1');
    const b = keyring.encrypt(SECRET, 'row-1');
    expect(a).not.toBe(b);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
    expect(Buffer.from(a.split('.')[2]!, 'base64url')).toHaveLength(12);
    // Ciphertext plus the 128-bit tag.
    expect(Buffer.from(a.split('.')[3]!, 'base64url')).toHaveLength(Buffer.byteLength(SECRET) + 16);
    expect(a).toMatch(/^mpk1\.k1\.[\w-]{16}\.[\w-]+$/);
    expect(keyring.keyIdOf(a)).toBe('k1');
    expectNoLeak(a);
  });

  it('seals with the first key and opens envelopes sealed by any listed key', () => {
    expect(keyring.activeKeyId).toBe('k1');
    expect(keyring.keyIds).toEqual(['k1', 'k0']);
    expect([keyring.has('k0'), keyring.has('k9')]).toEqual([true, false]);
    const old = ring(`k0:${k0}`).encrypt('legacy', 'row');
    expect(keyring.keyIdOf(old)).toBe('k0');
    expect(keyring.decrypt(old, 'row')).toBe('legacy');
    // Order does not matter for opening: a keyring listing k0 first opens k1's envelopes too.
    expect(ring(`k0:${k0},k1:${k1}`).decrypt(keyring.encrypt('new', 'row'), 'row')).toBe('new');
  });

  it('detects tampering of the IV, the ciphertext, the tag and the key id', () => {
    const envelope = keyring.encrypt(SECRET, 'row');
    const tampered = {
      iv: flip(envelope, 2, 0),
      ciphertext: flip(envelope, 3, 0),
      tag: flip(envelope, 3, -1),
      keyId: envelope.replace('.k1.', '.k0.'),
    };
    for (const [field, bad] of Object.entries(tampered)) {
      expect(bad, field).not.toBe(envelope);
      const message = keyringError(() => keyring.decrypt(bad, 'row'));
      expect(message, field).toMatch(/failed authentication/);
      expectNoLeak(message);
    }
  });

  it('authenticates the key id itself, even when two ids share key material', () => {
    const twins = ring(`a:${k1},b:${k1}`);
    const relabelled = twins.encrypt(SECRET, 'row').replace('.a.', '.b.');
    expect(keyringError(() => twins.decrypt(relabelled, 'row'))).toMatch(/failed authentication/);
  });

  it('refuses an envelope bound to another row', () => {
    const envelope = keyring.encrypt(SECRET, 'row-a');
    const message = keyringError(() => keyring.decrypt(envelope, 'row-b'));
    expect(message).toMatch(/failed authentication/);
    expectNoLeak(message);
  });

  it('refuses an unknown key id, naming it', () => {
    const foreign = ring(`k9:${b64()}`).encrypt(SECRET, 'row');
    const message = keyringError(() => keyring.decrypt(foreign, 'row'));
    expect(message).toMatch(/master key "k9", which is not configured/);
    expectNoLeak(message);
  });

  it.each([
    '',
    'plain',
    'mpk1.k1',
    'mpk1.k1.aaaa',
    'mpk2.k1.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb',
    'mpk1..aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb',
    'mpk1.k 1.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb',
    'mpk1.k1..bbbbbbbbbbbbbbbbbbbbbb',
    'mpk1.k1.aaaaaaaaaaaaaaaa.',
    'mpk1.k1.aaaaaaaaaaaaaaaa.bb.cc',
    'mpk1.k1.aaaa+aaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb',
  ])('refuses the malformed envelope %j in keyIdOf and decrypt', (bad) => {
    expect(keyringError(() => keyring.keyIdOf(bad))).toMatch(/Malformed/);
    expect(keyringError(() => keyring.decrypt(bad, 'row'))).toMatch(/Malformed/);
  });

  it('refuses well-formed envelopes whose IV or sealed part has the wrong length', () => {
    // An 8-byte IV, and a sealed part shorter than the tag.
    for (const bad of ['mpk1.k1.AAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'mpk1.k1.AAAAAAAAAAAAAAAA.AAAA']) {
      expect(keyring.keyIdOf(bad)).toBe('k1');
      expect(keyringError(() => keyring.decrypt(bad, 'row'))).toMatch(/Malformed/);
    }
  });

  it('refuses to build from no keys, duplicate ids or keys of the wrong length', () => {
    const key = randomBytes(32);
    expect(keyringError(() => createKeyring([]))).toMatch(/at least one/);
    expect(
      keyringError(() =>
        createKeyring([
          { id: 'a', key },
          { id: 'a', key },
        ]),
      ),
    ).toMatch(/distinct ids/);
    expect(keyringError(() => createKeyring([{ id: 'a', key: randomBytes(16) }]))).toMatch(/32-byte/);
  });
});

describe('parseMasterKeys', () => {
  it('parses id:base64 pairs in order, ignoring blanks around them', () => {
    const keys = parseMasterKeys(` a:${k1} , b_2-X:${k0} `);
    expect(keys.map((k) => k.id)).toEqual(['a', 'b_2-X']);
    expect(keys[0]!.key.equals(Buffer.from(k1, 'base64'))).toBe(true);
  });

  const other = b64();
  it.each([
    ['empty', '', /empty/],
    ['only commas', ' , ', /empty/],
    ['no id', `:${other}`, /entry 1 needs an id/],
    ['no colon', other, /entry 1 needs an id/],
    ['a bad id', `a:${k1},a b:${other}`, /entry 2 needs an id/],
    ['an id too long', `${'x'.repeat(33)}:${other}`, /needs an id/],
    ['duplicate ids', `a:${k1},a:${other}`, /"a" twice/],
    ['a short key', `a:${randomBytes(16).toString('base64')}`, /"a" must be 32 bytes/],
    ['a long key', `a:${randomBytes(48).toString('base64')}`, /"a" must be 32 bytes/],
    ['bad base64', `a:${other.slice(0, 20)}!${other.slice(21)}`, /"a" must be 32 bytes/],
    ['no key', 'a:', /"a" must be 32 bytes/],
  ])('refuses %s, without echoing key material', (_name, spec, message) => {
    const text = keyringError(() => parseMasterKeys(spec));
    expect(text).toMatch(message);
    // Every base64 part of the spec, and any long run of it, stays out of the message.
    for (const part of spec.split(/[,:]/).filter((p) => p.trim().length > 8))
      expect(text).not.toContain(part.trim().slice(0, 12));
  });
});
