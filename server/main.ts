// Process entry: config -> buildApp() -> listen; graceful stop on SIGTERM/SIGINT.
import type { App } from './app.js';
import { cliArgs } from './cli/args.js';
import { ConfigError, loadConfig } from './config.js';
import { stopOnSignal } from './core/shutdown.js';
import { KeyringError } from './crypto/keyring.js';
import { DataDirLockedError } from './db/data-lock.js';

cliArgs(
  `usage: npm start   (or, compiled: node dist/server/main.js)

Serves MPK (GraphQL, the dashboard and the /v1 proxy) configured by environment variables: see the
Configuration table in README.md. Stops gracefully on SIGTERM or SIGINT.`,
  {},
);

let app: App | undefined;
const signals = stopOnSignal(async (signal) => {
  app!.logger.info({ signal }, 'stopping');
  await app!.stop();
  app!.logger.info('stopped');
});

try {
  const config = await loadConfig();
  // Loaded here, not at the top: --help answers without loading the whole server.
  const { buildApp } = await import('./app.js');
  app = await buildApp({ config });
  await app.listen();
  await signals.started();
} catch (error) {
  if (error instanceof ConfigError || error instanceof KeyringError || error instanceof DataDirLockedError) {
    console.error(`MPK cannot start: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
