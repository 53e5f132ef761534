// Identity over real HTTP: which tokens are accepted, which are refused, and how roles are read.
// The server trusts a local JWKS and checks an issuer and an audience, as production must.
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../tests/support/server.js';
import { ConfigError, parseEnv } from '../config.js';

const ME = `{ me { id email role tier activeLeaseCount } }`;
const ISSUER = 'https://auth.example.com/';
const AUDIENCE = 'mpk';
const now = () => Math.floor(Date.now() / 1000);

let server: TestServer;
let jwks: http.Server;
let jwksUrl: string;
let rsa: Awaited<ReturnType<typeof generateKeyPair>>;

const sign = (
  claims: Record<string, unknown>,
  secret: string,
  exp: number | null = Math.floor(Date.now() / 1000) + 600,
) => {
  const jwt = new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'someone', ...claims }).setProtectedHeader({
    alg: 'HS256',
  });
  if (exp !== null) jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(secret));
};

/** An RS256 token from the JWKS's key: for this server unless the claims say otherwise. */
const signRsa = (claims: Record<string, unknown>, sub = 'rsa-user') =>
  new SignJWT({ iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600, sub, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(rsa.privateKey);

beforeAll(async () => {
  rsa = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwks = http.createServer((_, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
  );
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  server = await startTestServer({ config: { jwksUrl, jwtIssuer: ISSUER, jwtAudience: AUDIENCE } });
});
afterAll(async () => {
  await server?.close();
  jwks?.close();
});

describe('accepted tokens', () => {
  it('creates the user on first sight with tier FREE, role from mpk_role', async () => {
    const res = await server.gql(ME, {}, await server.token('ADMIN', 'alice', { email: 'alice@example.com' }));
    expect(res.data.me).toEqual({
      id: 'alice',
      email: 'alice@example.com',
      role: 'ADMIN',
      tier: 'FREE',
      activeLeaseCount: 0,
    });
  });

  it('reads the role from app_metadata.mpk_role (Supabase) and defaults to USER', async () => {
    const supa = await sign({ app_metadata: { mpk_role: 'observer' }, sub: 'supa' }, server.config.jwtSecret);
    expect((await server.gql(ME, {}, supa)).data.me.role).toBe('OBSERVER');
    const plain = await sign({}, server.config.jwtSecret);
    expect((await server.gql(ME, {}, plain)).data.me.role).toBe('USER');
  });

  it('accepts an RS256 token from the JWKS', async () => {
    const token = await signRsa({ mpk_role: 'worker' }, 'rsa-worker');
    expect((await server.gql(ME, {}, token)).data.me).toMatchObject({ id: 'rsa-worker', role: 'WORKER' });
  });

  it('accepts an audience among several, and iat and nbf within the clock skew', async () => {
    const token = await signRsa({ aud: ['other-app', AUDIENCE], iat: now() + 30, nbf: now() + 30 }, 'rsa-skew');
    expect((await server.gql(ME, {}, token)).data.me).toMatchObject({ id: 'rsa-skew' });
  });
});

describe('refused tokens get UNAUTHENTICATED', () => {
  const cases: [string, () => Promise<string>][] = [
    ['expired', () => sign({ mpk_role: 'admin' }, server.config.jwtSecret, Math.floor(Date.now() / 1000) - 60)],
    ['without exp', () => sign({ mpk_role: 'admin' }, server.config.jwtSecret, null)],
    ['alg none', async () => new UnsecuredJWT({ mpk_role: 'admin' }).setSubject('x').setExpirationTime('10m').encode()],
    ['wrongly signed', () => sign({ mpk_role: 'admin' }, 'another-secret-that-is-long-enough-123456')],
    ['malformed', async () => 'not.a.jwt'],
    ['garbage', async () => '%%%'],
    ['unknown role', () => sign({ mpk_role: 'superuser' }, server.config.jwtSecret)],
    [
      'HS256 signed with the JWKS public key (algorithm confusion)',
      async () => {
        const pem = JSON.stringify(await exportJWK(rsa.publicKey));
        return sign({ mpk_role: 'admin' }, pem);
      },
    ],
    ['RS256 for another application (issuer)', () => signRsa({ mpk_role: 'admin', iss: 'https://other.example/' })],
    ['RS256 for another application (audience)', () => signRsa({ mpk_role: 'admin', aud: 'other-app' })],
    ['RS256 without an issuer', () => signRsa({ mpk_role: 'admin', iss: undefined })],
    ['RS256 without an audience', () => signRsa({ mpk_role: 'admin', aud: undefined })],
    ['HS256 for another audience', () => sign({ mpk_role: 'admin', aud: 'other-app' }, server.config.jwtSecret)],
    ['issued a year from now', () => signRsa({ mpk_role: 'admin', iat: now() + 365 * 86400 })],
    ['issued beyond the clock skew', () => sign({ iat: now() + 120 }, server.config.jwtSecret)],
    ['not valid before a time to come', () => signRsa({ nbf: now() + 3600 })],
    ['expired beyond the 5 s tolerance', () => signRsa({ exp: now() - 10 })],
    ['a NUL byte in the subject', () => sign({ sub: 'alice\u0000admin' }, server.config.jwtSecret)],
    ['a NUL byte in the email', () => sign({ email: 'a\u0000@example.com' }, server.config.jwtSecret)],
    [
      'RS256 not from the JWKS',
      async () => {
        const other = await generateKeyPair('RS256');
        return new SignJWT({ mpk_role: 'admin' })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setSubject('x')
          .setExpirationTime('10m')
          .sign(other.privateKey);
      },
    ],
  ];

  it.each(cases)('%s', async (_name, make) => {
    const res = await server.gql(ME, {}, await make());
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.data?.me ?? null).toBeNull();
  });

  it('a header that is not a bearer token', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwYXNz' },
      body: JSON.stringify({ query: ME }),
    });
    expect((await res.json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('no token at all', async () => {
    expect((await server.gql(ME, {}, null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('says why: another application, or a time to come', async () => {
    const other = await server.gql(ME, {}, await signRsa({ aud: 'other-app' }));
    expect(other.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CLAIMS' });
    expect(other.errors?.[0]?.message).toContain('aud');
    const future = await server.gql(ME, {}, await signRsa({ iat: now() + 365 * 86400 }));
    expect(future.errors?.[0]?.message).toBe('Token claim iat is in the future');
  });
});

describe('issuer and audience configuration', () => {
  it('are required with a JWKS, optional with the shared secret', () => {
    const jwks = { MPK_JWKS_URL: 'https://auth.example.com/.well-known/jwks.json' };
    expect(() => parseEnv(jwks)).toThrow(ConfigError);
    expect(() => parseEnv({ ...jwks, MPK_JWT_ISSUER: ISSUER })).toThrow(/MPK_JWT_AUDIENCE: required/);
    expect(() => parseEnv({ ...jwks, MPK_JWT_AUDIENCE: AUDIENCE })).toThrow(/MPK_JWT_ISSUER: required/);
    expect(parseEnv({ ...jwks, MPK_JWT_ISSUER: ISSUER, MPK_JWT_AUDIENCE: AUDIENCE })).toMatchObject({
      MPK_JWT_ISSUER: ISSUER,
    });
    expect(() => parseEnv({ MPK_JWT_ISSUER: ISSUER })).not.toThrow();
  });

  it("tokens minted by the server's own tools carry them: the test tokens, npm run token, dev sign-in", async () => {
    // The test server's tokens are minted by mintToken, as `npm run token` and dev sign-in do.
    const minted = await server.token('OBSERVER', 'minted');
    expect(decodeJwt(minted)).toMatchObject({ iss: ISSUER, aud: AUDIENCE });
    expect((await server.gql(ME, {}, minted)).data.me).toMatchObject({ id: 'minted', role: 'OBSERVER' });

    const root = path.resolve(import.meta.dirname, '../..');
    const { stdout } = await promisify(execFile)(
      path.join(root, 'node_modules/.bin/tsx'),
      ['server/cli/token.ts', '--role', 'worker', '--sub', 'cli-worker'],
      {
        cwd: root,
        env: {
          ...process.env,
          MPK_JWT_SECRET: server.config.jwtSecret,
          MPK_JWT_ISSUER: ISSUER,
          MPK_JWT_AUDIENCE: AUDIENCE,
          MPK_DATA_DIR: server.config.dataDir,
        },
      },
    );
    const cli = stdout.trim();
    expect(decodeJwt(cli)).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'cli-worker' });
    expect((await server.gql(ME, {}, cli)).data.me).toMatchObject({ id: 'cli-worker', role: 'WORKER' });

    const dev = await startTestServer({
      config: { generatedSecrets: ['MPK_JWT_SECRET'], jwtIssuer: ISSUER, jwtAudience: AUDIENCE },
      database: server.database,
    });
    try {
      const res = await fetch(`${dev.url}/api/dev-sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'admin', sub: 'dev-admin' }),
      });
      const { token } = await res.json();
      expect(decodeJwt(token)).toMatchObject({ iss: ISSUER, aud: AUDIENCE });
      expect((await dev.gql(ME, {}, token)).data.me).toMatchObject({ id: 'dev-admin', role: 'ADMIN' });
    } finally {
      await dev.close();
    }
  });
});
