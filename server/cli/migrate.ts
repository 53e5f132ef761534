// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or the embedded database in
// MPK_DATA_DIR) without starting the server. The server also does this at every start.
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/open.js';

const config = await loadConfig();
const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
console.log(
  database.appliedMigrations.length
    ? `Applied: ${database.appliedMigrations.join(', ')}`
    : 'Nothing to apply: the database is up to date.',
);
await database.close();

// PGlite and the wasm schema engine leave 10 s timers of their own behind: nothing is open by now.
process.exit();
