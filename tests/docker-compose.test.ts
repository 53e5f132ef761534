// There is no Docker engine on these machines, so the compose file is checked by reading it:
// the services, the wiring between them, and every variable the server needs.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseEnv } from '../server/config.js';

const read = (file: string) => readFile(new URL(`../${file}`, import.meta.url), 'utf8');

describe('docker-compose.yml', () => {
  it('runs PostgreSQL, Redis and the server built from this repo, wired together', async () => {
    const compose = parse(await read('docker-compose.yml'));
    expect(Object.keys(compose.services).sort()).toEqual(['mpk', 'postgres', 'redis']);
    const { postgres, redis, mpk } = compose.services;

    expect(postgres.image).toMatch(/^postgres:\d+/);
    expect(postgres.healthcheck.test.join(' ')).toContain('pg_isready');
    expect(redis.image).toMatch(/^redis:\d+/);

    expect(mpk.build).toBe('.');
    expect(mpk.ports).toContain('4000:4000');
    expect(mpk.depends_on.postgres.condition).toBe('service_healthy');
    expect(Object.keys(mpk.depends_on)).toContain('redis');

    const env = mpk.environment;
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'HOST', 'PORT', 'MPK_JWT_SECRET', 'MPK_MASTER_KEYS'])
      expect(env).toHaveProperty(name);
    const db = new URL(env.DATABASE_URL);
    expect(db.hostname).toBe('postgres');
    expect(db.pathname.slice(1)).toBe(postgres.environment.POSTGRES_DB);
    expect(decodeURIComponent(db.username)).toBe(postgres.environment.POSTGRES_USER);
    expect(decodeURIComponent(db.password)).toBe(postgres.environment.POSTGRES_PASSWORD);
    expect(new URL(env.REDIS_URL).hostname).toBe('redis');
    expect(env.HOST).toBe('0.0.0.0');
    expect(env.PORT).toBe('4000');
    // Production secrets come from the host, and compose refuses to start without them.
    expect(env.MPK_JWT_SECRET).toMatch(/^\$\{MPK_JWT_SECRET:\?/);
    expect(env.MPK_MASTER_KEYS).toMatch(/^\$\{MPK_MASTER_KEYS:\?/);

    // The literal values must be ones the server's own config parser accepts.
    const literal = Object.fromEntries(Object.entries(env).filter(([, v]) => !String(v).startsWith('${'))) as Record<
      string,
      string
    >;
    expect(() => parseEnv(literal)).not.toThrow();
  });

  it('builds an image that runs npm start on port 4000', async () => {
    const dockerfile = await read('Dockerfile');
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/^EXPOSE 4000$/m);
    // Exec form: a shell form would put /bin/sh between docker stop's SIGTERM and the server.
    const cmd = dockerfile.match(/^CMD (.+)$/m)?.[1];
    expect(cmd && JSON.parse(cmd)).toEqual(['npm', 'start']);
    // Without this the server listens on the container's loopback, out of reach of `docker run -p`.
    expect(dockerfile).toMatch(/^ENV .*\bHOST=0\.0\.0\.0\b/m);
  });
});
