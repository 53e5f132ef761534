// The demo, as a function: MPK on a fresh embedded database, a fake provider behind a pool of keys
// (one of them a minting key, whose leases get provider keys minted at the fake's key-management API),
// users of every tier, thirty days of history written through MPK's own services, then simulated
// agents leasing keys and sending metered requests through the proxy. run.ts is its command line;
// tests/demo.test.ts runs it too.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type App, buildApp } from '../server/app.js';
import { mintToken } from '../server/auth/authenticator.js';
import { loadConfig } from '../server/config.js';
import { startAgents } from './agents.js';
import { backfill } from './backfill.js';
import { createDemoClock, DAY_MS } from './clock.js';
import { createFakeKeyAdmin, type FakeKeyAdmin } from './fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from './fake-provider.js';
import { createGraphQLClient } from './graphql.js';
import { createRandom } from './random.js';
import { registerCast, secretFor } from './setup.js';
import { AGENTS, KEYS, PRICES, USERS, WORKER } from './story.js';

export interface DemoOptions {
  port: number;
  host: string;
  /** Wiped at every start; refused if it holds anything the demo did not make. */
  dataDir: string;
  /** How many simulated agents run (at most AGENTS.length). */
  agents: number;
  /** Where the demo tells its story, a line at a time. */
  log: (line: string) => void;
  /** MPK's own JSON log level; `warn` by default, so the story is not drowned. */
  logLevel?: string;
  /** Days of history (30 by default). */
  days?: number;
}

export interface Demo {
  url: string;
  app: App;
  fake: FakeUpstream;
  /** The fake's OpenRouter-style key-management API, where the minting key's leases get their keys. */
  keyAdmin: FakeKeyAdmin;
  /** The data folder, absolute. */
  dataDir: string;
  /** Variables of the environment the demo ignored (it always runs embedded, on dev secrets). */
  ignoredEnv: string[];
  stop(): Promise<void>;
}

/** The backfill's seed: the same history, relative to today, at every start. */
const STORY_SEED = 0x6d706b;
/** Tells a folder the demo made (and may wipe) from anyone else's. */
const MARKER = '.mpk-demo';
/** Asked sooner than the scheduler's five minutes, so the key pages show the provider's figures. */
const RECONCILE_EVERY_MS = 60_000;
/** How often the demo says what the minting key's leases did at the provider's key-management API. */
const MINTING_REPORT_MS = 30_000;
/** The story's minting key, for the lines that say what was minted for its leases. */
const MINTING_LABEL = KEYS.find((k) => k.mode === 'MINT')?.label ?? 'the minting key';
/**
 * The demo always uses its own embedded database and the generated development secrets: its data
 * folder is wiped at every start, and the dashboard's development sign-in exists only on the
 * generated secret. These variables would take it elsewhere, so they are left out.
 */
const IGNORED_ENV = [
  'DATABASE_URL',
  'REDIS_URL',
  'MPK_JWT_SECRET',
  'MPK_JWKS_URL',
  'MPK_MASTER_KEYS',
  'MPK_PUBLIC_URL',
];

/** Empties the data folder, unless it holds something the demo did not make. */
async function wipe(dataDir: string) {
  const entries: string[] = await readdir(dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  if (entries.length && !entries.includes(MARKER)) {
    throw new Error(
      `${dataDir} holds data the demo did not make: refusing to wipe it (point MPK_DATA_DIR at another folder)`,
    );
  }
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  await writeFile(path.join(dataDir, MARKER), 'Made by `npm run demo`, which wipes this folder at every start.\n');
}

function demoEnv(options: DemoOptions, dataDir: string) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const ignoredEnv = IGNORED_ENV.filter((name) => env[name]);
  for (const name of IGNORED_ENV) delete env[name];
  Object.assign(env, {
    PORT: String(options.port),
    HOST: options.host,
    MPK_DATA_DIR: dataDir,
    LOG_LEVEL: options.logLevel ?? 'warn',
  });
  return { env, ignoredEnv };
}

/** Bearer tokens for the demo's users and its worker, signed as the platform's sign-in would. */
async function mintTokens(secret: string) {
  const expiresInSeconds = 30 * 86_400;
  const tokens = new Map<string, string>();
  for (const user of USERS)
    tokens.set(user.id, await mintToken({ secret, sub: user.id, role: 'USER', email: user.email, expiresInSeconds }));
  const worker = await mintToken({ secret, sub: WORKER.id, role: 'WORKER', expiresInSeconds });
  return { userToken: (userId: string) => tokens.get(userId)!, worker };
}

/** Every half minute, the provider keys minted and deleted for the minting key's leases meanwhile. */
function reportMinting(keyAdmin: FakeKeyAdmin, log: (line: string) => void) {
  let since = Date.now();
  const timer = setInterval(() => {
    const keys = [...keyAdmin.keys.values()];
    const created = keys.filter((k) => k.createdAt >= since).length;
    const deleted = keys.filter((k) => k.deletedAt !== null && k.deletedAt >= since).length;
    since = Date.now();
    if (created || deleted)
      log(
        `provider: ${created} ${created === 1 ? 'key' : 'keys'} minted and ${deleted} deleted for ` +
          `${MINTING_LABEL}'s leases in the last ${MINTING_REPORT_MS / 1000} s; ${keyAdmin.activeKeys().length} alive`,
      );
  }, MINTING_REPORT_MS);
  return () => clearInterval(timer);
}

/** Runs the app's own reconciliation job now and every minute. */
function keepReconciling(app: App, log: (line: string) => void) {
  const run = () =>
    void app.reconcile.runOnce().catch((error: Error) => log(`provider reconciliation failed: ${error.message}`));
  run();
  const timer = setInterval(run, RECONCILE_EVERY_MS);
  return () => clearInterval(timer);
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const { log } = options;
  const days = options.days ?? 30;
  const dataDir = path.resolve(options.dataDir);
  await wipe(dataDir);
  log(`Wiped ${dataDir}: every start tells the same story from scratch`);
  const { env, ignoredEnv } = demoEnv(options, dataDir);
  if (ignoredEnv.length)
    log(`Ignoring ${ignoredEnv.join(', ')}: the demo runs on its own embedded database and development secrets`);
  const config = await loadConfig(env);
  const clock = createDemoClock();
  // On the demo's clock, so that keys minted for the history's leases live and expire in its time.
  const keyAdmin = createFakeKeyAdmin({ style: 'openrouter', clock, adminKey: secretFor('OPENROUTER') });
  const fake = await startFakeUpstream({ latencyMs: { min: 50, max: 600 }, prices: PRICES, keyAdmin });
  let app: App | undefined;
  try {
    log(`Fake provider on ${fake.url} (for the demo and the tests only); starting MPK on the embedded database`);
    app = await buildApp({ config, clock });
    const started = Date.now();
    // The story begins `days` days ago, at midnight UTC: the keys and users are registered then.
    clock.travelTo(new Date(Math.floor(started / DAY_MS) * DAY_MS - days * DAY_MS));
    const keys = await registerCast(app, fake, keyAdmin);
    const history = await backfill({ app, clock, fake, keyAdmin, keys, random: createRandom(STORY_SEED), days });
    log(
      `Wrote ${days} days of history through MPK's services in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
        `${history.leases} leases, ${history.requests} requests, $${history.spentUsd.toFixed(2)}, ` +
        `${history.refusals} refusals; ${keyAdmin.keys.size} provider keys minted for ${MINTING_LABEL}'s ` +
        `leases, ${keyAdmin.activeKeys().length} still alive`,
    );

    const url = await app.listen();
    const tokens = await mintTokens(config.jwtSecret);
    const agents = startAgents({
      gql: createGraphQLClient(url),
      userToken: tokens.userToken,
      workerToken: tokens.worker,
      profiles: AGENTS.slice(0, options.agents),
      random: createRandom(started),
      log,
    });
    const stopReconciling = keepReconciling(app, log);
    const stopReporting = reportMinting(keyAdmin, log);
    const running = app;
    let stopping: Promise<void> | undefined;
    return {
      url,
      app,
      fake,
      keyAdmin,
      dataDir,
      ignoredEnv,
      // Agents first (they would only meet a closed server), then MPK, then its provider.
      stop: () =>
        (stopping ??= (async () => {
          await agents.stop();
          stopReconciling();
          stopReporting();
          await running.stop();
          await fake.close();
        })()),
    };
  } catch (error) {
    await app?.stop();
    await fake.close();
    throw error;
  }
}
