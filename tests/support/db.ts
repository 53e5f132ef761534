// A fresh, migrated database for one test file: a clone of the run's template on PostgreSQL,
// or a PGlite loaded from the template dump. Call `drop()` in afterAll.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { inject } from 'vitest';
import { startEmbeddedPostgres } from '../../server/db/embedded.js';
import { maintenanceUrl } from './global-setup.js';

export interface TestDatabase {
  url: string;
  /** Pool size the database can serve to one app. */
  maxConnections: number;
  kind: 'postgres' | 'embedded';
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const provided = inject('testDatabase');
  if (provided.kind === 'embedded') {
    const embedded = await startEmbeddedPostgres({ loadDataDir: new Blob([await readFile(provided.dumpPath)]) });
    // One connection: see server/db/open.ts for why PGlite must not be used through more.
    return { url: embedded.url, maxConnections: 1, kind: 'embedded', drop: () => embedded.stop() };
  }
  const template = new URL(provided.templateUrl).pathname.slice(1);
  const name = `${template}_f${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: maintenanceUrl(provided.templateUrl) });
  await admin.connect();
  try {
    // Two files cloning at once can find the template "in use" for a moment: retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
        break;
      } catch (error) {
        if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end();
  }
  const url = new URL(provided.templateUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    maxConnections: 15,
    kind: 'postgres',
    async drop() {
      const client = new pg.Client({ connectionString: maintenanceUrl(provided.templateUrl) });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => client.end());
    },
  };
}
