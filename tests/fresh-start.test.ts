// The zero-setup promise: `npm start` with no environment at all serves GraphQL on an embedded
// database with generated dev secrets, and a restart finds the data again.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../server/auth/authenticator.js';
import { tempDir } from './support/config.js';
import { postGraphQL } from './support/graphql.js';
import { killServers, spawnServer } from './support/process.js';

const dirs: { remove(): Promise<void> }[] = [];
/** A data folder for this test, removed after all of them. */
const dataFolder = async (prefix: string) => {
  const dir = await tempDir(prefix);
  dirs.push(dir);
  return dir.path;
};

afterAll(async () => {
  await killServers();
  for (const dir of dirs) await dir.remove();
});

describe('fresh start', () => {
  it('starts with no environment, keeps data across a restart, and stops cleanly on SIGTERM', async () => {
    const dataDir = await dataFolder('mpk-fresh-');
    const started = Date.now();
    const first = await spawnServer({ MPK_DATA_DIR: dataDir });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(first.output()).toMatch(/MPK_JWT_SECRET is not set: using a generated development value/);
    expect(first.output()).toMatch(/MPK_MASTER_KEYS is not set/);

    const secretsFile = path.join(dataDir, 'dev-secrets.json');
    expect((await stat(secretsFile)).mode & 0o777).toBe(0o600);
    const { jwtSecret } = JSON.parse(await readFile(secretsFile, 'utf8'));

    const health = await fetch(`${first.url}/readyz`);
    expect(await health.json()).toMatchObject({ status: 'ready' });
    const admin = await mintToken({ secret: jwtSecret, sub: 'root', role: 'ADMIN' });
    const created = await postGraphQL(
      first.url,
      `mutation {
        createManagedKey(
          input: { provider: OPENROUTER, label: "survives", apiKey: "sk-or-v1-restart-check-0001" }
        ) { id }
      }`,
      {},
      admin,
    );
    expect(created.errors).toBeUndefined();
    const graphiql = await fetch(`${first.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(graphiql.status).toBe(200);
    expect(await first.stop()).toBe(0);

    const second = await spawnServer({ MPK_DATA_DIR: dataDir });
    const listed = await postGraphQL(
      second.url,
      `{ managedKeys { totalCount edges { node { id label maskedKey } } } }`,
      {},
      admin,
    );
    expect(listed.data.managedKeys.edges).toEqual([
      { node: { id: created.data.createManagedKey.id, label: 'survives', maskedKey: 'sk-or-...0001' } },
    ]);
    expect(second.output()).not.toMatch(/applied migrations/);
    expect(await second.stop()).toBe(0);
  }, 120_000);

  it('refuses to start, clearly, when a stored secret names a master key it does not have', async () => {
    const dir = await dataFolder('mpk-keyring-');
    const env = { MPK_DATA_DIR: dir, MPK_JWT_SECRET: 'j'.repeat(40) };
    const k1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
    const k2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;
    const first = await spawnServer({ ...env, MPK_MASTER_KEYS: k1 });
    const admin = await mintToken({ secret: env.MPK_JWT_SECRET, sub: 'root', role: 'ADMIN' });
    const created = await postGraphQL(
      first.url,
      `mutation {
        createManagedKey(input: { provider: VENICE, label: "k1 key", apiKey: "venice-key-000000001" }) { id }
      }`,
      {},
      admin,
    );
    expect(created.errors).toBeUndefined();
    expect(await first.stop()).toBe(0);

    const refused = await spawnServer({ ...env, MPK_MASTER_KEYS: k2 }).then(
      () => 'started',
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/exited with 1/);
    expect(refused).toMatch(/master key id\(s\) "k1" \(1 secret\)/);
    expect(refused).not.toContain(Buffer.alloc(32, 1).toString('base64'));

    // Listing both keys (k2 first) starts fine: old secrets stay readable until rotated.
    const both = await spawnServer({ ...env, MPK_MASTER_KEYS: `${k2},${k1}` });
    expect(await both.stop()).toBe(0);
  }, 120_000);
});
