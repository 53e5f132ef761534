// Prepares one migrated template database for the whole run; each test file then gets its own
// copy (tests/support/db.ts), so files run in parallel without seeing each other's rows.
// With TEST_DATABASE_URL (CI): that database is migrated and used as the template for
// `CREATE DATABASE ... TEMPLATE`. Without it: an in-memory PGlite is migrated and its data
// directory dumped to a file that each test file loads into its own PGlite.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { applyMigrations } from '../../server/db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testDatabase: { kind: 'postgres'; templateUrl: string } | { kind: 'embedded'; dumpPath: string };
  }
}

export function maintenanceUrl(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

export async function dropClones(templateUrl: string) {
  const template = new URL(templateUrl).pathname.slice(1);
  const client = new pg.Client({ connectionString: maintenanceUrl(templateUrl) });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`${template}_f%`],
    );
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject) {
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    await applyMigrations(url);
    await dropClones(url);
    project.provide('testDatabase', { kind: 'postgres', templateUrl: url });
    return async () => dropClones(url);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mpk-test-'));
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  await applyMigrations(`postgresql://postgres@${server.getServerConn()}/postgres?sslmode=disable`);
  await server.stop();
  const dump = await db.dumpDataDir('none');
  await db.close();
  const dumpPath = path.join(dir, 'template.tar');
  await writeFile(dumpPath, Buffer.from(await dump.arrayBuffer()));
  project.provide('testDatabase', { kind: 'embedded', dumpPath });
  return async () => rm(dir, { recursive: true, force: true });
}
