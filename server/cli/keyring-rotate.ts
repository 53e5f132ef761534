// `npm run keyring:rotate`: re-seals every stored secret under the first key of MPK_MASTER_KEYS.
// Idempotent and safe to re-run after a crash: each row is rewritten on its own, conditionally.
// On the embedded database, stop the server first: one PGlite data folder serves one process, and
// the folder's lock refuses this while the server holds it.
import { ConfigError, loadConfig } from '../config.js';
import { createKeyring, KeyringError, parseMasterKeys } from '../crypto/keyring.js';
import { rotateSecrets } from '../crypto/rotate.js';
import { createDb } from '../db/client.js';
import { DataDirLockedError } from '../db/data-lock.js';
import { openDatabase } from '../db/open.js';
import { cliArgs } from './args.js';

cliArgs(
  `usage: npm run keyring:rotate

Re-seals every stored provider key under the first key of MPK_MASTER_KEYS (id:base64, comma-separated;
keep the old keys listed after it until this has run). Works on DATABASE_URL, or on the embedded database
in MPK_DATA_DIR/pgdata, which is refused while a server is using that folder.`,
  {},
);

try {
  const config = await loadConfig();
  // Built before connecting, so a bad MPK_MASTER_KEYS fails without touching the database.
  const keyring = createKeyring(parseMasterKeys(config.masterKeys));
  // The server's own opener: DATABASE_URL, or the embedded database in MPK_DATA_DIR/pgdata, migrated.
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const db = createDb(database.url, { maxConnections: Math.min(2, database.maxConnections) });
    try {
      const { rotated, alreadyCurrent } = await rotateSecrets(db, keyring);
      console.log(`Rotated ${rotated} secret(s) to key "${keyring.activeKeyId}"; ${alreadyCurrent} already current.`);
    } finally {
      await db.$disconnect();
    }
  } finally {
    await database.close();
  }
} catch (error) {
  if (!(error instanceof KeyringError || error instanceof ConfigError || error instanceof DataDirLockedError))
    throw error;
  console.error(error.message);
  process.exitCode = 1;
}

// PGlite and the wasm schema engine leave 10 s timers of their own behind: nothing is open by now.
process.exit();
