// Embedded PostgreSQL: PGlite (Postgres in WebAssembly) with its data in a folder, served on a
// loopback port so that the same pg adapter, migrations and SQL work as against a real server.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedPostgres {
  url: string;
  /** Connections the socket server accepts; the pool must stay under it. */
  maxConnections: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** A folder for the data; absent = in memory. */
  dataDir?: string;
  /** A data directory dump (from `dumpDataDir`) to start from, as tests do. */
  loadDataDir?: Blob;
  port?: number;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<EmbeddedPostgres> {
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create({
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
  });
  const maxConnections = 32;
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: options.port ?? 0, maxConnections });
  await server.start();
  const port = server.getServerConn().split(':').pop();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    maxConnections,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
