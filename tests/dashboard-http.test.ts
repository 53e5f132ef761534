// What the dashboard and GraphiQL rely on over HTTP: client routes answered with the app and API
// paths with JSON, GraphiQL served offline, token rejections that say why, development sign-in
// only on the generated secret and only from loopback, and sockets that end with their token.
import http from 'node:http';
import type { Socket } from 'node:net';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../server/auth/authenticator.js';
import { isLoopbackRequest } from '../server/http/dev-sign-in.js';
import { AUTHORIZATION_EXAMPLE } from '../server/http/graphiql.js';
import { TOKEN_EXPIRED_CLOSE } from '../server/http/websocket.js';
import { dashboardPages } from './support/browser.js';
import { startTestServer, type TestServer, withTestServer } from './support/server.js';
import { collect, wsClient } from './support/ws.js';

let server: TestServer;

withTestServer({}, (s) => ({ server } = s));

/** A raw GET, so that the Host header can be anything. */
function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('routes', () => {
  it('answers every dashboard route with the app, with a strict content security policy', async () => {
    const pages = dashboardPages('0b6f8a4e-1d7c-4a39-9a7e-3a2b1c0d9e8f', 'abc');
    for (const path of [...pages, '/leases?status=ACTIVE', '/no-such-page']) {
      const res = await get(path, { accept: 'text/html' });
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.body).toContain('<div id="root">');
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('answers unknown API-looking paths with a JSON 404, never the app', async () => {
    const apiLooking = ['/v1/nope', '/v1', '/api/nope', '/api', '/graphql/extra', '/healthz/x', '/metrics/x'];
    for (const path of [...apiLooking, '/.well-known/x', '/assets/missing.js']) {
      const res = await get(path, { accept: 'text/html,application/json' });
      expect(res.status, path).toBe(404);
      expect(res.headers['content-type'], path).toMatch(/application\/json/);
      expect(() => JSON.parse(res.body), path).not.toThrow();
    }
    const proxy = JSON.parse((await get('/v1/nope')).body);
    expect(proxy.error.code).toBe('unknown_url');
  });
});

describe('GraphiQL', () => {
  it('is served from the npm package, with nothing loaded from another host, compressed when asked', async () => {
    const page = await get('/graphql', { accept: 'text/html' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('MPK GraphQL');
    expect(page.body).toContain('renderYogaGraphiQL');
    // No <script src> or <link href> to another origin: everything is inline.
    expect(page.body).not.toMatch(/<(script|link)[^>]+(src|href)="https?:\/\//);
    const gz = await get('/graphql', { accept: 'text/html', 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(Number(gz.headers['content-length'])).toBeLessThan(page.body.length / 2);
  });

  it('loads the schema with the header example still in place, and says what is wrong with it elsewhere', async () => {
    const headers = { 'content-type': 'application/json', authorization: AUTHORIZATION_EXAMPLE };
    const schema = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: getIntrospectionQuery() }),
    });
    const body = await schema.json();
    expect(body.errors).toBeUndefined();
    expect(body.data.__schema.queryType.name).toBe('Query');
    const me = await (
      await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query: '{ me { id } __typename }' }),
      })
    ).json();
    expect(me.errors[0].extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'MALFORMED' });
  });
});

describe('token rejections say why', () => {
  it('expired, wrong signature and malformed tokens each carry their reason', async () => {
    const expired = await server.token('ADMIN', 'late', { now: new Date(Date.now() - 7200_000), expiresInSeconds: 60 });
    const forged = await mintToken({
      secret: 'another-secret-of-at-least-32-characters!!',
      sub: 'forger',
      role: 'ADMIN',
    });
    const cases: [string, string, RegExp][] = [
      [expired, 'EXPIRED', /expired/i],
      [forged, 'BAD_SIGNATURE', /signature/i],
      ['not.a.token', 'MALFORMED', /malformed/i],
    ];
    for (const [token, reason, message] of cases) {
      const res = await server.gql('{ me { id } }', {}, token);
      expect(res.errors?.[0]?.extensions, reason).toMatchObject({ code: 'UNAUTHENTICATED', reason });
      expect(res.errors?.[0]?.message).toMatch(message);
    }
  });

  it('closes a socket when its token expires (4401), so no subscription outlives its identity', async () => {
    const token = await server.token('OBSERVER', 'brief', { expiresInSeconds: 2 });
    let closed: { code: number; reason: string } | undefined;
    const client = wsClient(server.url, token, (event) => (closed ??= event));
    const events = collect(client, 'subscription { leaseEvents { type } }');
    const started = Date.now();
    while (!closed && Date.now() - started < 6000) await new Promise((r) => setTimeout(r, 50));
    events.dispose();
    await client.dispose();
    expect(closed).toMatchObject({ code: TOKEN_EXPIRED_CLOSE, reason: 'Token expired' });
    // Whole seconds: the token was minted up to a second before the clock's turn.
    expect(Date.now() - started).toBeGreaterThan(900);
  });
});

describe('development sign-in', () => {
  it('does not exist when MPK_JWT_SECRET is set', async () => {
    expect((await get('/api/dev-sign-in')).status).toBe(404);
    const post = await fetch(`${server.url}/api/dev-sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"role":"ADMIN","sub":"x"}',
    });
    expect(post.status).toBe(404);
  });

  describe('on the generated development secret', () => {
    let dev: TestServer;
    beforeAll(async () => {
      dev = await startTestServer({ config: { generatedSecrets: ['MPK_JWT_SECRET'] } });
    });
    afterAll(async () => dev?.close());
    const signIn = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      fetch(`${dev.url}/api/dev-sign-in`, { method: 'POST', headers, body: JSON.stringify(body) });

    it('offers the roles, and mints a short-lived token of the asked role that the API accepts', async () => {
      const offer = await (await fetch(`${dev.url}/api/dev-sign-in`)).json();
      expect(offer.roles).toEqual(['ADMIN', 'USER', 'WORKER', 'OBSERVER']);
      expect(offer.expiresInSeconds).toBeLessThanOrEqual(3600);
      const res = await signIn({ role: 'OBSERVER', sub: 'dev-observer' });
      expect(res.status).toBe(200);
      const { token, expiresAt } = await res.json();
      const lifetime = new Date(expiresAt).getTime() - Date.now();
      expect(lifetime).toBeGreaterThan(3500_000);
      expect(lifetime).toBeLessThanOrEqual(3600_000);
      expect((await dev.gql('{ me { id role } }', {}, token)).data.me).toEqual({
        id: 'dev-observer',
        role: 'OBSERVER',
      });
      expect(dev.logs.join('\n')).not.toContain(token);
    });

    it('refuses bad input, non-JSON bodies, and requests not meant for this machine', async () => {
      const bad = await signIn({ role: 'ROOT', sub: 'x' });
      expect(bad.status).toBe(400);
      expect((await bad.json()).field).toBe('role');
      expect((await signIn({ role: 'ADMIN', sub: 'has space' })).status).toBe(400);
      expect((await signIn({ role: 'ADMIN', sub: 'x' }, { 'content-type': 'text/plain' })).status).toBe(415);
      const { port } = new URL(dev.url);
      const rebound = await new Promise<number>((resolve, reject) => {
        http
          .get(
            { host: '127.0.0.1', port, path: '/api/dev-sign-in', headers: { host: `evil.example:${port}` } },
            (res) => {
              res.resume();
              resolve(res.statusCode!);
            },
          )
          .on('error', reject);
      });
      expect(rebound).toBe(404);
      const forwarded = await fetch(`${dev.url}/api/dev-sign-in`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      expect(forwarded.status).toBe(404);
    });
  });

  it('counts only loopback peers with a loopback Host as local', () => {
    const req = (remoteAddress: string, host: string, extra: Record<string, string> = {}) =>
      ({ socket: { remoteAddress } as Socket, headers: { host, ...extra } }) as unknown as http.IncomingMessage;
    expect(isLoopbackRequest(req('127.0.0.1', '127.0.0.1:4000'))).toBe(true);
    expect(isLoopbackRequest(req('::1', 'localhost:4000'))).toBe(true);
    expect(isLoopbackRequest(req('::ffff:127.0.0.1', '[::1]:4000'))).toBe(true);
    expect(isLoopbackRequest(req('10.0.0.5', '127.0.0.1:4000'))).toBe(false);
    expect(isLoopbackRequest(req('192.168.1.2', 'localhost'))).toBe(false);
    expect(isLoopbackRequest(req('127.0.0.1', 'mpk.example.com'))).toBe(false);
    expect(isLoopbackRequest(req('127.0.0.1', 'localhost', { forwarded: 'for=203.0.113.7' }))).toBe(false);
  });
});
