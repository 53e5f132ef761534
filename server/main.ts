// Process entry: config -> buildApp() -> listen; graceful stop on SIGTERM/SIGINT.
import { type App, buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { stopOnSignal } from './core/shutdown.js';
import { KeyringError } from './crypto/keyring.js';

let app: App | undefined;
const signals = stopOnSignal(async (signal) => {
  app!.logger.info({ signal }, 'stopping');
  await app!.stop();
  app!.logger.info('stopped');
});

try {
  const config = await loadConfig();
  app = await buildApp({ config });
  await app.listen();
  await signals.started();
} catch (error) {
  if (error instanceof ConfigError || error instanceof KeyringError) {
    console.error(`MPK cannot start: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
