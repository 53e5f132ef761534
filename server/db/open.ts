// Opens the database the config names (or the embedded one) and brings its schema up to date.
import path from 'node:path';
import { startEmbeddedPostgres } from './embedded.js';
import { applyMigrations } from './migrate.js';

export interface OpenDatabase {
  url: string;
  embedded: boolean;
  maxConnections: number;
  appliedMigrations: string[];
  close(): Promise<void>;
}

export async function openDatabase(options: { databaseUrl: string | undefined; dataDir: string }): Promise<OpenDatabase> {
  if (options.databaseUrl) {
    return {
      url: options.databaseUrl,
      embedded: false,
      maxConnections: 20,
      appliedMigrations: await applyMigrations(options.databaseUrl),
      close: async () => {},
    };
  }
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(options.dataDir, 'pgdata') });
  try {
    return {
      url: embedded.url,
      embedded: true,
      // Leave the embedded server room for the migration engine and admin connections.
      maxConnections: Math.max(2, embedded.maxConnections - 8),
      appliedMigrations: await applyMigrations(embedded.url),
      close: () => embedded.stop(),
    };
  } catch (error) {
    await embedded.stop();
    throw error;
  }
}
