// What a test or benchmark server runs on: fresh secrets, a data folder of its own, and, for an
// app built in this process, the whole Config.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../server/config.js';

export interface ServerSecrets {
  jwtSecret: string;
  /** MPK_MASTER_KEYS: `id:base64key`. */
  masterKeys: string;
}

export const testMasterKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

export const testSecrets = (masterKeyId = 't1'): ServerSecrets => ({
  jwtSecret: randomBytes(32).toString('base64url'),
  masterKeys: testMasterKey(masterKeyId),
});

/** A new empty folder under the system's temporary directory; `remove()` deletes it. */
export async function tempDir(prefix = 'mpk-data-') {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Every field of Config for an app on `databaseUrl`: a free loopback port, fresh secrets, and a
 * data folder of its own, which `dispose()` removes.
 */
export async function testConfig(fields: Partial<Config> & Pick<Config, 'databaseUrl' | 'dbPoolSize'>) {
  const dataDir = await tempDir();
  const config: Config = {
    port: 0,
    host: '127.0.0.1',
    redisUrl: undefined,
    jwksUrl: undefined,
    dataDir: dataDir.path,
    logLevel: 'debug',
    generatedSecrets: [],
    ...testSecrets(),
    ...fields,
  };
  return { config, dispose: dataDir.remove };
}
