// Identity over real HTTP: which tokens are accepted, which are refused, and how roles are read.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../tests/support/server.js';

const ME = `{ me { id email role tier activeLeaseCount } }`;

let server: TestServer;
let jwks: http.Server;
let jwksUrl: string;
let rsa: Awaited<ReturnType<typeof generateKeyPair>>;

const sign = (
  claims: Record<string, unknown>,
  secret: string,
  exp: number | null = Math.floor(Date.now() / 1000) + 600,
) => {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('someone');
  if (exp !== null) jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(secret));
};

beforeAll(async () => {
  rsa = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwks = http.createServer((_, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
  );
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  server = await startTestServer({ config: { jwksUrl } });
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
    const token = await new SignJWT({ mpk_role: 'worker' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('rsa-worker')
      .setExpirationTime('10m')
      .sign(rsa.privateKey);
    expect((await server.gql(ME, {}, token)).data.me).toMatchObject({ id: 'rsa-worker', role: 'WORKER' });
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
});
