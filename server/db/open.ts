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

export async function openDatabase(options: {
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize?: number;
}): Promise<OpenDatabase> {
  if (options.databaseUrl) {
    return {
      url: options.databaseUrl,
      embedded: false,
      maxConnections: options.poolSize ?? 20,
      appliedMigrations: await applyMigrations(options.databaseUrl),
      close: async () => {},
    };
  }
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(options.dataDir, 'pgdata') });
  try {
    return {
      url: embedded.url,
      embedded: true,
      // PGlite is one backend session: it interleaves the protocol messages of concurrent
      // connections, so two busy connections can clobber each other's unnamed statements.
      // Through one connection everything is serialized, which is also what PGlite does anyway.
      maxConnections: 1,
      appliedMigrations: await applyMigrations(embedded.url),
      close: () => embedded.stop(),
    };
  } catch (error) {
    await embedded.stop();
    throw error;
  }
}
