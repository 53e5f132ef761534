// The key registry over real HTTP on a real database: input validation that changes nothing, and
// the secret kept out of every response, log and row. (Who may call what: tests/permissions.test.ts.)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../tests/support/server.js';

const KEY_FIELDS = `id provider label maskedKey baseUrl defaultModel fallbackModels config dailyLimitUsd monthlyLimitUsd
  maxActiveLeases status disabledReason activeLeaseCount spendTodayUsd spendThisMonthUsd remainingTodayUsd
  remainingThisMonthUsd lastUsedAt createdAt updatedAt`;
const CREATE = `mutation($input: CreateManagedKeyInput!) { createManagedKey(input: $input) { ${KEY_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateManagedKeyInput!) {
  updateManagedKey(id: $id, input: $input) { ${KEY_FIELDS} } }`;
const DISABLE = `mutation($id: ID!, $reason: String) {
  disableManagedKey(id: $id, reason: $reason) { id status disabledReason } }`;
const ENABLE = `mutation($id: ID!) { enableManagedKey(id: $id) { id status disabledReason } }`;
const ROTATE = `mutation($id: ID!, $apiKey: String!) {
  rotateManagedKeySecret(id: $id, apiKey: $apiKey) { id maskedKey } }`;
const LIST = `query($first: Int, $after: String, $provider: Provider, $status: KeyStatus) {
  managedKeys(first: $first, after: $after, provider: $provider, status: $status) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id label provider status } } } }`;
const GET = `query($id: ID!) { managedKey(id: $id) { ${KEY_FIELDS} } }`;
const AUDIT = `query($first: Int, $after: String) { auditLog(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id at actorId actorRole action targetType targetId details } } } }`;

const secret = (tag: string) => `sk-or-v1-${tag}${randomBytes(16).toString('hex')}`;

let server: TestServer;
let tokens: Record<'ADMIN' | 'OBSERVER' | 'USER' | 'WORKER', string>;
const responses: string[] = [];

async function gql(query: string, variables: Record<string, unknown> = {}, token: string | null = tokens.ADMIN) {
  const res = await server.gql(query, variables, token);
  responses.push(res.raw);
  return res;
}

async function createKey(input: Record<string, unknown> = {}) {
  const res = await gql(CREATE, {
    input: { provider: 'OPENROUTER', label: 'pool key', apiKey: secret('k'), ...input },
  });
  expect(res.errors).toBeUndefined();
  return res.data.createManagedKey;
}

async function snapshot() {
  const client = new pg.Client({ connectionString: server.database.url });
  await client.connect();
  try {
    const keys = await client.query(`SELECT * FROM "ManagedKey" ORDER BY id`);
    const audits = await client.query(`SELECT count(*)::int AS n FROM "AuditEntry"`);
    return JSON.stringify({ keys: keys.rows, audits: audits.rows });
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  server = await startTestServer();
  tokens = {
    ADMIN: await server.token('ADMIN', 'admin-1'),
    OBSERVER: await server.token('OBSERVER', 'observer-1'),
    USER: await server.token('USER', 'user-1'),
    WORKER: await server.token('WORKER', 'worker-1'),
  };
});
afterAll(async () => server?.close());

describe('createManagedKey', () => {
  it('applies provider defaults and masks the secret', async () => {
    const apiKey = 'sk-or-v1-0123456789abcdefWXYZ';
    const res = await gql(CREATE, { input: { provider: 'OPENROUTER', label: '  Primary  ', apiKey } });
    expect(res.errors).toBeUndefined();
    const key = res.data.createManagedKey;
    expect(key).toMatchObject({
      provider: 'OPENROUTER',
      label: 'Primary',
      baseUrl: 'https://openrouter.ai/api/v1',
      defaultModel: 'openrouter/auto',
      fallbackModels: [],
      config: {},
      dailyLimitUsd: null,
      status: 'ACTIVE',
      activeLeaseCount: 0,
      spendTodayUsd: '0.00',
      spendThisMonthUsd: '0.00',
    });
    expect(key.maskedKey).toBe('sk-or-...WXYZ');
    expect(res.raw).not.toContain(apiKey);

    const venice = await gql(CREATE, { input: { provider: 'VENICE', label: 'v', apiKey: secret('v') } });
    expect(venice.data.createManagedKey.baseUrl).toBe('https://api.venice.ai/api/v1');
  });

  it('stores limits, models and framework overrides exactly', async () => {
    const key = await createKey({
      provider: 'OPENAI_COMPATIBLE',
      baseUrl: 'http://127.0.0.1:9999/v1/',
      defaultModel: 'gpt-4o-mini',
      fallbackModels: ['gpt-4o', 'gpt-3.5-turbo'],
      config: {
        frameworks: { OPENCLAW: { agents: { defaults: { timeout: 30 } } }, ELIZA: { temperature: 0.2 } },
        delivery: 'DIRECT',
      },
      dailyLimitUsd: '12.5',
      monthlyLimitUsd: '100.123456',
      maxActiveLeases: 5,
    });
    expect(key).toMatchObject({
      baseUrl: 'http://127.0.0.1:9999/v1',
      defaultModel: 'gpt-4o-mini',
      fallbackModels: ['gpt-4o', 'gpt-3.5-turbo'],
      dailyLimitUsd: '12.50',
      monthlyLimitUsd: '100.123456',
      remainingTodayUsd: '12.50',
      maxActiveLeases: 5,
    });
    expect(key.config.frameworks.OPENCLAW).toEqual({ agents: { defaults: { timeout: 30 } } });
  });

  it('requires a base URL and a model for an OpenAI-compatible key', async () => {
    const res = await gql(CREATE, { input: { provider: 'OPENAI_COMPATIBLE', label: 'x', apiKey: secret('x') } });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'baseUrl' });
  });
});

describe('bad input is refused with BAD_USER_INPUT naming the field, and changes nothing', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['negative daily limit', { dailyLimitUsd: '-1' }, 'dailyLimitUsd'],
    ['negative monthly limit as a number', { monthlyLimitUsd: -5 }, 'monthlyLimitUsd'],
    ['non-numeric limit', { dailyLimitUsd: 'ten dollars' }, 'dailyLimitUsd'],
    ['non-numeric limit (boolean)', { monthlyLimitUsd: true }, 'monthlyLimitUsd'],
    ['limit with 7 decimals', { dailyLimitUsd: '1.1234567' }, 'dailyLimitUsd'],
    ['absurd limit', { monthlyLimitUsd: '1000000000' }, 'monthlyLimitUsd'],
    ['unknown provider', { provider: 'ANTHROPIC' }, 'provider'],
    ['ftp base URL', { baseUrl: 'ftp://example.com/v1' }, 'baseUrl'],
    ['javascript base URL', { baseUrl: 'javascript:alert(1)' }, 'baseUrl'],
    ['base URL with credentials', { baseUrl: 'https://user:pw@example.com' }, 'baseUrl'],
    ['empty label', { label: '' }, 'label'],
    ['blank label', { label: '    ' }, 'label'],
    ['10 KB label', { label: 'x'.repeat(10 * 1024) }, 'label'],
    ['100 KB api key', { apiKey: 'k'.repeat(100 * 1024) }, 'apiKey'],
    ['api key with spaces', { apiKey: 'sk with spaces inside' }, 'apiKey'],
    ['config that is a string', { config: 'frameworks' }, 'config'],
    ['config that is an array', { config: [{ a: 1 }] }, 'config'],
    [
      'framework override that is not an object',
      { config: { frameworks: { OPENCLAW: 5 } } },
      'config.frameworks.OPENCLAW',
    ],
    ['frameworks that is an array', { config: { frameworks: [{}] } }, 'config.frameworks'],
    ['unknown framework', { config: { frameworks: { LANGCHAIN: {} } } }, 'config.frameworks'],
    ['unknown config key', { config: { colour: {} } }, 'config'],
    ['bad delivery', { config: { delivery: 'CARRIER_PIGEON' } }, 'config.delivery'],
    ['negative price', { config: { prices: { m: { prompt: '-1', completion: '1' } } } }, 'config.prices.m.prompt'],
    ['zero lease cap', { maxActiveLeases: 0 }, 'maxActiveLeases'],
    ['repeated fallback model', { fallbackModels: ['a', 'a'] }, 'fallbackModels'],
  ];

  it.each(cases)('create: %s', async (_name, patch, field) => {
    const before = await snapshot();
    const res = await gql(CREATE, { input: { provider: 'OPENROUTER', label: 'bad', apiKey: secret('bad'), ...patch } });
    expect(res.data?.createManagedKey ?? null).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await snapshot()).toBe(before);
  });

  it.each(cases.filter(([, patch]) => !('provider' in patch) && !('apiKey' in patch)))(
    'update: %s',
    async (_name, patch, field) => {
      const key = await createKey();
      const before = await snapshot();
      const res = await gql(UPDATE, { id: key.id, input: patch });
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(await snapshot()).toBe(before);
    },
  );

  it('rotate: a 100 KB or empty api key', async () => {
    const key = await createKey();
    const before = await snapshot();
    for (const apiKey of ['k'.repeat(100 * 1024), '']) {
      const res = await gql(ROTATE, { id: key.id, apiKey });
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'apiKey' });
    }
    expect(await snapshot()).toBe(before);
  });

  it('unknown or malformed ids are NOT_FOUND', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      expect((await gql(DISABLE, { id })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect((await gql(UPDATE, { id, input: { label: 'x' } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect((await gql(GET, { id })).data.managedKey).toBeNull();
    }
  });
});

describe('update, disable, enable, rotate', () => {
  it('updates only the given fields and clears with null', async () => {
    const key = await createKey({ dailyLimitUsd: '5', maxActiveLeases: 3 });
    const res = await gql(UPDATE, {
      id: key.id,
      input: { label: 'renamed', dailyLimitUsd: null, monthlyLimitUsd: '20.10' },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data.updateManagedKey).toMatchObject({
      label: 'renamed',
      dailyLimitUsd: null,
      monthlyLimitUsd: '20.10',
      maxActiveLeases: 3,
    });
  });

  it('disables with a reason and enables again', async () => {
    const key = await createKey();
    const disabled = await gql(DISABLE, { id: key.id, reason: 'provider suspended us' });
    expect(disabled.data.disableManagedKey).toEqual({
      id: key.id,
      status: 'DISABLED',
      disabledReason: 'provider suspended us',
    });
    const enabled = await gql(ENABLE, { id: key.id });
    expect(enabled.data.enableManagedKey).toEqual({ id: key.id, status: 'ACTIVE', disabledReason: null });
  });

  it('rotates the secret: new mask, old ciphertext gone', async () => {
    const key = await createKey({ apiKey: 'sk-or-v1-aaaaaaaaaaaaaaaa1111' });
    const before = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
    const res = await gql(ROTATE, { id: key.id, apiKey: 'sk-or-v1-bbbbbbbbbbbbbbbb2222' });
    expect(res.data.rotateManagedKeySecret.maskedKey).toBe('sk-or-...2222');
    const after = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
    expect(after.secretCiphertext).not.toBe(before.secretCiphertext);
    expect(server.app.services.keys.revealSecret(after)).toBe('sk-or-v1-bbbbbbbbbbbbbbbb2222');
  });
});

describe('listing', () => {
  it('filters by provider and status and pages without gaps or repeats', async () => {
    const own = await Promise.all(
      Array.from({ length: 7 }, (_, i) => createKey({ provider: 'VENICE', label: `page-${i}` })),
    );
    await gql(DISABLE, { id: own[0].id });
    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    for (;;) {
      const res: any = await gql(LIST, { first: 3, after, provider: 'VENICE', status: 'ACTIVE' });
      expect(res.errors).toBeUndefined();
      const page = res.data.managedKeys;
      total = page.totalCount;
      for (const edge of page.edges) {
        expect(edge.node).toMatchObject({ provider: 'VENICE', status: 'ACTIVE' });
        seen.push(edge.node.id);
      }
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(total);
    for (const key of own.slice(1)) expect(seen).toContain(key.id);
    expect(seen).not.toContain(own[0].id);
  });

  it('caps first at 200 and refuses a forged cursor', async () => {
    expect((await gql(LIST, { first: 201 })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'first',
    });
    expect((await gql(LIST, { after: 'bm90LWEtY3Vyc29y' })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'after',
    });
  });
});

describe('audit', () => {
  it('records every admin mutation with actor, target and a diff of changed fields', async () => {
    const key = await createKey({ label: 'audited', dailyLimitUsd: '1' });
    await gql(UPDATE, { id: key.id, input: { label: 'audited-2', dailyLimitUsd: '2.5' } });
    await gql(DISABLE, { id: key.id, reason: 'why not' });
    await gql(ENABLE, { id: key.id });
    await gql(ROTATE, { id: key.id, apiKey: secret('rot') });
    const res = await gql(AUDIT, { first: 200 });
    const entries = res.data.auditLog.edges.map((e: any) => e.node).filter((e: any) => e.targetId === key.id);
    expect(entries.map((e: any) => e.action)).toEqual([
      'managedKey.rotateSecret',
      'managedKey.enable',
      'managedKey.disable',
      'managedKey.update',
      'managedKey.create',
    ]);
    for (const e of entries)
      expect(e).toMatchObject({ actorId: 'admin-1', actorRole: 'ADMIN', targetType: 'ManagedKey' });
    const update = entries.find((e: any) => e.action === 'managedKey.update');
    expect(update.details.changes).toEqual({
      label: { from: 'audited', to: 'audited-2' },
      dailyLimitUsd: { from: '1', to: '2.5' },
    });
    expect(entries.find((e: any) => e.action === 'managedKey.disable').details.changes.disabledReason).toEqual({
      from: null,
      to: 'why not',
    });
  });
});

describe('the secret stays secret', () => {
  it('appears in no response, log line, audit entry, or database row', async () => {
    const first = `sk-or-v1-CANARY${randomBytes(12).toString('hex')}`;
    const second = `sk-or-v1-ROTATED${randomBytes(12).toString('hex')}`;
    const key = await createKey({ apiKey: first });
    await gql(ROTATE, { id: key.id, apiKey: second });
    await gql(GET, { id: key.id });
    await gql(LIST, { first: 200 });
    await gql(AUDIT, { first: 200 });
    // A refused rotation must not echo the secret in its error either.
    await gql(ROTATE, { id: key.id, apiKey: `${second} with a space` }, tokens.ADMIN);
    await gql(ROTATE, { id: key.id, apiKey: second }, tokens.OBSERVER);

    const client = new pg.Client({ connectionString: server.database.url });
    await client.connect();
    const tables = await client.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`,
    );
    const dump: string[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await client.query(`SELECT row_to_json(t)::text AS row FROM "${tablename}" t`);
      dump.push(...rows.rows.map((r) => r.row));
    }
    await client.end();
    expect(dump.some((row) => row.includes(key.id))).toBe(true);

    for (const [where, texts] of [
      ['responses', responses],
      ['logs', server.logs],
      ['database', dump],
    ] as const) {
      for (const canary of [first, second, first.slice(9, -4), second.slice(9, -4)]) {
        expect(
          texts.filter((t) => t.includes(canary)),
          `${where} contain the secret`,
        ).toEqual([]);
      }
    }
    expect(server.logs.length).toBeGreaterThan(0);
  });

  it('the schema has no field that could return a secret', async () => {
    const res = await gql(`{ __type(name: "ManagedKey") { fields { name } } }`);
    const names = res.data.__type.fields.map((f: any) => f.name);
    expect(names).toContain('maskedKey');
    expect(names.filter((n: string) => /secret|apiKey|cipher/i.test(n))).toEqual([]);
  });
});
