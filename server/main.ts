// Process entry: config -> buildApp() -> listen; graceful stop on SIGTERM/SIGINT.
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { KeyringError } from './crypto/keyring.js';

try {
  const config = await loadConfig();
  const app = await buildApp({ config });
  await app.listen();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'stopping');
    await app.stop();
    app.logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
} catch (error) {
  if (error instanceof ConfigError || error instanceof KeyringError) {
    console.error(`MPK cannot start: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
