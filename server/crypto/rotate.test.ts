// Rotation on a real database: k1 -> k2, a crash halfway and the resume, a secret changed during
// a run, a keyring missing the old key, and the CLI end to end on PostgreSQL and on embedded PGlite.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../tests/support/db.js';
import { createDb, type Db } from '../db/client.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { createKeyring, type Keyring, KeyringError, parseMasterKeys } from './keyring.js';
import { assertKeyringCoversStoredSecrets, rotateSecrets } from './rotate.js';

const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const ring = (spec: string) => createKeyring(parseMasterKeys(spec));
const root = path.resolve(import.meta.dirname, '../..');

let database: TestDatabase;
let db: Db;
let dataDir: string;
/** Plaintext of every seeded row, by row id. */
const secrets = new Map<string, string>();

async function seed(target: Db, keyring: Keyring, count: number) {
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    const secret = `sk-or-v1-${randomBytes(12).toString('hex')}`;
    secrets.set(id, secret);
    await target.managedKey.create({
      data: {
        id,
        provider: 'OPENROUTER',
        label: `key ${i}`,
        secretCiphertext: keyring.encrypt(secret, id),
        maskedKey: 'sk-…1234',
        baseUrl: 'https://openrouter.ai/api/v1',
      },
    });
  }
}

/** Master key id of every row, sorted by row id. */
async function storedKeyIds() {
  const rows = await db.managedKey.findMany({ select: { secretCiphertext: true }, orderBy: { id: 'asc' } });
  return rows.map((r) => r.secretCiphertext.split('.')[1]);
}

async function expectAllReadableWith(spec: string) {
  const keyring = ring(spec);
  const rows = await db.managedKey.findMany();
  expect(rows).toHaveLength(secrets.size);
  for (const row of rows) expect(keyring.decrypt(row.secretCiphertext, row.id)).toBe(secrets.get(row.id));
}

/** Runs the CLI as `npm run keyring:rotate` does, with only the environment given. */
function runCli(env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'server/cli/keyring-rotate.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? os.tmpdir(), MPK_DATA_DIR: dataDir, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { maxConnections: database.maxConnections });
  // No secret is generated here (the env sets both), but a stray run must never touch the repo's .data.
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-rotate-'));
});
afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('rotateSecrets', () => {
  beforeEach(async () => {
    await db.managedKey.deleteMany();
    secrets.clear();
    await seed(db, ring(K1), 25);
  });

  it('re-seals every row from k1 to k2, and a second run has nothing to do', async () => {
    const before = await db.managedKey.findMany({ orderBy: { id: 'asc' } });
    expect(await rotateSecrets(db, ring(`${K2},${K1}`), { batchSize: 7 })).toEqual({ rotated: 25, alreadyCurrent: 0 });
    expect(await storedKeyIds()).toEqual(Array(25).fill('k2'));
    await expectAllReadableWith(K2);
    // Only the envelope changed.
    const after = await db.managedKey.findMany({ orderBy: { id: 'asc' } });
    expect(after.map(({ secretCiphertext, updatedAt, ...rest }) => rest)).toEqual(
      before.map(({ secretCiphertext, updatedAt, ...rest }) => rest),
    );
    expect(await rotateSecrets(db, ring(`${K2},${K1}`))).toEqual({ rotated: 0, alreadyCurrent: 25 });
  });

  it('survives a crash halfway: every row stays readable, a resume finishes, a third run rotates nothing', async () => {
    let done = 0;
    const crashed = rotateSecrets(db, ring(`${K2},${K1}`), {
      batchSize: 4,
      afterEach: () => {
        if (++done === 10) throw new Error('power cut');
      },
    });
    await expect(crashed).rejects.toThrow('power cut');
    const ids = await storedKeyIds();
    expect(ids.filter((id) => id === 'k2')).toHaveLength(10);
    // Rows are walked in id order, so the rotated ones are the first ten.
    expect(ids.slice(0, 10)).toEqual(Array(10).fill('k2'));
    await expectAllReadableWith(`${K2},${K1}`);

    expect(await rotateSecrets(db, ring(`${K2},${K1}`), { batchSize: 4 })).toEqual({ rotated: 15, alreadyCurrent: 10 });
    expect(await storedKeyIds()).toEqual(Array(25).fill('k2'));
    await expectAllReadableWith(K2);
    expect(await rotateSecrets(db, ring(`${K2},${K1}`))).toEqual({ rotated: 0, alreadyCurrent: 25 });
  });

  it('never overwrites a secret that changed during the run: that row is skipped', async () => {
    const ids = (await db.managedKey.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);
    const [first, last] = [ids[0]!, ids.at(-1)!];
    // An instance still sealing with k1 sets a new secret on the last row after the batch was read.
    const replaced = 'sk-or-v1-replaced-during-rotation';
    const result = await rotateSecrets(db, ring(`${K2},${K1}`), {
      afterEach: async (keyId) => {
        if (keyId !== first) return;
        secrets.set(last, replaced);
        await db.managedKey.update({
          where: { id: last },
          data: { secretCiphertext: ring(K1).encrypt(replaced, last) },
        });
      },
    });
    expect(result).toEqual({ rotated: 24, alreadyCurrent: 0 });
    expect((await storedKeyIds()).at(-1)).toBe('k1');
    await expectAllReadableWith(`${K2},${K1}`);
    expect(await rotateSecrets(db, ring(`${K2},${K1}`))).toEqual({ rotated: 1, alreadyCurrent: 24 });
    await expectAllReadableWith(K2);
  });

  it('fails loudly, changing nothing, when the keyring lacks a stored key id', async () => {
    const before = await db.managedKey.findMany({ orderBy: { id: 'asc' } });
    const error = await rotateSecrets(db, ring(K2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).message).toMatch(/"k1" \(25 secrets\)/);
    for (const material of [K1, K2, ...secrets.values()])
      expect((error as Error).message).not.toContain(material.split(':').pop());
    expect(await db.managedKey.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it('refuses to rotate a row that does not authenticate, naming the row but not its secret', async () => {
    const victim = (await db.managedKey.findFirstOrThrow({ orderBy: { id: 'asc' } })).id;
    const other = (await db.managedKey.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
    // A ciphertext copied from another row is bound to that row's id.
    const copied = (await db.managedKey.findUniqueOrThrow({ where: { id: other } })).secretCiphertext;
    await db.managedKey.update({ where: { id: victim }, data: { secretCiphertext: copied } });
    const error = await rotateSecrets(db, ring(`${K2},${K1}`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).message).toContain(victim);
    expect((error as Error).message).toMatch(/failed authentication/);
    expect((error as Error).message).not.toContain(secrets.get(other));
  });
});

describe('assertKeyringCoversStoredSecrets', () => {
  beforeAll(async () => {
    await db.managedKey.deleteMany();
    secrets.clear();
  });

  it('passes on an empty table, and when every stored id is listed', async () => {
    await expect(assertKeyringCoversStoredSecrets(db, ring(K2))).resolves.toBeUndefined();
    await seed(db, ring(K1), 3);
    await seed(db, ring(K2), 1);
    await expect(assertKeyringCoversStoredSecrets(db, ring(`${K2},${K1}`))).resolves.toBeUndefined();
    await expect(assertKeyringCoversStoredSecrets(db, ring(`${K1},${K2}`))).resolves.toBeUndefined();
  });

  it('names the missing ids and their counts, and how to fix it', async () => {
    await expect(assertKeyringCoversStoredSecrets(db, ring(K2))).rejects.toThrow(
      'Stored secrets use master key id(s) "k1" (3 secrets) that MPK_MASTER_KEYS does not list; ' +
        'add them (any listed key decrypts) before starting',
    );
    await expect(
      assertKeyringCoversStoredSecrets(db, ring(`k3:${randomBytes(32).toString('base64')}`)),
    ).rejects.toThrow(/"k1" \(3 secrets\), "k2" \(1 secret\)|"k2" \(1 secret\), "k1" \(3 secrets\)/);
  });
});

describe('npm run keyring:rotate', () => {
  const env = { DATABASE_URL: '', MPK_MASTER_KEYS: `${K2},${K1}`, MPK_JWT_SECRET: 'j'.repeat(40) };
  beforeAll(async () => {
    await db.managedKey.deleteMany();
    secrets.clear();
    await seed(db, ring(K1), 25);
    env.DATABASE_URL = database.url;
  });

  it('rotates every row to the first listed key, then reports nothing to do', async () => {
    const first = await runCli(env);
    expect(first, first.stderr).toMatchObject({
      code: 0,
      stdout: 'Rotated 25 secret(s) to key "k2"; 0 already current.\n',
    });
    expect(await storedKeyIds()).toEqual(Array(25).fill('k2'));
    await expectAllReadableWith(K2);

    const second = await runCli(env);
    expect(second, second.stderr).toMatchObject({
      code: 0,
      stdout: 'Rotated 0 secret(s) to key "k2"; 25 already current.\n',
    });
  });

  it('exits 1 with the reason when MPK_MASTER_KEYS lacks a stored key id, without leaking', async () => {
    const k3 = `k3:${randomBytes(32).toString('base64')}`;
    const refused = await runCli({ ...env, MPK_MASTER_KEYS: k3 });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('Cannot rotate: stored secrets use master key id(s) "k2" (25 secrets)');
    for (const material of [K1, K2, k3, ...secrets.values()])
      expect(refused.stderr).not.toContain(material.split(':').pop());
    expect(await storedKeyIds()).toEqual(Array(25).fill('k2'));
  });

  it('exits 1 on a malformed MPK_MASTER_KEYS before touching the database', async () => {
    const refused = await runCli({
      ...env,
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nowhere',
      MPK_MASTER_KEYS: 'k1:tooshort',
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('MPK_MASTER_KEYS key "k1" must be 32 bytes');
    expect(refused.stderr).not.toContain('tooshort');
  });

  it('works on the embedded database in MPK_DATA_DIR/pgdata, and stops it', async () => {
    const embeddedDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-rotate-embedded-'));
    try {
      const embeddedEnv = { MPK_DATA_DIR: embeddedDir, MPK_MASTER_KEYS: `${K2},${K1}`, MPK_JWT_SECRET: 'j'.repeat(40) };
      // The first run creates and migrates the database the server would use.
      expect((await runCli(embeddedEnv)).stdout).toBe('Rotated 0 secret(s) to key "k2"; 0 already current.\n');
      // The CLI exited, so the folder is free to open here and seed under the old key.
      const pg = await startEmbeddedPostgres({ dataDir: path.join(embeddedDir, 'pgdata') });
      const embedded = createDb(pg.url, { maxConnections: 1 });
      try {
        await seed(embedded, ring(K1), 3);
      } finally {
        await embedded.$disconnect();
        await pg.stop();
      }
      const run = await runCli(embeddedEnv);
      expect(run, run.stderr).toMatchObject({
        code: 0,
        stdout: 'Rotated 3 secret(s) to key "k2"; 0 already current.\n',
      });
    } finally {
      await rm(embeddedDir, { recursive: true, force: true });
    }
  });
});
