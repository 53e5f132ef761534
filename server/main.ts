// Process entry: config -> buildApp() -> listen; graceful stop on SIGTERM/SIGINT.
import { buildApp, type App } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { KeyringError } from './crypto/keyring.js';

let app: App | undefined;
let ready = false;
let requested: string | undefined;

async function shutdown() {
  app!.logger.info({ signal: requested }, 'stopping');
  await app!.stop();
  app!.logger.info('stopped');
  process.exit(0);
}

// Installed before anything starts: a signal during start-up is honoured once start-up is over,
// so the embedded database is never cut off in the middle of a migration.
function onSignal(signal: string) {
  if (requested) return;
  requested = signal;
  if (ready) void shutdown();
}
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

try {
  const config = await loadConfig();
  app = await buildApp({ config });
  await app.listen();
  ready = true;
  if (requested) await shutdown();
} catch (error) {
  if (error instanceof ConfigError || error instanceof KeyringError) {
    console.error(`MPK cannot start: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
