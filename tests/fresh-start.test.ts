// The zero-setup promise: `npm start` with no environment at all serves GraphQL on an embedded
// database with generated dev secrets, and a restart finds the data again.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../server/auth/authenticator.js';

const root = path.resolve(import.meta.dirname, '..');
const children: ChildProcess[] = [];
let dataDir: string;

/** Starts `tsx server/main.ts` in a clean environment; resolves with its URL once it listens. */
function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)\/graphql"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
}

function stopServer(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

async function gql(url: string, token: string, query: string, variables?: object) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json() as Promise<any>;
}

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('fresh start', () => {
  it('starts with no environment, keeps data across a restart, and stops cleanly on SIGTERM', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-fresh-'));
    const started = Date.now();
    const first = await startServer({ MPK_DATA_DIR: dataDir });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(first.output()).toMatch(/MPK_JWT_SECRET is not set: using a generated development value/);
    expect(first.output()).toMatch(/MPK_MASTER_KEYS is not set/);

    const secretsFile = path.join(dataDir, 'dev-secrets.json');
    expect((await stat(secretsFile)).mode & 0o777).toBe(0o600);
    const { jwtSecret } = JSON.parse(await readFile(secretsFile, 'utf8'));

    const health = await fetch(`${first.url}/readyz`);
    expect(await health.json()).toMatchObject({ status: 'ready' });
    const admin = await mintToken({ secret: jwtSecret, sub: 'root', role: 'ADMIN' });
    const created = await gql(first.url, admin, `mutation { createManagedKey(input: { provider: OPENROUTER, label: "survives", apiKey: "sk-or-v1-restart-check-0001" }) { id } }`);
    expect(created.errors).toBeUndefined();
    const graphiql = await fetch(`${first.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(graphiql.status).toBe(200);
    expect(await stopServer(first.child)).toBe(0);

    const second = await startServer({ MPK_DATA_DIR: dataDir });
    const listed = await gql(second.url, admin, `{ managedKeys { totalCount edges { node { id label maskedKey } } } }`);
    expect(listed.data.managedKeys.edges).toEqual([
      { node: { id: created.data.createManagedKey.id, label: 'survives', maskedKey: 'sk-or-...0001' } },
    ]);
    expect(second.output()).not.toMatch(/applied migrations/);
    expect(await stopServer(second.child)).toBe(0);
  }, 120_000);

  it('refuses to start, clearly, when a stored secret names a master key it does not have', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mpk-keyring-'));
    try {
      const env = { MPK_DATA_DIR: dir, MPK_JWT_SECRET: 'j'.repeat(40) };
      const k1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
      const k2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;
      const first = await startServer({ ...env, MPK_MASTER_KEYS: k1 });
      const admin = await mintToken({ secret: env.MPK_JWT_SECRET, sub: 'root', role: 'ADMIN' });
      const created = await gql(first.url, admin, `mutation { createManagedKey(input: { provider: VENICE, label: "k1 key", apiKey: "venice-key-000000001" }) { id } }`);
      expect(created.errors).toBeUndefined();
      expect(await stopServer(first.child)).toBe(0);

      const refused = await startServer({ ...env, MPK_MASTER_KEYS: k2 }).then(
        () => 'started',
        (error: Error) => error.message,
      );
      expect(refused).toMatch(/exited with 1/);
      expect(refused).toMatch(/master key id\(s\) "k1" \(1 secret\)/);
      expect(refused).not.toContain(Buffer.alloc(32, 1).toString('base64'));

      // Listing both keys (k2 first) starts fine: old secrets stay readable until rotated.
      const both = await startServer({ ...env, MPK_MASTER_KEYS: `${k2},${k1}` });
      expect(await stopServer(both.child)).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
