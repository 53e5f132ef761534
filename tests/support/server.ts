// A real MPK server on a fresh database, listening on a free loopback port, for tests that talk
// to it over HTTP exactly as clients do. Its log lines are kept in memory for leak checks.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { buildApp, type App } from '../../server/app.js';
import { mintToken, type Role } from '../../server/auth/authenticator.js';
import type { Config } from '../../server/config.js';
import type { Clock } from '../../server/core/clock.js';
import { createLogger } from '../../server/core/logger.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export interface GraphQLResponse<T = any> {
  status: number;
  data: T | null | undefined;
  errors: { message: string; path?: string[]; extensions?: { code?: string; field?: string } }[] | undefined;
  raw: string;
}

export interface TestServer {
  app: App;
  url: string;
  config: Config;
  database: TestDatabase;
  logs: string[];
  token(role: Role, sub?: string, extra?: { email?: string; expiresInSeconds?: number }): Promise<string>;
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

export const testMasterKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

export async function startTestServer(
  options: { clock?: Clock; config?: Partial<Config>; database?: TestDatabase; scheduler?: boolean; leaderIntervalMs?: number } = {},
): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase());
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-data-'));
  const config: Config = {
    port: 0,
    host: '127.0.0.1',
    databaseUrl: database.url,
    dbPoolSize: database.maxConnections,
    redisUrl: undefined,
    jwtSecret: randomBytes(32).toString('base64url'),
    jwksUrl: undefined,
    masterKeys: testMasterKey('t1'),
    dataDir,
    logLevel: 'debug',
    generatedSecrets: [],
    ...options.config,
  };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  // A test that moves its own clock drives expiry itself: a real-time scheduler would race it.
  const scheduler = options.scheduler ?? !options.clock;
  const app = await buildApp({ config, clock: options.clock, logger: createLogger('debug', sink), scheduler, leaderIntervalMs: options.leaderIntervalMs });
  const url = await app.listen();

  return {
    app,
    url,
    config,
    database,
    logs,
    token: (role, sub = `${role.toLowerCase()}-1`, extra = {}) =>
      // Tests move their clock by days: tokens outlive that unless a test says otherwise.
      mintToken({ secret: config.jwtSecret, sub, role, now: options.clock?.now(), expiresInSeconds: 10 * 365 * 86400, ...extra }),
    async gql(query, variables, token) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const raw = await res.text();
      const body = JSON.parse(raw);
      return { status: res.status, data: body.data, errors: body.errors, raw };
    },
    async close() {
      await app.stop(1000);
      if (!options.database) await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
