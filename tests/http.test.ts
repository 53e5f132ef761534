// The HTTP surface: health, error masking, limits on depth, cost and body size, CSRF prevention.
import { getIntrospectionQuery } from 'graphql';
import { describe, expect, it } from 'vitest';
import { type TestServer, withTestServer } from './support/server.js';

let server: TestServer;
let admin: string;

withTestServer({}, (s) => ({ server, admin } = s));

describe('health', () => {
  it('/healthz says the process is up, /readyz that the database is reachable and migrated', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', scheduler: 'leader' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok' } });
  });

  it('echoes a sane request id and makes one up otherwise', async () => {
    const given = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers.get('x-request-id')).toBe('abc-123');
    const made = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'bad id\twith tab' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('errors', () => {
  it('masks unexpected errors as INTERNAL_SERVER_ERROR and logs them', async () => {
    const original = server.app.services.users.me;
    server.app.services.users.me = async () => {
      throw new Error('database password is hunter2');
    };
    try {
      const res = await server.gql('{ me { id } }', {}, admin);
      expect(res.errors?.[0]).toMatchObject({
        message: 'Unexpected error.',
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
      expect(res.raw).not.toContain('hunter2');
      expect(server.logs.some((l) => l.includes('hunter2'))).toBe(true);
    } finally {
      server.app.services.users.me = original;
    }
  });

  it('gives syntax and validation errors a code', async () => {
    const parse = await server.gql('{ me { id }', {}, admin);
    expect(parse.errors?.[0]?.extensions?.code).toBeTruthy();
    const unknown = await server.gql('{ nothingHere }', {}, admin);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

describe('limits', () => {
  it('refuses queries deeper than the limit', async () => {
    const ofTypes = (n: number) => `${'ofType { '.repeat(n)}name${' }'.repeat(n)}`;
    const tooDeep = await server.gql(`{ __schema { types { fields { type { ${ofTypes(14)} } } } } }`, {}, admin);
    expect(tooDeep.errors?.[0]?.message).toMatch(/depth/i);
    const full = await server.gql(getIntrospectionQuery(), {}, admin);
    expect(full.errors).toBeUndefined();
    expect(full.data.__schema.queryType.name).toBe('Query');
  });

  it('refuses too many aliases', async () => {
    const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ');
    const res = await server.gql(`{ ${aliases} }`, {}, admin);
    expect(res.errors?.[0]?.message).toMatch(/alias/i);
  });

  it('refuses bodies over 1 MiB, declared or streamed', async () => {
    const big = JSON.stringify({ query: '{ me { id } }', variables: { pad: 'x'.repeat(1.5 * 1024 * 1024) } });
    const declared = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: big,
    });
    expect(declared.status).toBe(413);
    const chunks = new TextEncoder().encode(big);
    const streamed = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < chunks.length; i += 64 * 1024) controller.enqueue(chunks.slice(i, i + 64 * 1024));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch((error: Error) => error);
    if (streamed instanceof Error) expect(streamed.message).toMatch(/fetch failed|socket|reset/i);
    else expect(streamed.status).toBe(413);
  });
});

describe('CSRF prevention', () => {
  it('refuses a simple (non-preflighted) browser request without the CSRF header', async () => {
    const form = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
    expect(form.status).toBe(403);
    const text = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(text.status).toBe(403);
  });

  it('lets JSON requests and requests with the header through', async () => {
    const json = await server.gql('{ __typename }');
    expect(json.data).toEqual({ __typename: 'Query' });
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { 'x-mpk-csrf': '1', accept: 'application/json' },
    });
    expect(await get.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('serves GraphiQL to a browser', async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('MPK GraphQL');
  });
});
