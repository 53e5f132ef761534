// Input hygiene and what an outsider may learn, on a server configured as in production: NUL bytes
// and over-deep values are BAD_USER_INPUT (never a 500), variable errors never echo a secret,
// anonymous callers get no introspection and no suggestions, and CORS admits listed origins only.
import { describe, expect, it } from 'vitest';
import { MAX_INPUT_DEPTH } from '../server/graphql/hygiene.js';
import { codeOf, ok, providerSecret, Q } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';
import { collect, wsClient } from './support/ws.js';

const APP_ORIGIN = 'https://app.example.com';
let server: TestServer;
let admin: string;

withTestServer(
  { roles: 'hyg', config: { production: true, corsOrigins: [APP_ORIGIN, 'http://localhost:5173'] } },
  (s) => ({ server, admin } = s),
);

/** `levels` objects nested in one another, innermost `{ leaf: 1 }`. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i += 1) value = { a: value };
  return value;
}

const keyInput = (extra: Record<string, unknown>) => ({
  provider: 'OPENROUTER',
  label: 'hygiene',
  apiKey: providerSecret('hyg'),
  ...extra,
});

describe('NUL bytes are BAD_USER_INPUT wherever they are', () => {
  it('in filter arguments, as variables or written in the document', async () => {
    for (const variables of [{ userId: 'u\u0000' }, { agentId: 'agent\u0000' }]) {
      const res = await server.gql(Q.leases, variables, admin);
      expect(res.status).toBe(200);
      expect(res.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: Object.keys(variables)[0],
      });
    }
    const literal = await server.gql(`{ auditLog(targetId: "x\\u0000y") { totalCount } }`, {}, admin);
    expect(literal.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'targetId' });
  });

  it('in input fields and inside JSON, keys included; nothing is written', async () => {
    const before = await server.app.db.managedKey.count();
    for (const extra of [
      { label: 'pool\u0000' },
      { config: { frameworks: { GENERIC: { note: 'a\u0000b' } } } },
      { config: { frameworks: { GENERIC: { 'k\u0000': 1 } } } },
    ]) {
      const res = await server.gql(Q.createKey, { input: keyInput(extra) }, admin);
      expect(codeOf(res), JSON.stringify(res.errors)).toBe('BAD_USER_INPUT');
    }
    expect(await server.app.db.managedKey.count()).toBe(before);
    // Other control characters are text like any other (a newline in a label is not an attack).
    ok(await server.gql(Q.createKey, { input: keyInput({ label: 'two\nlines' }) }, admin), 'createManagedKey');
  });
});

describe('over WebSocket too', () => {
  it('a NUL byte in a subscription is BAD_USER_INPUT; anonymous sockets get no introspection', async () => {
    const signedIn = wsClient(server.url, admin);
    const anonymous = wsClient(server.url, null);
    try {
      const nul = collect(signedIn, 'subscription($k: ID) { leaseEvents(keyId: $k) { type } }', { k: 'k\u0000' });
      const schema = collect(anonymous, '{ __schema { queryType { name } } }');
      await expect.poll(() => nul.errors.length + schema.errors.length, { timeout: 5000 }).toBe(2);
      expect(nul.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'k' } });
      expect(JSON.stringify(schema.errors[0])).toContain('introspection has been disabled');
      expect(schema.items).toEqual([]);
    } finally {
      await signedIn.dispose();
      await anonymous.dispose();
    }
  });
});

describe('over-deep values are BAD_USER_INPUT, and cannot overflow the stack', () => {
  it('a 5,000-deep config variable', async () => {
    // Written out by hand: JSON.stringify itself overflows at this depth.
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const input = JSON.stringify(keyInput({ config: { frameworks: { GENERIC: '<DEEP>' } } })).replace('"<DEEP>"', deep);
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: `{"query":${JSON.stringify(Q.createKey)},"variables":{"input":${input}}}`,
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(body.errors?.[0]?.message).toContain(`deeper than ${MAX_INPUT_DEPTH}`);
  });

  it('a deep literal in the document; a config of real depth still passes', async () => {
    const deep = `${'{a: '.repeat(40)}1${'}'.repeat(40)}`;
    const doc = `mutation { createManagedKey(input: { provider: OPENROUTER, label: "deep", apiKey: "${providerSecret()}",
      config: { frameworks: { GENERIC: ${deep} } } }) { id } }`;
    expect(codeOf(await server.gql(doc, {}, admin))).toBe('BAD_USER_INPUT');
    const real = { frameworks: { GENERIC: nested(20) } };
    ok(await server.gql(Q.createKey, { input: keyInput({ config: real }) }, admin), 'createManagedKey');
  });
});

describe('variable errors never echo a secret', () => {
  it('an unknown field beside the apiKey, an apiKey of the wrong type', async () => {
    const secret = providerSecret('echo');
    const cases = [
      { ...keyInput({ apiKey: secret }), labell: 'typo' },
      keyInput({ apiKey: { value: secret } }),
      keyInput({ apiKey: [secret] }),
      keyInput({ provider: secret, apiKey: secret }),
    ];
    for (const input of cases) {
      const res = await server.gql(Q.createKey, { input }, admin);
      expect(codeOf(res), res.raw).toBe('BAD_USER_INPUT');
      expect(res.raw).not.toContain(secret);
      expect(res.raw).not.toContain(secret.slice(0, 16));
    }
    const typo = await server.gql(Q.createKey, { input: cases[0] }, admin);
    expect(typo.errors?.[0]?.message).toBe(
      'Variable "$input" got invalid value; Field "labell" is not defined by type "CreateManagedKeyInput".',
    );
    const wrongType = await server.gql(Q.createKey, { input: cases[1] }, admin);
    expect(wrongType.errors?.[0]).toMatchObject({
      message: 'Variable "$input" got invalid value at "input.apiKey"; String cannot represent a non string value',
      extensions: { code: 'BAD_USER_INPUT', field: 'apiKey' },
    });
  });
});

describe('in production, anonymous callers do not see the schema', () => {
  const INTROSPECT = '{ __schema { queryType { name } } }';

  it('no introspection without a valid token; with one, as before', async () => {
    for (const token of [null, 'not-a-token']) {
      const res = await server.gql(INTROSPECT, {}, token);
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.message).toContain('introspection has been disabled');
      expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    }
    expect(ok(await server.gql(INTROSPECT, {}, admin), '__schema')).toEqual({ queryType: { name: 'Query' } });
    // A liveness probe's `{ __typename }` is not introspection.
    expect((await server.gql('{ __typename }', {}, null)).data).toEqual({ __typename: 'Query' });
  });

  it('no "Did you mean" for anonymous callers; suggestions for signed-in ones', async () => {
    const anonymous = await server.gql('{ leasez { totalCount } }', {}, null);
    expect(anonymous.errors?.[0]?.message).toBe('Cannot query field "leasez" on type "Query".');
    const signedIn = await server.gql('{ leasez { totalCount } }', {}, admin);
    expect(signedIn.errors?.[0]?.message).toMatch(/Did you mean .*"leases"/);
  });
});

describe('CORS admits configured origins only', () => {
  const post = (origin: string) =>
    fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
  const preflight = (origin: string) =>
    fetch(`${server.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });

  it('a foreign origin gets no Access-Control-Allow-Origin, nor credentials', async () => {
    for (const res of [await post('https://evil.example'), await preflight('https://evil.example')]) {
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it('a configured origin is allowed, with credentials, and only itself', async () => {
    for (const res of [await post(APP_ORIGIN), await preflight(APP_ORIGIN)]) {
      expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    }
    const allowed = await preflight(APP_ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
  });
});
