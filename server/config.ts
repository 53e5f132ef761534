// Every environment variable MPK reads, parsed and validated in one place.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(500).default(20),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  MPK_EVENT_POLL_MS: z.coerce.number().int().min(50).max(3_600_000).default(500),
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
});

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
  /** Names of the secrets that were generated for development because none was set. */
  generatedSecrets: string[];
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
    generatedSecrets,
  };
}
