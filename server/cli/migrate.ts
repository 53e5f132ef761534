// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or the embedded database in
// MPK_DATA_DIR) without starting the server. The server also does this at every start.
import { ConfigError, loadConfig } from '../config.js';
import { DataDirLockedError } from '../db/data-lock.js';
import { openDatabase } from '../db/open.js';
import { cliArgs } from './args.js';

cliArgs(
  `usage: npm run db:migrate

Applies pending migrations from prisma/migrations to DATABASE_URL, or, without it, to the embedded
database in MPK_DATA_DIR/pgdata (refused while a server is using that folder).`,
  {},
);

try {
  const config = await loadConfig();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  console.log(
    database.appliedMigrations.length
      ? `Applied: ${database.appliedMigrations.join(', ')}`
      : 'Nothing to apply: the database is up to date.',
  );
  await database.close();
} catch (error) {
  if (!(error instanceof ConfigError || error instanceof DataDirLockedError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}

// PGlite and the wasm schema engine leave 10 s timers of their own behind: nothing is open by now.
process.exit();
