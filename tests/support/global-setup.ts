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
import type { TestProject } from 'vitest/node';
import { applyMigrations } from '../../server/db/migrate.js';
import { databaseUrl, dropDatabasesLike } from './db.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testDatabase: { kind: 'postgres'; templateUrl: string } | { kind: 'embedded'; dumpPath: string };
  }
}

/** Every clone that createTestDatabase made of the template (left over by an interrupted run, too). */
const dropClones = (templateUrl: string) =>
  dropDatabasesLike(databaseUrl(templateUrl), `${new URL(templateUrl).pathname.slice(1)}_f%`);

export default async function setup(project: TestProject) {
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    await applyMigrations(url);
    await dropClones(url);
    project.provide('testDatabase', { kind: 'postgres', templateUrl: url });
    return () => dropClones(url);
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
