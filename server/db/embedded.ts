// Embedded PostgreSQL: PGlite (Postgres in WebAssembly) with its data in a folder, served on a
// loopback port so that the same pg adapter, migrations and SQL work as against a real server.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { lockDataDir } from './data-lock.js';

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
  // Taken before PGlite touches the folder: a refused process changes nothing in it.
  const lock = options.dataDir ? lockDataDir(options.dataDir) : undefined;
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  const maxConnections = 32;
  try {
    if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
    db = await PGlite.create({
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
    });
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: options.port ?? 0, maxConnections });
    await server.start();
  } catch (error) {
    await db?.close().catch(() => {});
    lock?.release();
    throw error;
  }
  const port = server.getServerConn().split(':').pop();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    maxConnections,
    async stop() {
      try {
        await server.stop();
        await db.close();
      } finally {
        lock?.release();
      }
    },
  };
}
