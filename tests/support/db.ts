// Scratch PostgreSQL databases for tests and benchmarks, created beside another database on the
// same server and dropped (forcibly) when done; and, for one test file, a fresh migrated database:
// a clone of the run's template on PostgreSQL, or a PGlite loaded from the template dump
// (tests/support/global-setup.ts makes both). Call `drop()` in afterAll.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { inject } from 'vitest';
import { startEmbeddedPostgres } from '../../server/db/embedded.js';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface TestDatabase extends ScratchDatabase {
  /** Pool size the database can serve to one app. */
  maxConnections: number;
  kind: 'postgres' | 'embedded';
}

/** `url` with its database replaced by `name`: by default the server's maintenance database. */
export function databaseUrl(url: string, name = 'postgres'): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export const dropDatabase = (adminUrl: string, name: string) =>
  withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {});

/** Drops every database whose name is LIKE `pattern`. */
export async function dropDatabasesLike(adminUrl: string, pattern: string) {
  await withClient(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [
      pattern,
    ]);
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  });
}

/**
 * Creates database `name` through `adminUrl` (a connection to another database of the same
 * server), empty or as a copy of `template`, and returns its URL and how to drop it.
 */
export async function createDatabase(adminUrl: string, name: string, template?: string): Promise<ScratchDatabase> {
  await withClient(adminUrl, async (client) => {
    // Two files cloning at once can find the template "in use" for a moment: retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
        return;
      } catch (error) {
        if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  });
  return { url: databaseUrl(adminUrl, name), drop: () => dropDatabase(adminUrl, name) };
}

/**
 * An empty database named `<prefix>_<pid>_<random>` beside `adminUrl`'s (benchmarks migrate it by
 * starting the server).
 */
export const scratchDatabase = (adminUrl: string, prefix: string) =>
  createDatabase(adminUrl, `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`);

/** This test file's own migrated database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const provided = inject('testDatabase');
  if (provided.kind === 'embedded') {
    const embedded = await startEmbeddedPostgres({ loadDataDir: new Blob([await readFile(provided.dumpPath)]) });
    // One connection: see server/db/open.ts for why PGlite must not be used through more.
    return { url: embedded.url, maxConnections: 1, kind: 'embedded', drop: () => embedded.stop() };
  }
  const template = new URL(provided.templateUrl).pathname.slice(1);
  const clone = await createDatabase(
    databaseUrl(provided.templateUrl),
    `${template}_f${randomBytes(6).toString('hex')}`,
    template,
  );
  return { ...clone, maxConnections: 15, kind: 'postgres' };
}
