// The composition root: config in, a running MPK out. Everything is wired here and nowhere else.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuditService } from './audit/service.js';
import { createAuthenticator } from './auth/authenticator.js';
import { createUserService } from './auth/users.js';
import type { Config } from './config.js';
import { type Clock, systemClock } from './core/clock.js';
import { createLogger, type Logger } from './core/logger.js';
import { createKeyring, parseMasterKeys } from './crypto/keyring.js';
import { assertKeyringCoversStoredSecrets } from './crypto/rotate.js';
import { createDb } from './db/client.js';
import { pendingMigrations } from './db/migrate.js';
import { openDatabase } from './db/open.js';
import { createHttpServer } from './http/server.js';
import { createGraphQLHandler } from './http/yoga.js';
import { createKeyService } from './keys/service.js';
import { createEventBus } from './events/bus.js';
import { createTierPolicyService } from './leases/policies.js';
import { createLeaseService } from './leases/service.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface AppOptions {
  config: Config;
  clock?: Clock;
  logger?: Logger;
}

export async function buildApp(options: AppOptions) {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  for (const name of config.generatedSecrets) {
    logger.warn(`${name} is not set: using a generated development value stored in ${config.dataDir} (set it in production)`);
  }
  const keyring = createKeyring(parseMasterKeys(config.masterKeys));

  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize });
  if (database.appliedMigrations.length) logger.info({ migrations: database.appliedMigrations }, 'applied migrations');
  const db = createDb(database.url, { maxConnections: database.maxConnections });
  try {
    await assertKeyringCoversStoredSecrets(db, keyring);
  } catch (error) {
    await db.$disconnect();
    await database.close();
    throw error;
  }

  const audit = createAuditService({ db, clock });
  const users = createUserService({ db });
  const keys = createKeyService({ db, keyring, clock, audit });
  const events = createEventBus();
  const leases = createLeaseService({ db, clock, keys, events });
  const tierPolicies = createTierPolicyService({ db, audit });
  const services = { audit, users, keys, leases, tierPolicies };

  const graphql = createGraphQLHandler({
    authenticator: createAuthenticator({ jwtSecret: config.jwtSecret, jwksUrl: config.jwksUrl, clock }),
    services,
    prisma: db,
    logger,
  });
  const server = createHttpServer({
    graphql,
    logger,
    staticDir: path.join(root, 'web/dist'),
    readiness: async () => {
      const checks: Record<string, string> = {};
      try {
        await db.$queryRaw`SELECT 1`;
        checks.database = 'ok';
        const pending = await pendingMigrations((sql) => db.$queryRawUnsafe(sql));
        checks.migrations = pending.length ? `pending: ${pending.join(', ')}` : 'ok';
      } catch {
        checks.database = 'unreachable';
      }
      return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
    },
  });

  return {
    db,
    services,
    events,
    logger,
    server,
    embeddedDatabase: database.embedded,
    /** Listens on config.port (0 = any free port) and returns the base URL. */
    async listen(): Promise<string> {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => resolve());
      });
      const { port } = server.address() as AddressInfo;
      const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
      logger.info({ url: `${url}/graphql`, database: database.embedded ? 'embedded' : 'postgres' }, 'MPK is listening');
      return url;
    },
    /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes the database. */
    async stop(graceMs = 10_000) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await db.$disconnect();
      await database.close();
    },
  };
}
export type App = Awaited<ReturnType<typeof buildApp>>;
