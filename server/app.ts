// The composition root: config in, a running MPK out. Everything is wired here and nowhere else.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createAuditService } from './audit/service.js';
import { createAuthenticator } from './auth/authenticator.js';
import { createUserService } from './auth/users.js';
import { type Config, DEFAULT_LIMITS, DEFAULT_RETENTION } from './config.js';
import { type Clock, systemClock } from './core/clock.js';
import { createLogger, type Logger } from './core/logger.js';
import { projectRoot } from './core/paths.js';
import { createTokenBuckets } from './core/rate-limit.js';
import { createKeyring, parseMasterKeys } from './crypto/keyring.js';
import { assertKeyringCoversStoredSecrets } from './crypto/rotate.js';
import { createDb } from './db/client.js';
import { pendingMigrations } from './db/migrate.js';
import { openDatabase } from './db/open.js';
import { createPartitionJob } from './db/partitions.js';
import { createEventBus } from './events/bus.js';
import { createSubscriberLimits, DEFAULT_SUBSCRIBER_LIMITS } from './events/limits.js';
import { createLiveEvents } from './events/live.js';
import { createNudges } from './events/nudges.js';
import { createEventPump } from './events/pump.js';
import { createDevSignIn } from './http/dev-sign-in.js';
import { createRequestLimits } from './http/limits.js';
import { useMutationRateLimit } from './http/mutation-rate.js';
import { createHttpServer } from './http/server.js';
import { attachWebSocket } from './http/websocket.js';
import { createGraphQLHandler } from './http/yoga.js';
import { createKeyService } from './keys/service.js';
import { createKeyUsageFeed } from './keys/usage-feed.js';
import { createExpiryJob } from './leases/expiry.js';
import { createLeaseTokens } from './leases/lease-token.js';
import { createTierPolicyService } from './leases/policies.js';
import { createLeaseRequestLimits } from './leases/request-rate.js';
import { createLeaseService } from './leases/service.js';
import { activeLeaseCounts, createPoolSummary } from './leases/summary.js';
import { createMetricsEndpoint } from './metrics/endpoint.js';
import { useGraphQLMetrics } from './metrics/graphql.js';
import { createMetrics } from './metrics/metrics.js';
import { unfinishedCounts as unfinishedProviderJobs } from './minting/queue.js';
import { createProviderJobRunner, type ProviderJobRunner } from './minting/runner.js';
import { createMintingService } from './minting/service.js';
import { createOrphanSweep } from './minting/sweep.js';
import { advisoryLockLeader, soleLeader } from './scheduler/leader.js';
import { createScheduler } from './scheduler/runner.js';
import { createAdmissionCache } from './usage/admission.js';
import { createGenerationLookups } from './usage/generation-stats.js';
import { createUsageHistory } from './usage/history.js';
import { createMeterBuffer } from './usage/meter-buffer.js';
import { createMeteringProxy } from './usage/proxy.js';
import { createReconcileJob } from './usage/reconcile.js';
import { createUsageService } from './usage/service.js';

/** The advisory lock id of the scheduler: one holder across every instance on a database. */
const SCHEDULER_LOCK = 0x6d706b01;

export interface AppOptions {
  config: Config;
  clock?: Clock;
  logger?: Logger;
  /** How often a non-leading instance tries to take the scheduler over (tests shorten it). */
  leaderIntervalMs?: number;
  /** Run the scheduler (default). Tests that move an injected clock drive expiry themselves. */
  scheduler?: boolean;
  /** When the proxy asks OpenRouter for a cancelled generation's cost (tests shorten the waits). */
  generationDelaysMs?: readonly number[];
  /** Metered requests not yet written beyond which the proxy answers 503 (default 50,000). */
  maxUnwrittenMetering?: number;
}

export async function buildApp(options: AppOptions) {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const limits = config.limits ?? DEFAULT_LIMITS;
  // This instance's own registry: apps built in one process (tests) never mix their figures.
  const metrics = createMetrics();
  for (const name of config.generatedSecrets) {
    logger.warn(
      `${name} is not set: using a generated development value stored in ${config.dataDir} (set it in production)`,
    );
  }
  const keyring = createKeyring(parseMasterKeys(config.masterKeys));

  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
  });
  if (database.appliedMigrations.length) logger.info({ migrations: database.appliedMigrations }, 'applied migrations');
  const db = createDb(database.url, { maxConnections: database.maxConnections });
  try {
    await assertKeyringCoversStoredSecrets(db, keyring);
  } catch (error) {
    await db.$disconnect();
    await database.close();
    throw error;
  }

  // Redis only speeds up cross-instance delivery: without it (absent, down, not yet subscribed) the
  // pump reads the log every eventFallbackPollMs, and the instance serves either way.
  const nudges = createNudges({ redisUrl: config.redisUrl, logger });
  const pump = createEventPump({
    db,
    nudges,
    pollMs: config.eventPollMs,
    fallbackPollMs: config.eventFallbackPollMs,
    onError: (err) => logger.error({ err }, 'event log read failed'),
    onDegradedStart: () =>
      logger.warn('Redis subscription not confirmed at start: serving, reading the event log on a short timer'),
  });
  await pump.start();
  const subscriberLimits = createSubscriberLimits({
    maxSubscriptionsPerUser: config.maxSubscriptionsPerUser ?? DEFAULT_SUBSCRIBER_LIMITS.maxSubscriptionsPerUser,
    maxConnectionsPerUser: config.maxConnectionsPerUser ?? DEFAULT_SUBSCRIBER_LIMITS.maxConnectionsPerUser,
  });
  const events = createEventBus(pump.nudge);
  events.observe(metrics.leaseEvents);
  pump.listen(metrics.eventsRead);

  const audit = createAuditService({ db, clock });
  const users = createUserService({ db, clock });
  // What the metering proxy admits on: kept in memory, told of every change that matters to it.
  const admission = createAdmissionCache({
    db,
    clock,
    logger,
    reveal: (keyId, ciphertext) => keyring.decrypt(ciphertext, keyId),
    metrics,
  });
  events.observe(admission.observe);
  pump.listen(admission.observe);
  const keys = createKeyService({ db, keyring, clock, audit, onChanged: admission.forgetKey });
  const keyUsage = createKeyUsageFeed({ db, pump, limits: subscriberLimits });
  const tokens = createLeaseTokens(config.jwtSecret);
  // Agents reach the proxy where this server listens, unless MPK_PUBLIC_URL says otherwise.
  let publicUrl = config.publicUrl ?? '';
  let providerJobs: ProviderJobRunner | undefined;
  const minting = createMintingService({ db, clock, keyring, audit, nudge: () => providerJobs?.nudge() });
  const leases = createLeaseService({
    db,
    clock,
    audit,
    keys,
    events,
    tokens,
    proxyBaseUrl: () => `${publicUrl}/v1`,
    metrics,
    mintedSecret: minting.mintedSecret,
  });
  // Minted keys' provider calls: every lease change that queues one writes a lease event too, so an
  // event (here or from another instance) wakes the runner.
  providerJobs = createProviderJobRunner({
    db,
    clock,
    keyring,
    logger,
    events,
    leases,
    maxAttempts: config.providerJobAttempts ?? 8,
    claimMs: (config.providerJobClaimSeconds ?? 60) * 1000,
    sweep: createOrphanSweep({ db, keyring, logger, audit }),
    sweepMs: (config.mintedKeySweepSeconds ?? 600) * 1000,
    metrics,
  });
  const wakeProviderJobs = (batch: readonly { type: string }[]) => {
    if (batch.some((e) => e.type !== 'USAGE')) providerJobs?.nudge();
  };
  events.observe(wakeProviderJobs);
  pump.listen(wakeProviderJobs);
  // Rate limits run on real time whatever the injected clock: they limit load, not domain time.
  const leaseRequestLimits = createLeaseRequestLimits({ db, clock: systemClock, logger });
  const tierPolicies = createTierPolicyService({ db, audit, onChanged: leaseRequestLimits.policiesChanged });
  const live = createLiveEvents({ db, pump, limits: subscriberLimits });
  const usage = createUsageService({ db, clock, events, leases });
  const usageHistory = createUsageHistory({ db, clock });
  const pool = createPoolSummary({ db, clock });
  const services = { audit, users, keys, keyUsage, leases, tierPolicies, pool, live, usage, usageHistory, minting };
  const meter = createMeterBuffer({
    usage: { recordBatch: metrics.timedBatches(usage.recordBatch) },
    logger,
    onSettled: admission.settled,
    maxUnwritten: options.maxUnwrittenMetering,
  });
  const generations = createGenerationLookups({ delaysMs: options.generationDelaysMs });
  const proxy = createMeteringProxy({
    admission,
    tokens,
    meter,
    generations,
    clock,
    logger,
    rateLimits: leaseRequestLimits,
    metrics,
  });

  const expiry = createExpiryJob({ clock, leases, pump, logger });
  const reconcile = createReconcileJob({ db, keys, clock, logger });
  const partitions = createPartitionJob({ db, clock, logger, retention: config.retention ?? DEFAULT_RETENTION });
  const scheduler = createScheduler({
    jobs: [partitions, expiry, reconcile, providerJobs],
    logger,
    elect: (onChange) =>
      database.embedded
        ? soleLeader(onChange)
        : advisoryLockLeader({
            url: database.url,
            lockKey: SCHEDULER_LOCK,
            onChange,
            logger,
            intervalMs: options.leaderIntervalMs,
          }),
  });

  const authenticator = createAuthenticator({
    jwtSecret: config.jwtSecret,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    clock,
  });
  const graphql = createGraphQLHandler({
    authenticator,
    services,
    prisma: db,
    logger,
    corsOrigins: config.corsOrigins ?? [],
    production: config.production ?? false,
    plugins: [
      useMutationRateLimit({ limits, buckets: createTokenBuckets({ clock: systemClock }) }),
      useGraphQLMetrics(metrics.registry),
    ],
  });
  const requestLimits = createRequestLimits(limits, logger);
  const server = createHttpServer({
    graphql,
    logger,
    staticDir: path.join(projectRoot, 'web/dist'),
    proxy,
    limits: requestLimits,
    metrics: createMetricsEndpoint({
      metrics,
      authenticator,
      access: { token: config.metricsToken, addresses: config.metricsAddresses },
    }),
    // Only on the generated development secret: with MPK_JWT_SECRET set the endpoint does not exist.
    devSignIn: config.generatedSecrets.includes('MPK_JWT_SECRET')
      ? createDevSignIn({
          jwtSecret: config.jwtSecret,
          issuer: config.jwtIssuer,
          audience: config.jwtAudience,
          clock,
          logger,
        })
      : undefined,
    health: () => ({ scheduler: options.scheduler === false ? 'off' : scheduler.isLeader() ? 'leader' : 'standby' }),
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
      const ready = Object.values(checks).every((c) => c === 'ok');
      // Reported, never required: without Redis the instance serves on the event log's fallback poll.
      if (config.redisUrl) checks.redis = nudges.state();
      return { ready, checks };
    },
  });
  const websocket = attachWebSocket(server, graphql, authenticator, subscriberLimits);
  metrics.watch({
    activeLeases: () => activeLeaseCounts(db),
    unwrittenMetering: meter.unwritten,
    subscribers: subscriberLimits.open,
    schedulerLeader: scheduler.isLeader,
    providerJobs: () => unfinishedProviderJobs(db),
    onError: (err, source) => logger.warn({ err, source }, 'a metric could not be read for a scrape'),
  });

  return {
    db,
    services,
    pump,
    /** Subscriptions and WebSocket connections held open on this instance, capped per USER. */
    subscriberLimits,
    /** This instance's Prometheus registry and instruments (GET /metrics). */
    metrics,
    expiry,
    reconcile,
    /** History partitions made ahead and dropped past retention (at start, then hourly). */
    partitions,
    providerJobs,
    scheduler,
    logger,
    server,
    embeddedDatabase: database.embedded,
    /** Listens on config.port (0 = any free port), starts the scheduler, returns the base URL. */
    async listen(): Promise<string> {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => resolve());
      });
      if (options.scheduler !== false) await scheduler.start();
      const { port } = server.address() as AddressInfo;
      const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
      publicUrl ||= url;
      logger.info(
        {
          url: `${url}/graphql`,
          database: database.embedded ? 'embedded' : 'postgres',
          redis: Boolean(config.redisUrl),
        },
        'MPK is listening',
      );
      return url;
    },
    /**
     * Graceful stop: stop accepting, close subscriptions (1001), let in-flight requests finish
     * (up to `graceMs`), write the metering still queued (retrying up to `graceMs` more, and
     * reporting what could not be written), hand the scheduler lock back, then close the database.
     */
    async stop(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await websocket.close();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      requestLimits.close();
      await proxy.close();
      await meter.stop(graceMs);
      await scheduler.stop();
      keyUsage.stop();
      await pump.stop();
      await nudges.close();
      await db.$disconnect();
      await database.close();
    },
  };
}
export type App = Awaited<ReturnType<typeof buildApp>>;
