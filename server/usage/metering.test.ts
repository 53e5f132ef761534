// Every proxied request is metered, exactly: one ledger row per request whatever ids the upstream
// answers with; a stream's usage asked for when the client did not, read to its end when the client
// stops at finish_reason, and looked up (OpenRouter) or estimated when the client leaves
// mid-generation; sums of sub-micro-dollar costs kept to the last decimal.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { callProvider as call, proxiedLease } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';
import { Decimal } from '../core/money.js';

let server: TestServer;
let upstream: FakeUpstream;
let admin: string;
let worker: string;

const PRICES = { 'fake-model': { prompt: '2', completion: '8' } };
const leaseOn = (keyInput: Record<string, unknown> = {}) =>
  proxiedLease(server, admin, worker, { baseUrl: upstream.url, apiKey: 'sk-metering-0123456789', ...keyInput });
const records = (leaseId: string) => server.app.db.usageRecord.findMany({ where: { leaseId }, orderBy: { id: 'asc' } });
const chat = (content = 'hi', extra: Record<string, unknown> = {}) => ({
  model: 'fake-model',
  messages: [{ role: 'user', content }],
  ...extra,
});
const sum = (values: Decimal[]) => values.reduce((a, b) => a.plus(b), new Decimal(0));

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());
// OpenRouter's generation stats are asked for after these waits (seconds in production).
withTestServer({ roles: 'm', generationDelaysMs: [50, 100, 200, 400] }, (s) => ({ server, admin, worker } = s));
beforeEach(() => {
  Object.assign(upstream, {
    costStyle: 'openrouter',
    costs: [],
    streamUsage: 'when-asked',
    responseIds: 'unique',
    generationDelayMs: 0,
    chunkDelayMs: 2,
    usageDelayMs: 0,
    failWith: null,
  });
});

/** Waits until `n` requests of the lease are in the ledger, and returns its rows and totals. */
async function ledgerOf(lease: { id: string }, key: { id: string }, n: number) {
  await expect.poll(async () => (await records(lease.id)).length, { timeout: 5000 }).toBe(n);
  const rows = await records(lease.id);
  const leaseRow = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
  const keyRow = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
  return { rows, lease: leaseRow, key: keyRow };
}

describe('one ledger row per proxied request', () => {
  it.each([
    ['repeat their response ids (Ollama style)', 'repeating'],
    ['answer with one fixed id', 'fixed'],
  ] as const)('upstreams that %s: N requests, N rows, totals equal the sum', async (_name, ids) => {
    upstream.responseIds = ids;
    const { key, lease, token, baseUrl } = await leaseOn();
    // 200 ids drawn below 999 all differ with a chance of e^-20: some repeat.
    const n = 200;
    const answers = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const res = await call(baseUrl, token, '/chat/completions', chat(`question ${i}`));
        expect(res.status).toBe(200);
        return { requestId: res.headers.get('x-mpk-request-id'), providerId: (await res.json()).id as string };
      }),
    );
    const providerIds = new Set(answers.map((a) => a.providerId));
    if (ids === 'fixed') expect(providerIds.size).toBe(1);
    expect(providerIds.size).toBeLessThan(n);

    const ledger = await ledgerOf(lease, key, n);
    expect(new Set(ledger.rows.map((r) => r.requestId))).toEqual(new Set(answers.map((a) => a.requestId)));
    expect(ledger.rows.map((r) => r.providerRequestId).sort()).toEqual(answers.map((a) => a.providerId).sort());
    const total = sum(ledger.rows.map((r) => r.costUsd));
    expect(total.greaterThan(0)).toBe(true);
    expect(ledger.lease.requestCount).toBe(n);
    expect(ledger.lease.usageUsd.toFixed(12)).toBe(total.toFixed(12));
    expect(ledger.key.spendTodayUsd.toFixed(12)).toBe(total.toFixed(12));
    expect(ledger.key.spendThisMonthUsd.toFixed(12)).toBe(total.toFixed(12));
  });
});

describe('every stream metered', () => {
  it('a stream without stream_options: MPK asks for the usage and hides it from the client', async () => {
    const { key, lease, token, baseUrl } = await leaseOn();
    upstream.costs = [0.000321];
    const res = await call(baseUrl, token, '/chat/completions', chat('hi', { stream: true }));
    const text = await res.text();
    // The upstream was asked...
    expect(upstream.bodies.at(-1)).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    // ...and the client got the stream it asked for: no usage chunk, no "usage": null.
    expect(text).not.toContain('usage');
    expect(text).toContain('"finish_reason":"stop"');
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    const events = text.split('\n\n').filter((e) => e.startsWith('data: {'));
    for (const event of events) expect(JSON.parse(event.slice(6)).choices).toHaveLength(1);

    const ledger = await ledgerOf(lease, key, 1);
    expect(ledger.rows[0]).toMatchObject({ costSource: 'PROVIDER', promptTokens: 12, completionTokens: 4 });
    expect(ledger.rows[0]!.costUsd.toFixed(12)).toBe('0.000321000000');
  });

  it('a client that asked for usage gets it as the upstream sent it', async () => {
    const { key, lease, token, baseUrl } = await leaseOn();
    const body = chat('hi', { stream: true, stream_options: { include_usage: true } });
    const proxied = await (await call(baseUrl, token, '/chat/completions', body)).text();
    const direct = await (await call(upstream.url, 'sk-metering-0123456789', '/chat/completions', body)).text();
    const normal = (s: string) => s.replaceAll(/chatcmpl-fake-\d+/g, 'ID').replaceAll(/"cost":[\d.e-]+/g, 'COST');
    expect(normal(proxied)).toBe(normal(direct));
    expect(proxied).toContain('"usage":{"prompt_tokens":12');
    expect((await ledgerOf(lease, key, 1)).rows[0]).toMatchObject({ costSource: 'PROVIDER' });
  });

  it('a client that stops reading at finish_reason: MPK reads on to the usage', async () => {
    const { key, lease, token, baseUrl } = await leaseOn();
    upstream.costs = [0.0004567];
    upstream.usageDelayMs = 300;
    const res = await call(baseUrl, token, '/chat/completions', chat('hi', { stream: true }));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('finish_reason":"stop"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before its finish_reason');
      seen += decoder.decode(value);
    }
    await reader.cancel();
    const ledger = await ledgerOf(lease, key, 1);
    expect(ledger.rows[0]).toMatchObject({ costSource: 'PROVIDER', completionTokens: 4 });
    expect(ledger.rows[0]!.costUsd.toFixed(7)).toBe('0.0004567');
    expect(ledger.lease.usageUsd.toFixed(7)).toBe('0.0004567');
  });

  /** Reads a few chunks of a long stream, then leaves. */
  async function leaveMidGeneration(baseUrl: string, token: string) {
    upstream.chunkDelayMs = 15;
    const controller = new AbortController();
    const before = upstream.aborted;
    const res = await call(baseUrl, token, '/chat/completions', chat('long', { stream: true }), {
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    for (let i = 0; i < 5; i++) await reader.read();
    controller.abort();
    await expect.poll(() => upstream.aborted, { timeout: 3000 }).toBe(before + 1);
  }

  it("a client leaving mid-generation on OpenRouter: the generation's exact cost from its stats", async () => {
    const { key, lease, token, baseUrl } = await leaseOn({ provider: 'OPENROUTER', config: { prices: PRICES } });
    upstream.costs = [0.00001234567];
    // The stats appear a moment after the generation ends, as OpenRouter's do: MPK asks again.
    upstream.generationDelayMs = 120;
    await leaveMidGeneration(baseUrl, token);
    const ledger = await ledgerOf(lease, key, 1);
    const [row] = ledger.rows;
    expect(row).toMatchObject({ costSource: 'PROVIDER', model: 'fake-model', promptTokens: 12 });
    expect(row!.costUsd.toFixed(12)).toBe('0.000012345670');
    expect(row!.completionTokens).toBeGreaterThan(0);
    expect(row!.completionTokens).toBeLessThan(200);
    expect(upstream.paths.filter((p) => p.startsWith('/generation?id='))).toContain(
      `/generation?id=${row!.providerRequestId}`,
    );
  });

  it("a client leaving mid-generation elsewhere: the tokens so far at the key's prices, flagged ESTIMATED", async () => {
    const { key, lease, token, baseUrl } = await leaseOn({ config: { prices: PRICES } });
    await leaveMidGeneration(baseUrl, token);
    const [row] = (await ledgerOf(lease, key, 1)).rows;
    expect(row!.costSource).toBe('ESTIMATED');
    // Some of the 200 words streamed before the client left; none after.
    expect(row!.completionTokens).toBeGreaterThanOrEqual(5);
    expect(row!.completionTokens).toBeLessThan(200);
    expect(row!.promptTokens).toBeGreaterThan(0);
    const expected = new Decimal(2)
      .times(row!.promptTokens!)
      .plus(new Decimal(8).times(row!.completionTokens!))
      .dividedBy(1_000_000);
    expect(row!.costUsd.toFixed(12)).toBe(expected.toFixed(12));
    expect(row!.costUsd.greaterThan(0)).toBe(true);
    // Without prices there is nothing to estimate with: the tokens are kept, the cost flagged NONE.
    const unpriced = await leaseOn();
    await leaveMidGeneration(unpriced.baseUrl, unpriced.token);
    const [flagged] = (await ledgerOf(unpriced.lease, unpriced.key, 1)).rows;
    expect(flagged).toMatchObject({ costSource: 'NONE' });
    expect(flagged!.completionTokens).toBeGreaterThanOrEqual(5);
  });
});

describe('exact sums', () => {
  it('four sub-micro-dollar costs sum exactly in the lease, the key, and spendSeries', async () => {
    const { key, lease, token, baseUrl } = await leaseOn();
    upstream.costs = [0.0000315, 1.5e-7, 0.00012345678, 0.000001];
    for (let i = 0; i < 4; i++) {
      const res = await call(baseUrl, token, '/chat/completions', chat());
      expect(res.status).toBe(200);
      await res.text();
    }
    const ledger = await ledgerOf(lease, key, 4);
    const fixed = (values: (string | number)[]) => values.map((v) => new Decimal(v).toFixed(12)).sort();
    expect(fixed(ledger.rows.map((r) => r.costUsd.toString()))).toEqual(
      fixed(['0.0000315', '1.5e-7', '0.00012345678', '0.000001']),
    );
    expect(ledger.lease.usageUsd.toString()).toBe('0.00015610678');
    expect(ledger.key.spendTodayUsd.toString()).toBe('0.00015610678');
    expect(ledger.key.spendThisMonthUsd.toString()).toBe('0.00015610678');

    // And as the API shows them.
    const shown = (
      await server.gql(
        `query($key: ID!, $lease: ID!) {
          lease(id: $lease) { usageUsd }
          managedKey(id: $key) { spendTodayUsd spendThisMonthUsd }
          spendSeries(days: 1, keyId: $key) { costUsd requests }
          usageRecords(leaseId: $lease) { edges { node { costUsd } } } }`,
        { lease: lease.id, key: key.id },
        admin,
      )
    ).data;
    expect(shown.lease).toEqual({ usageUsd: '0.00015610678' });
    expect(shown.managedKey).toEqual({ spendTodayUsd: '0.00015610678', spendThisMonthUsd: '0.00015610678' });
    expect(shown.spendSeries).toEqual([{ costUsd: '0.00015610678', requests: 4 }]);
    expect(shown.usageRecords.edges.map((e: any) => e.node.costUsd).sort()).toEqual(
      ['0.0000315', '0.00000015', '0.00012345678', '0.000001'].sort(),
    );
  });
});
