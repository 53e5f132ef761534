// `npm run keyring:rotate`: re-seals every stored secret under the first key of MPK_MASTER_KEYS.
// Idempotent and safe to re-run after a crash: each row is rewritten on its own, conditionally.
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { openDatabase } from '../db/open.js';
import { createKeyring, KeyringError, parseMasterKeys } from '../crypto/keyring.js';
import { rotateSecrets } from '../crypto/rotate.js';

const config = await loadConfig();
let exitCode = 0;
try {
  const keyring = createKeyring(parseMasterKeys(config.masterKeys));
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const db = createDb(database.url, { maxConnections: 2 });
  try {
    const { rotated, alreadyCurrent } = await rotateSecrets(db, keyring);
    console.log(`Rotated ${rotated} secret(s) to key "${keyring.activeKeyId}"; ${alreadyCurrent} already current.`);
  } finally {
    await db.$disconnect();
    await database.close();
  }
} catch (error) {
  if (!(error instanceof KeyringError)) throw error;
  console.error(error.message);
  exitCode = 1;
}
process.exit(exitCode);
