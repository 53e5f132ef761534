// Migrations through Prisma's WebAssembly schema engine, because the native engine is a download
// this environment cannot make. It keeps `_prisma_migrations` exactly as `prisma migrate deploy`
// does, so both work on the same `prisma/migrations` folder.
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm';
import * as runtime from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import { projectRoot } from '../core/paths.js';
import { driftedFunctions, readFunctionFile, type SqlFunction } from './sql-functions.js';

export const schemaPath = path.join(projectRoot, 'prisma/schema.prisma');
export const migrationsDir = path.join(projectRoot, 'prisma/migrations');
const noFilters = { externalTables: [], externalEnums: [] };

let wasmReady: Promise<void> | undefined;

/** The wasm module is instantiated once per process; engines are then created per connection. */
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(
      path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')),
      'schema_engine_bg.wasm',
    );
    const module = await WebAssembly.compile(await readFile(wasmPath));
    const instance = new WebAssembly.Instance(module, {
      './schema_engine_bg.js': runtime as unknown as WebAssembly.ModuleImports,
    });
    runtime.__wbg_set_wasm(instance.exports);
    (instance.exports as { __wbindgen_start: () => void }).__wbindgen_start();
  })();
  return wasmReady;
}

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

/**
 * The schema engine describes a database through catalog queries that return PostgreSQL's
 * one-byte "char" type, which the pg adapter does not map; reporting it as text is exact.
 */
class CatalogCharAsTextClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: overrides every overload of pg.Client#query at once
  override query(...args: unknown[]): any {
    const patch = (r: pg.QueryResult | undefined) => {
      for (const field of r?.fields ?? []) if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
      return r;
    };
    const last = args.at(-1);
    if (typeof last === 'function') {
      // pg.Pool#query hands the client a callback instead of awaiting a promise.
      args[args.length - 1] = (error: Error | null, result: pg.QueryResult) => last(error, patch(result));
    }
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    return result instanceof Promise ? result.then(patch) : result;
  }
}

/**
 * The pg adapter runs a migration script by splitting it at every ";", which cuts function bodies
 * ($$ ... $$) apart. Sent whole, a script is one simple query: PostgreSQL runs it as a single
 * implicit transaction, so a migration applies completely or not at all.
 */
class WholeScriptPrismaPg extends PrismaPg {
  override async connect() {
    return wholeScripts(await super.connect());
  }
  override async connectToShadowDb() {
    return wholeScripts(await super.connectToShadowDb());
  }
}

function wholeScripts<A extends object>(adapter: A): A {
  const raw = adapter as unknown as {
    client: pg.Pool;
    onError(error: unknown): never;
    executeScript(script: string): Promise<void>;
  };
  raw.executeScript = async (script) => {
    try {
      await raw.client.query(script);
    } catch (error) {
      raw.onError(error);
    }
  };
  return adapter;
}

async function withEngine<T>(connectionString: string, use: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  await loadWasm();
  // Discrete fields, not a connection string: the adapter makes the shadow database's pool by
  // overriding `database`, which a connection string would silently win over.
  const { database, host, port, user, password } = parseConnectionString(connectionString);
  const pool = new pg.Pool({
    host: host ?? undefined,
    port: port ? Number(port) : undefined,
    user: user ?? undefined,
    password: password ?? undefined,
    database: database ?? undefined,
    max: 2,
    Client: CatalogCharAsTextClient,
  });
  const adapter = bindMigrationAwareSqlAdapterFactory(new WholeScriptPrismaPg(pool, { disposeExternalPool: true }));
  const datamodel = await readFile(schemaPath, 'utf8');
  const log = () => {};
  const engine = (await runtime.SchemaEngine.new(
    { datamodels: [[schemaPath, datamodel]] },
    log,
    adapter,
  )) as SchemaEngine;
  try {
    return await use(engine);
  } finally {
    engine.free();
    // Freeing the engine does not dispose its adapter: idle pool clients would keep the process
    // alive for their idle timeout.
    await pool.end().catch(() => {});
  }
}

export async function readMigrationsList(dir = migrationsDir): Promise<MigrationList> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const migrationDirectories = await Promise.all(
    names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: await readFile(path.join(dir, name, 'migration.sql'), 'utf8').then(
          (value) => ({ tag: 'ok' as const, value }),
          (error: Error) => ({ tag: 'error' as const, value: error.message }),
        ),
      },
    })),
  );
  const lockPath = path.join(dir, 'migration_lock.toml');
  return {
    baseDir: dir,
    lockfile: { path: lockPath, content: await readFile(lockPath, 'utf8').catch(() => null) },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/**
 * Applies every pending migration (or those up to and including `upTo`, for upgrade tests);
 * returns the names applied (none on a second call).
 */
export async function applyMigrations(connectionString: string, options: { upTo?: string } = {}): Promise<string[]> {
  const migrationsList = await readMigrationsList();
  const { upTo } = options;
  if (upTo !== undefined) {
    if (!migrationsList.migrationDirectories.some((d) => d.path === upTo)) throw new Error(`No migration ${upTo}`);
    migrationsList.migrationDirectories = migrationsList.migrationDirectories.filter((d) => d.path <= upTo);
  }
  return withEngine(connectionString, async (engine) => {
    const result = await engine.applyMigrations({ migrationsList, filters: noFilters });
    return result.appliedMigrationNames;
  });
}

/**
 * The SQL that takes the database described by the migrations folder to the schema file and to
 * the function files of prisma/sql/: the schema's diff, then every function whose file differs
 * from its last migrated copy. Instead of the engine's shadow database, a scratch database is
 * created beside `adminUrl`, migrated, described, and dropped once every connection to it is closed.
 */
export async function diffMigrationsToSchema(
  adminUrl: string,
): Promise<{ schema: string; functions: SqlFunction[]; sql: string }> {
  const name = `mpk_diff_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
    const scratch = new URL(adminUrl);
    scratch.pathname = `/${name}`;
    const scratchUrl = scratch.toString();
    try {
      await applyMigrations(scratchUrl);
      const content = await readFile(schemaPath, 'utf8');
      const scratchClient = new pg.Client({ connectionString: scratchUrl });
      await scratchClient.connect();
      const functions = await driftedFunctions(scratchClient).finally(() => scratchClient.end());
      const schema = await withEngine(scratchUrl, async (engine) => {
        const result = await engine.diff({
          // The live database behind the engine's adapter: the scratch one.
          from: { tag: 'schemaDatasource', files: [{ path: schemaPath, content }], configDir: projectRoot },
          to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content }] },
          script: true,
          exitCode: null,
          filters: noFilters,
        });
        return result.stdout ?? '';
      });
      const empty = !schema.trim() || /^-- This is an empty migration\.?\s*$/.test(schema.trim());
      const copies = await Promise.all(
        functions.map(
          async (name) => `-- ${name}: copied from prisma/sql/${name}.sql\n${await readFunctionFile(name)}`,
        ),
      );
      return {
        schema: empty ? '' : schema,
        functions,
        sql: [empty ? '' : schema, ...copies].filter(Boolean).join('\n'),
      };
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

/** Names of migrations in the folder that the database has not applied (for /readyz). */
export async function pendingMigrations(
  query: (sql: string) => Promise<{ migration_name: string }[]>,
): Promise<string[]> {
  const { migrationDirectories } = await readMigrationsList();
  const rows = await query(
    `SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  ).catch(() => []);
  const applied = new Set(rows.map((r) => r.migration_name));
  return migrationDirectories.map((d) => d.path).filter((name) => !applied.has(name));
}
