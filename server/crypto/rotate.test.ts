// Rotation on a real database: k1 -> k2, a crash halfway, resume, and the CLI end to end.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../tests/support/db.js';
import { createDb, type Db } from '../db/client.js';
import { createKeyring, KeyringError, parseMasterKeys } from './keyring.js';
import { assertKeyringCoversStoredSecrets, rotateSecrets } from './rotate.js';

const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const ring = (spec: string) => createKeyring(parseMasterKeys(spec));

let database: TestDatabase;
let db: Db;
const secrets = new Map<string, string>();

async function keyIds() {
  const rows = await db.managedKey.findMany({ select: { secretCiphertext: true } });
  return rows.map((r) => r.secretCiphertext.split('.')[1]).sort();
}

async function allReadableWith(spec: string) {
  const keyring = ring(spec);
  const rows = await db.managedKey.findMany();
  for (const row of rows) expect(keyring.decrypt(row.secretCiphertext, row.id)).toBe(secrets.get(row.id));
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { maxConnections: 4 });
  const keyring = ring(K1);
  for (let i = 0; i < 25; i++) {
    const id = randomUUID();
    const secret = `sk-or-v1-${randomBytes(12).toString('hex')}`;
    secrets.set(id, secret);
    await db.managedKey.create({
      data: { id, provider: 'OPENROUTER', label: `key ${i}`, secretCiphertext: keyring.encrypt(secret, id), maskedKey: 'sk-...1234', baseUrl: 'https://openrouter.ai/api/v1' },
    });
  }
});
afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
});

describe('rotation', () => {
  it('refuses to rotate with a keyring that lacks the stored key id, changing nothing', async () => {
    const before = await db.managedKey.findMany({ orderBy: { id: 'asc' } });
    await expect(rotateSecrets(db, ring(K2))).rejects.toThrow(/"k1" \(25 secrets\)/);
    await expect(assertKeyringCoversStoredSecrets(db, ring(K2))).rejects.toThrow(KeyringError);
    await expect(assertKeyringCoversStoredSecrets(db, ring(`${K2},${K1}`))).resolves.toBeUndefined();
    expect(await db.managedKey.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it('survives a crash halfway, then resumes to finish, and a third run has nothing to do', async () => {
    let done = 0;
    const crash = rotateSecrets(db, ring(`${K2},${K1}`), {
      batchSize: 4,
      afterEach: () => {
        if (++done === 10) throw new Error('power cut');
      },
    });
    await expect(crash).rejects.toThrow('power cut');
    expect((await keyIds()).filter((id) => id === 'k2')).toHaveLength(10);
    await allReadableWith(`${K2},${K1}`);

    expect(await rotateSecrets(db, ring(`${K2},${K1}`), { batchSize: 4 })).toEqual({ rotated: 15, alreadyCurrent: 10 });
    expect(new Set(await keyIds())).toEqual(new Set(['k2']));
    await allReadableWith(K2);
    expect(await rotateSecrets(db, ring(`${K2},${K1}`))).toEqual({ rotated: 0, alreadyCurrent: 25 });
  });

  it('the CLI rotates back to k1 and is idempotent', async () => {
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const root = path.resolve(import.meta.dirname, '../..');
        const child = spawn(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), 'server/cli/keyring-rotate.ts'], {
          cwd: root,
          env: { PATH: process.env.PATH, DATABASE_URL: database.url, MPK_MASTER_KEYS: `${K1},${K2}`, MPK_JWT_SECRET: 'x'.repeat(40) },
        });
        let out = '';
        child.stdout.on('data', (c) => (out += c));
        child.stderr.on('data', (c) => (out += c));
        child.on('exit', (code) => resolve({ code, out }));
      });
    const first = await run();
    expect(first).toMatchObject({ code: 0 });
    expect(first.out).toContain('Rotated 25 secret(s) to key "k1"; 0 already current.');
    await allReadableWith(K1);
    const second = await run();
    expect(second.out).toContain('Rotated 0 secret(s) to key "k1"; 25 already current.');
  });
});
