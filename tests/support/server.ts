// A real MPK server in this process on a fresh database, listening on a free loopback port, for
// tests that talk to it over HTTP exactly as clients do. Its log lines are kept in memory for
// leak checks.
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { type App, buildApp } from '../../server/app.js';
import { mintToken, signingConfig } from '../../server/auth/authenticator.js';
import type { Config } from '../../server/config.js';
import type { Clock } from '../../server/core/clock.js';
import { createLogger } from '../../server/core/logger.js';
import { testConfig } from './config.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { type GraphQLServer, postGraphQL } from './graphql.js';

const YEAR_MS = 365 * 86400_000;

export interface TestServer extends GraphQLServer {
  app: App;
  config: Config;
  database: TestDatabase;
  logs: string[];
  close(): Promise<void>;
}

export interface TestServerOptions {
  clock?: Clock;
  config?: Partial<Config>;
  /** A database to share (with another instance); by default a fresh one, dropped on close. */
  database?: TestDatabase;
  scheduler?: boolean;
  leaderIntervalMs?: number;
  /** When the proxy asks OpenRouter for a cancelled generation's cost (the app waits seconds). */
  generationDelaysMs?: readonly number[];
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase());
  const { config, dispose } = await testConfig({
    databaseUrl: database.url,
    dbPoolSize: database.maxConnections,
    ...options.config,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  // A test that moves its own clock drives expiry itself: a real-time scheduler would race it.
  const scheduler = options.scheduler ?? !options.clock;
  const app = await buildApp({
    config,
    clock: options.clock,
    logger: createLogger('debug', sink),
    scheduler,
    leaderIntervalMs: options.leaderIntervalMs,
    generationDelaysMs: options.generationDelaysMs,
  });
  const url = await app.listen();

  return {
    app,
    url,
    config,
    database,
    logs,
    token: (role, sub = `${role.toLowerCase()}-1`, extra = {}) =>
      // Tests move their clock by days, forwards and back: tokens outlive that, and were issued a
      // year before (a token issued in the server's future is refused), unless a test says otherwise.
      mintToken({
        ...signingConfig(config),
        sub,
        role,
        now: options.clock ? new Date(options.clock.now().getTime() - YEAR_MS) : undefined,
        expiresInSeconds: 11 * 365 * 86400,
        ...extra,
      }),
    gql: (query, variables, token) => postGraphQL(url, query, variables, token),
    async close() {
      await app.stop(1000);
      if (!options.database) await database.drop();
      await dispose();
    },
  };
}

/** A file's server and the tokens of its staff, their subs ending in one tag: `admin-<tag>`, ... */
export interface ServedFile {
  server: TestServer;
  admin: string;
  worker: string;
  observer: string;
}

/**
 * This file's server: started before its tests, closed after them. `ready` receives it with its
 * staff's tokens (`roles` is their tag, '1' unless given), for the file to keep in its variables:
 * `withTestServer({ clock, roles: 'x' }, (s) => ({ server, admin } = s))`.
 */
export function withTestServer(options: TestServerOptions & { roles?: string }, ready: (served: ServedFile) => void) {
  let server: TestServer | undefined;
  beforeAll(async () => {
    const { roles: tag = '1', ...serverOptions } = options;
    server = await startTestServer(serverOptions);
    ready({
      server,
      admin: await server.token('ADMIN', `admin-${tag}`),
      worker: await server.token('WORKER', `worker-${tag}`),
      observer: await server.token('OBSERVER', `observer-${tag}`),
    });
  });
  afterAll(async () => server?.close());
}
