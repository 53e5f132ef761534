// The command-line tools beside a running server: the embedded database's data folder is locked
// by the process using it, so a CLI on it is refused and changes nothing; a lock left by a killed
// process does not block.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../server/auth/authenticator.js';
import { tempDir, testMasterKey, testSecrets } from './support/config.js';
import { postGraphQL } from './support/graphql.js';
import { killServers, spawnServer } from './support/process.js';

const root = path.resolve(import.meta.dirname, '..');
const dirs: { remove(): Promise<void> }[] = [];

afterAll(async () => {
  await killServers();
  for (const dir of dirs) await dir.remove();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A CLI as npm runs it (`tsx server/cli/<file>`), with only `env` and PATH/HOME set. */
function cli(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const deadPid = () =>
  new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.once('exit', () => resolve(child.pid!));
  });

describe('the embedded data folder lock', () => {
  it('refuses db:migrate and keyring:rotate on a data folder a running server holds, changing nothing', async () => {
    const dir = await tempDir('mpk-lock-');
    dirs.push(dir);
    const secrets = testSecrets('k1');
    const env = { MPK_DATA_DIR: dir.path, MPK_JWT_SECRET: secrets.jwtSecret, MPK_MASTER_KEYS: secrets.masterKeys };
    const server = await spawnServer(env, { timeoutMs: 90_000 });
    const lockFile = path.join(dir.path, 'pgdata.lock');
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toMatchObject({ pid: server.child.pid });

    const admin = await mintToken({ secret: secrets.jwtSecret, sub: 'root', role: 'ADMIN' });
    const created = await postGraphQL(
      server.url,
      `mutation { createManagedKey(input: { provider: VENICE, label: "held", apiKey: "venice-key-000000001" }) { id } }`,
      {},
      admin,
    );
    expect(created.errors).toBeUndefined();

    // A new master key first: had this run, the stored secret would now be sealed under k2.
    const rotateEnv = { ...env, MPK_MASTER_KEYS: `${testMasterKey('k2')},${secrets.masterKeys}` };
    const [migrate, rotate] = await Promise.all([
      cli('server/cli/migrate.ts', [], env),
      cli('server/cli/keyring-rotate.ts', [], rotateEnv),
    ]);
    for (const run of [migrate, rotate]) {
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`is in use by process ${server.child.pid}`);
      expect(run.stderr).toMatch(/Stop that process first; nothing was changed/);
      expect(run.stderr).not.toMatch(/^\s+at /m);
    }
    // A second server on the same folder is refused the same way.
    const second = await spawnServer(env, { name: 'second', timeoutMs: 90_000 }).then(
      () => 'started',
      (error: Error) => error.message,
    );
    expect(second).toMatch(/exited with 1/);
    expect(second).toMatch(/MPK cannot start: The embedded database .* is in use by process/);

    // The server is untouched: still ready, still the holder, its data as it was.
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toMatchObject({ pid: server.child.pid });
    const listed = await postGraphQL(server.url, '{ managedKeys { totalCount } }', {}, admin);
    expect(listed.data.managedKeys.totalCount).toBe(1);

    expect(await server.stop()).toBe(0);
    expect(existsSync(lockFile)).toBe(false);

    // A lock left by a process that is gone (a killed server) does not block the next run.
    await writeFile(
      lockFile,
      JSON.stringify({ pid: await deadPid(), hostname: hostname(), command: 'killed', since: '' }),
    );
    // Free now: the rotation finds the one secret still under k1, so the refused run changed nothing.
    const rotated = await cli('server/cli/keyring-rotate.ts', [], rotateEnv);
    expect(rotated.stderr).toBe('');
    expect(rotated.stdout).toMatch(/Rotated 1 secret\(s\) to key "k2"; 0 already current/);
    expect(existsSync(lockFile)).toBe(false);
  }, 180_000);
});
