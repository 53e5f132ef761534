// The metering proxy against a local fake provider: byte-identical pass-through (plain and
// streamed), cost recorded from each documented source, client aborts cancel upstream, refusals in
// OpenAI's error shape, and the overshoot bound under concurrency.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import {
  callProvider as call,
  completionStatus,
  ok,
  proxiedLease,
  Q,
  reportUsage,
} from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const SECRET = 'sk-real-provider-key-0123456789';
let server: TestServer;
let upstream: FakeUpstream;
let admin: string;
let worker: string;

const leaseWithToken = (keyInput: Record<string, unknown> = {}) =>
  proxiedLease(server, admin, worker, { baseUrl: upstream.url, apiKey: SECRET, ...keyInput });

const records = (leaseId: string) => server.app.db.usageRecord.findMany({ where: { leaseId }, orderBy: { id: 'asc' } });

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());
withTestServer({ roles: 'p' }, (s) => ({ server, admin, worker } = s));
beforeEach(() => {
  upstream.costStyle = 'openrouter';
  upstream.failWith = null;
  upstream.chunkDelayMs = 5;
});

describe('pass-through', () => {
  it(
    'a plain completion is byte-identical to a direct call, ' + 'with the real key upstream and the cost recorded',
    async () => {
      const { lease, token, baseUrl } = await leaseWithToken();
      const request = { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] };
      const direct = await (await call(upstream.url, SECRET, '/chat/completions', request)).text();
      const proxied = await call(baseUrl, token, '/chat/completions', request);
      expect(proxied.status).toBe(200);
      const text = await proxied.text();
      expect(text.replace(/chatcmpl-fake-\d+/, 'ID')).toBe(direct.replace(/chatcmpl-fake-\d+/, 'ID'));
      expect(upstream.authorizations.at(-1)).toBe(`Bearer ${SECRET}`);
      await expect.poll(() => records(lease.id)).toHaveLength(1);
      const [record] = await records(lease.id);
      expect(record).toMatchObject({
        promptTokens: 12,
        completionTokens: 3,
        costSource: 'PROVIDER',
        // MPK's own id, told to the client; the provider's id beside it for reconciliation.
        requestId: proxied.headers.get('x-mpk-request-id'),
        providerRequestId: JSON.parse(text).id,
      });
      expect(record!.requestId).toMatch(/^mpk-[0-9a-f-]{36}$/);
      expect(record!.costUsd.toFixed(6)).toBe('0.001845');
    },
  );

  it(
    'a streamed completion passes through chunk by chunk, byte-identical, ' + 'and its final usage is recorded',
    async () => {
      const { lease, token, baseUrl } = await leaseWithToken();
      const request = { model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'hi' }] };
      const direct = await (await call(upstream.url, SECRET, '/chat/completions', request)).text();
      const proxied = await call(baseUrl, token, '/chat/completions', request);
      expect(proxied.headers.get('content-type')).toContain('text/event-stream');
      const text = await proxied.text();
      expect(text.replaceAll(/chatcmpl-fake-\d+/g, 'ID')).toBe(direct.replaceAll(/chatcmpl-fake-\d+/g, 'ID'));
      await expect.poll(() => records(lease.id)).toHaveLength(1);
      expect((await records(lease.id))[0]).toMatchObject({
        promptTokens: 12,
        completionTokens: 4,
        costSource: 'PROVIDER',
      });
      const row = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
      expect(row.requestCount).toBe(1);
    },
  );

  it("cost from Venice's cost.usd, from the admin's price table, or none (flagged)", async () => {
    upstream.costStyle = 'venice';
    const venice = await leaseWithToken();
    await call(venice.baseUrl, venice.token, '/chat/completions', { model: 'fake-model', messages: [] }).then((r) =>
      r.text(),
    );
    await expect.poll(() => records(venice.lease.id)).toHaveLength(1);
    expect((await records(venice.lease.id))[0]!.costUsd.toFixed(6)).toBe('0.004200');

    upstream.costStyle = 'none';
    const priced = await leaseWithToken({ config: { prices: { 'fake-model': { prompt: '2.5', completion: '10' } } } });
    await call(priced.baseUrl, priced.token, '/chat/completions', { model: 'fake-model', messages: [] }).then((r) =>
      r.text(),
    );
    await expect.poll(() => records(priced.lease.id)).toHaveLength(1);
    // 12 x $2.50/M + 3 x $10/M = $0.00006
    expect((await records(priced.lease.id))[0]).toMatchObject({ costSource: 'PRICE' });
    expect((await records(priced.lease.id))[0]!.costUsd.toFixed(6)).toBe('0.000060');

    const unpriced = await leaseWithToken();
    await call(unpriced.baseUrl, unpriced.token, '/chat/completions', { model: 'fake-model', messages: [] }).then((r) =>
      r.text(),
    );
    await expect.poll(() => records(unpriced.lease.id)).toHaveLength(1);
    expect((await records(unpriced.lease.id))[0]).toMatchObject({
      costSource: 'NONE',
      promptTokens: 12,
      completionTokens: 3,
    });
  });

  it('embeddings and models', async () => {
    const { lease, token, baseUrl } = await leaseWithToken();
    const models = await call(baseUrl, token, '/models');
    expect(await models.json()).toMatchObject({ data: [{ id: 'fake-model' }] });
    const emb = await call(baseUrl, token, '/embeddings', { model: 'fake-model', input: 'x' });
    expect((await emb.json()).data[0].embedding).toEqual([0.1, 0.2]);
    await expect.poll(() => records(lease.id)).toHaveLength(1);
  });

  it('a client that goes away mid-stream cancels the upstream request', async () => {
    const { lease, token, baseUrl } = await leaseWithToken();
    upstream.chunkDelayMs = 20;
    const before = upstream.aborted;
    const controller = new AbortController();
    const res = await call(
      baseUrl,
      token,
      '/chat/completions',
      { model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'long' }] },
      { signal: controller.signal },
    );
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await expect.poll(() => upstream.aborted, { timeout: 3000 }).toBe(before + 1);
    // Nothing was reported before the client left and the key has no prices to estimate with: the
    // request is recorded, flagged, at no cost (metering.test.ts: the exact and estimated costs).
    await expect.poll(() => records(lease.id)).toHaveLength(1);
    expect((await records(lease.id))[0]).toMatchObject({ costSource: 'NONE' });
  });
});

describe('upstream addressing', () => {
  it("a base URL with a path (OpenRouter's /api/v1) is kept, and the query string passes", async () => {
    const { lease, token, baseUrl } = await leaseWithToken({ baseUrl: `${upstream.url}/api/v1` });
    const models = await call(baseUrl, token, '/models?supported_parameters=tools');
    expect(models.status).toBe(200);
    expect(upstream.paths.at(-1)).toBe('/api/v1/models?supported_parameters=tools');
    const completion = await call(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
    expect(completion.status).toBe(200);
    await expect.poll(() => records(lease.id)).toHaveLength(1);
  });

  it(
    "an unreachable provider is a 502 in OpenAI's shape, " + 'with nothing recorded and no secret in the logs',
    async () => {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((r) => closed.close(r));
      const { lease, token, baseUrl } = await leaseWithToken({ baseUrl: `http://127.0.0.1:${port}` });
      const res = await call(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
      expect(res.status).toBe(502);
      expect((await res.json()).error).toMatchObject({ type: 'api_error', code: 'upstream_unreachable' });
      await new Promise((r) => setTimeout(r, 250));
      expect(await records(lease.id)).toHaveLength(0);
      expect(server.logs.join('')).not.toContain(SECRET);
    },
  );
});

describe("refusals in OpenAI's error shape", () => {
  it('401 for anything but a lease token, 403 once the lease has ended', async () => {
    const { lease, token, baseUrl } = await leaseWithToken();
    for (const bad of [SECRET, `${token}x`, 'mpk_lt_00000000-0000-4000-8000-000000000000.abc']) {
      const res = await call(baseUrl, bad, '/models');
      expect(res.status).toBe(401);
      expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
    }
    ok(await server.gql(Q.revoke, { id: lease.id }, admin), 'revokeLease');
    const ended = await call(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
    expect(ended.status).toBe(403);
    expect((await ended.json()).error).toMatchObject({ code: 'lease_not_active' });
  });

  it('402 when the key is at its daily limit or the lease at its cap; upstream errors pass through', async () => {
    const limited = await leaseWithToken({ dailyLimitUsd: '0.001' });
    await call(limited.baseUrl, limited.token, '/chat/completions', { model: 'fake-model', messages: [] }).then((r) =>
      r.text(),
    );
    await expect.poll(() => records(limited.lease.id)).toHaveLength(1);
    const refused = await call(limited.baseUrl, limited.token, '/chat/completions', {
      model: 'fake-model',
      messages: [],
    });
    expect(refused.status).toBe(402);
    expect((await refused.json()).error).toMatchObject({ type: 'insufficient_quota', code: 'quota_exhausted' });

    const open = await leaseWithToken();
    upstream.failWith = 429;
    const limitedUpstream = await call(open.baseUrl, open.token, '/chat/completions', {
      model: 'fake-model',
      messages: [],
    });
    expect(limitedUpstream.status).toBe(429);
    expect((await limitedUpstream.json()).error.code).toBe('rate_limit');
  });

  it('overshoot bound: 20 concurrent requests against a key $0.01 under its daily limit', async () => {
    const { key, lease, token, baseUrl } = await leaseWithToken({ dailyLimitUsd: '1' });
    ok(await reportUsage(server, worker, { leaseId: lease.id, requestId: 'warm', costUsd: '0.99' }), 'reportUsage');
    const statuses = await Promise.all(Array.from({ length: 20 }, () => completionStatus(baseUrl, token)));
    const admitted = statuses.filter((s) => s === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 402)).toBe(true);
    await expect.poll(async () => (await records(lease.id)).length).toBe(admitted + 1);
    const spend = (await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } })).spendTodayUsd;
    // Exactly what was admitted, each at 15 tokens x $0.000123: nothing refused was counted.
    expect(spend.toFixed(6)).toBe((0.99 + admitted * 0.001845).toFixed(6));
    const later = await call(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
    expect(later.status).toBe(402);
  });
});

describe('no secret reaches the client', () => {
  const noSecrets = (text: string, token: string) => {
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(SECRET.slice(0, 12));
    expect(text).not.toContain(token);
  };

  it('an upstream quoting the key in a 401 page, an answer, a stream cut inside the key, and a header', async () => {
    const { lease, token, baseUrl } = await leaseWithToken();
    upstream.echoKey = true;
    try {
      upstream.failWith = 401;
      const denied = await call(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
      expect(denied.status).toBe(401);
      const deniedText = await denied.text();
      expect(deniedText).toContain(`Incorrect API key provided: ${'*'.repeat(SECRET.length)}`);
      noSecrets(deniedText, token);
      expect(denied.headers.get('x-request-id')).toBe(`req for Bearer ${'*'.repeat(SECRET.length)}`);
      upstream.failWith = null;

      const answer = await call(baseUrl, token, '/chat/completions', { model: 'fake-model', messages: [] });
      const answerText = await answer.text();
      expect(JSON.parse(answerText).choices[0].message.content).toBe(`Hello there. (${'*'.repeat(SECRET.length)})`);
      noSecrets(answerText, token);
      noSecrets(String(answer.headers.get('x-request-id')), token);

      for (const streamOptions of [{}, { stream_options: { include_usage: true } }]) {
        const streamed = await call(baseUrl, token, '/chat/completions', {
          model: 'fake-model',
          stream: true,
          messages: [],
          ...streamOptions,
        });
        const streamText = await streamed.text();
        noSecrets(streamText, token);
        const content = streamText
          .split('\n\n')
          .filter((e) => e.startsWith('data: {'))
          .map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? '')
          .join('');
        expect(content).toBe(`Hello there. (${'*'.repeat(SECRET.length)})`);
      }
      // Metering read the answers as usual.
      await expect.poll(async () => (await records(lease.id)).length).toBe(3);
      expect((await records(lease.id)).every((r) => r.costSource === 'PROVIDER')).toBe(true);
    } finally {
      upstream.echoKey = false;
      upstream.failWith = null;
    }
  });
});
