// The Prisma client on the pg driver adapter: the one way the server talks to PostgreSQL,
// embedded or real.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.js';

export type * from './generated/client.js';
export { Prisma, PrismaClient } from './generated/client.js';

export type Db = PrismaClient;
/** The client handed to a `$transaction` callback. */
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export interface DbOptions {
  /** Pool size; PGlite serves a fixed number of connections, real PostgreSQL can take more. */
  maxConnections?: number;
}

export function createDb(connectionString: string, options: DbOptions = {}): Db {
  const adapter = new PrismaPg({ connectionString, max: options.maxConnections ?? 10 });
  return new PrismaClient({ adapter });
}
