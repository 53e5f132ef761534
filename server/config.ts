// Every environment variable MPK reads, parsed and validated in one place.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Role } from './core/identity.js';
import { metricsAddressList, parseMetricsAddresses } from './metrics/addresses.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(500).default(20),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  MPK_EVENT_POLL_MS: z.coerce.number().int().min(50).max(3_600_000).default(500),
  MPK_PROVIDER_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  MPK_PROVIDER_JOB_CLAIM_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  MPK_MINTED_KEY_SWEEP_SECONDS: z.coerce.number().int().min(1).max(86_400).default(600),
  MPK_EVENT_FALLBACK_POLL_MS: z.coerce.number().int().min(50).max(10_000).default(250),
  MPK_MAX_SUBSCRIPTIONS_PER_USER: z.coerce.number().int().min(0).default(100),
  MPK_MAX_CONNECTIONS_PER_USER: z.coerce.number().int().min(0).default(50),
  MPK_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  MPK_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  MPK_JWT_ISSUER: z.string().max(512).optional(),
  MPK_JWT_AUDIENCE: z.string().max(512).optional(),
  MPK_CORS_ORIGINS: z.string().max(4096).optional(),
  NODE_ENV: z.string().optional(),
  MPK_MASTER_KEYS: z.string().min(1).optional(),
  MPK_DATA_DIR: z.string().min(1).default('.data'),
  MPK_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  MPK_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').max(4096).optional(),
  MPK_METRICS_ADDRESSES: z.string().max(4096).optional(),
  MPK_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  MPK_MAX_CONNECTIONS_PER_ADDRESS: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
  MPK_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  MPK_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  MPK_BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  MPK_BODY_BUDGET_MIB: z.coerce.number().min(1).max(1_048_576).default(256),
  MPK_MUTATION_BURST: z.coerce.number().int().min(1).max(1_000_000).default(600),
  MPK_MUTATIONS_PER_SECOND: z.coerce.number().min(0.001).max(1_000_000).default(10),
  MPK_RETAIN_USAGE_DAYS: z.coerce.number().int().min(1).max(36_500).default(90),
  MPK_RETAIN_EVENTS_DAYS: z.coerce.number().int().min(1).max(36_500).default(30),
  MPK_RETAIN_AUDIT_DAYS: z.coerce.number().int().min(1).max(36_500).default(400),
  MPK_MUTATION_LIMITED_ROLES: z
    .string()
    .regex(/^(none|((user|worker|admin|observer)(\s*,\s*|$))+)$/i, 'a list of user, worker, admin, observer, or none')
    .default('USER'),
});

/**
 * How long each history table keeps its rows, in days: usage records, lease events, audit entries.
 * Whole month partitions are dropped once they end this long ago (server/db/partitions.ts); the
 * spend rollups are kept.
 */
export interface HistoryRetention {
  usageDays: number;
  eventsDays: number;
  auditDays: number;
}

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** Connections per instance to DATABASE_URL (the embedded database sets its own). */
  dbPoolSize: number;
  redisUrl: string | undefined;
  /** Reads of the event log when nothing woke it, while the Redis subscription is live (ms). */
  eventPollMs?: number;
  /** Reads of the event log while the Redis subscription is not live: Redis down, starting (ms). */
  eventFallbackPollMs?: number;
  /** Tries of a provider job on a minted key before it is IRRECOVERABLE (default 8). */
  providerJobAttempts?: number;
  /** How long a claimed provider job is its runner's before another may claim it (default 60 s). */
  providerJobClaimSeconds?: number;
  /** How often the orphan sweep lists the providers' keys (default 600 s). */
  mintedKeySweepSeconds?: number;
  /** Concurrent subscriptions per USER on one instance (0 = no limit). */
  maxSubscriptionsPerUser?: number;
  /** Concurrent WebSocket connections per USER on one instance (0 = no limit). */
  maxConnectionsPerUser?: number;
  jwtSecret: string;
  jwksUrl: string | undefined;
  /** Tokens must carry this `iss` (required with a JWKS; checked on every token when set). */
  jwtIssuer?: string | undefined;
  /** Tokens must list this in `aud` (required with a JWKS; checked on every token when set). */
  jwtAudience?: string | undefined;
  /** Origins (scheme://host[:port]) a browser may call the API from; none = same origin only. */
  corsOrigins?: readonly string[];
  /** NODE_ENV=production: anonymous callers get no introspection and no field suggestions. */
  production?: boolean;
  /** `id:base64key,...`; the first one encrypts. */
  masterKeys: string;
  dataDir: string;
  /** Where agents reach this server (the metering proxy's base); absent = where it listens. */
  publicUrl?: string | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
  /** A bearer secret that may read /metrics (a scraper's); none when absent. */
  metricsToken?: string | undefined;
  /** Peers that may read /metrics without credentials (`loopback`, IPs, CIDRs); loopback when absent. */
  metricsAddresses?: readonly string[];
  /** Connections, timeouts, the request body budget and rate limits; DEFAULT_LIMITS when absent. */
  limits?: Limits;
  /** Days of history kept (MPK_RETAIN_USAGE_DAYS, _EVENTS_DAYS, _AUDIT_DAYS); DEFAULT_RETENTION when absent. */
  retention?: HistoryRetention;
  /** Names of the secrets that were generated for development because none was set. */
  generatedSecrets: string[];
}

/** What one instance takes on at once, and how fast one caller may go (see README, Errors and limits). */
export interface Limits {
  /** Open connections in all (HTTP and WebSocket); over it, new ones are closed at once. */
  maxConnections: number;
  /** Open connections from one address; 0 = no cap (behind a reverse proxy every client is one address). */
  maxConnectionsPerAddress: number;
  /** Time to receive a request's headers. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body (not the answer). */
  requestTimeoutMs: number;
  /** Time a request body may make no progress before its connection is closed. */
  bodyIdleTimeoutMs: number;
  /** Request bodies (/graphql, /v1) being received at once, in bytes; over it, 503 with Retry-After. */
  bodyBudgetBytes: number;
  /** Mutations per caller: a token bucket of `mutationBurst`, refilled at `mutationsPerSecond`. */
  mutationBurst: number;
  mutationsPerSecond: number;
  /** The roles whose mutations are rate-limited (USER only, by default). */
  mutationLimitedRoles: readonly Role[];
}

function limitsOf(e: ReturnType<typeof parseEnv>): Limits {
  if (e.MPK_HEADERS_TIMEOUT_MS > e.MPK_REQUEST_TIMEOUT_MS)
    throw new ConfigError('Invalid environment:\n  MPK_HEADERS_TIMEOUT_MS: must not exceed MPK_REQUEST_TIMEOUT_MS');
  const roles = e.MPK_MUTATION_LIMITED_ROLES.toUpperCase();
  return {
    maxConnections: e.MPK_MAX_CONNECTIONS,
    maxConnectionsPerAddress: e.MPK_MAX_CONNECTIONS_PER_ADDRESS,
    headersTimeoutMs: e.MPK_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: e.MPK_REQUEST_TIMEOUT_MS,
    bodyIdleTimeoutMs: e.MPK_BODY_IDLE_TIMEOUT_MS,
    bodyBudgetBytes: Math.round(e.MPK_BODY_BUDGET_MIB * 1024 * 1024),
    mutationBurst: e.MPK_MUTATION_BURST,
    mutationsPerSecond: e.MPK_MUTATIONS_PER_SECOND,
    mutationLimitedRoles: roles === 'NONE' ? [] : [...new Set(roles.split(',').map((r) => r.trim() as Role))],
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function parseEnv(env: NodeJS.ProcessEnv) {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  const lines = parsed.success ? [] : parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  if (parsed.success) {
    // A JWKS usually serves many applications: without both checks, a token it signed for any of
    // them would be accepted here.
    for (const name of ['MPK_JWT_ISSUER', 'MPK_JWT_AUDIENCE'] as const) {
      if (parsed.data.MPK_JWKS_URL && !parsed.data[name]) lines.push(`  ${name}: required when MPK_JWKS_URL is set`);
    }
    try {
      metricsAddressList(parseMetricsAddresses(parsed.data.MPK_METRICS_ADDRESSES));
    } catch (error) {
      lines.push(`  MPK_METRICS_ADDRESSES: ${(error as Error).message}`);
    }
    for (const origin of splitList(parsed.data.MPK_CORS_ORIGINS)) {
      if (corsOrigin(origin) === undefined)
        lines.push(`  MPK_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin like https://app.example.com`);
    }
  }
  if (!parsed.success || lines.length) throw new ConfigError(`Invalid environment:\n${lines.join('\n')}`);
  return parsed.data;
}

const splitList = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** The origin as browsers send it in `Origin` (no path, no trailing slash); undefined if it is not one. */
function corsOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return value.replace(/\/$/, '') === url.origin ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

interface DevSecrets {
  jwtSecret: string;
  masterKeys: string;
}

/**
 * Reads the dev secrets kept in the data dir, creating them (mode 0600) on first start, so that a
 * restart can still read what the previous run encrypted and verify the tokens it minted.
 */
async function loadDevSecrets(dataDir: string): Promise<DevSecrets> {
  const file = path.join(dataDir, 'dev-secrets.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as DevSecrets;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secrets: DevSecrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    masterKeys: `dev1:${randomBytes(32).toString('base64')}`,
  };
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, JSON.stringify(secrets, null, 2), { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return secrets;
}

export async function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const e = parseEnv(env);
  const dataDir = path.resolve(e.MPK_DATA_DIR);
  const generatedSecrets: string[] = [];
  let jwtSecret = e.MPK_JWT_SECRET;
  let masterKeys = e.MPK_MASTER_KEYS;
  if (!jwtSecret || !masterKeys) {
    const dev = await loadDevSecrets(dataDir);
    if (!jwtSecret) {
      jwtSecret = dev.jwtSecret;
      generatedSecrets.push('MPK_JWT_SECRET');
    }
    if (!masterKeys) {
      masterKeys = dev.masterKeys;
      generatedSecrets.push('MPK_MASTER_KEYS');
    }
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dbPoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    eventPollMs: e.MPK_EVENT_POLL_MS,
    eventFallbackPollMs: e.MPK_EVENT_FALLBACK_POLL_MS,
    providerJobAttempts: e.MPK_PROVIDER_JOB_ATTEMPTS,
    providerJobClaimSeconds: e.MPK_PROVIDER_JOB_CLAIM_SECONDS,
    mintedKeySweepSeconds: e.MPK_MINTED_KEY_SWEEP_SECONDS,
    maxSubscriptionsPerUser: e.MPK_MAX_SUBSCRIPTIONS_PER_USER,
    maxConnectionsPerUser: e.MPK_MAX_CONNECTIONS_PER_USER,
    jwtSecret,
    jwksUrl: e.MPK_JWKS_URL,
    jwtIssuer: e.MPK_JWT_ISSUER,
    jwtAudience: e.MPK_JWT_AUDIENCE,
    corsOrigins: splitList(e.MPK_CORS_ORIGINS).map((origin) => corsOrigin(origin)!),
    production: e.NODE_ENV === 'production',
    masterKeys,
    dataDir,
    publicUrl: e.MPK_PUBLIC_URL?.replace(/\/+$/, ''),
    logLevel: e.LOG_LEVEL,
    metricsToken: e.MPK_METRICS_TOKEN,
    metricsAddresses: parseMetricsAddresses(e.MPK_METRICS_ADDRESSES),
    limits: limitsOf(e),
    retention: retentionOf(e),
    generatedSecrets,
  };
}

function retentionOf(e: ReturnType<typeof parseEnv>): HistoryRetention {
  return {
    usageDays: e.MPK_RETAIN_USAGE_DAYS,
    eventsDays: e.MPK_RETAIN_EVENTS_DAYS,
    auditDays: e.MPK_RETAIN_AUDIT_DAYS,
  };
}

// Last in the file: parsing an empty environment uses everything above.
export const DEFAULT_LIMITS: Limits = limitsOf(parseEnv({}));
export const DEFAULT_RETENTION: HistoryRetention = retentionOf(parseEnv({}));
