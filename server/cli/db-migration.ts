// `npm run db:migration -- <name>`: writes prisma/migrations/<timestamp>_<name>/migration.sql
// with the SQL that takes the migrations folder to prisma/schema.prisma, followed by a copy of
// every function file in prisma/sql/ that differs from its last migrated copy. The migrations are
// replayed into a scratch database created and dropped beside SHADOW_DATABASE_URL
// (or DATABASE_URL, or the local PostgreSQL): that needs a real server with CREATEDB, since
// PGlite serves one database only.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { diffMigrationsToSchema, migrationsDir } from '../db/migrate.js';
import { cliArgs, usageError } from './args.js';

const USAGE = `usage: npm run db:migration -- <name>   (letters, digits and underscores)

Writes prisma/migrations/<timestamp>_<name>/migration.sql: the SQL from the migrations to
prisma/schema.prisma, and the changed function files of prisma/sql/. Needs a PostgreSQL server with
CREATEDB at SHADOW_DATABASE_URL, DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres.`;
const { positionals } = cliArgs(USAGE, {}, { positionals: true });
const name = positionals[0];
if (!name || positionals.length > 1 || !/^[a-z0-9_]+$/i.test(name)) usageError('One migration name, please.', USAGE);
const url =
  process.env.SHADOW_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
{
  const { sql, functions } = await diffMigrationsToSchema(url);
  if (!sql.trim()) {
    console.log('The schema, the function files and the migrations agree: no migration written.');
  } else {
    if (functions.length) console.log(`Functions copied from prisma/sql/: ${functions.join(', ')}`);
    const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const dir = path.join(migrationsDir, `${stamp}_${name}`);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'migration.sql'), sql);
    console.log(`Wrote ${path.relative(process.cwd(), dir)}/migration.sql`);
  }
}

// PGlite and the wasm schema engine leave 10 s timers of their own behind: nothing is open by now.
process.exit();
