// The metering proxy as clients nobody here wrote see it: the official `openai` SDK and the Vercel
// AI SDK (`ai` with `@ai-sdk/openai-compatible`), each in its default settings, against a fake
// upstream that speaks OpenAI's wire format and sends stream usage only when asked.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { createKey, ok, proxiedLease, Q } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

let server: TestServer;
let upstream: FakeUpstream;
let admin: string;
let worker: string;

const leaseOn = (keyInput: Record<string, unknown> = {}) =>
  proxiedLease(server, admin, worker, { baseUrl: upstream.url, apiKey: 'sk-clients-0123456789', ...keyInput });
const records = (leaseId: string) => server.app.db.usageRecord.findMany({ where: { leaseId }, orderBy: { id: 'asc' } });
const metered = async (leaseId: string, n: number) => {
  await expect.poll(async () => (await records(leaseId)).length, { timeout: 5000 }).toBe(n);
  return records(leaseId);
};

/** The official SDK on a lease, counting the HTTP requests it makes (its retries included). */
function openaiOn(baseURL: string, apiKey: string) {
  const sent = { count: 0 };
  const client = new OpenAI({
    baseURL,
    apiKey,
    fetch: (input, init) => {
      sent.count++;
      return fetch(input, init);
    },
  });
  return { client, sent };
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());
withTestServer({ roles: 'c' }, (s) => ({ server, admin, worker } = s));
beforeEach(() => {
  Object.assign(upstream, { costStyle: 'openrouter', costs: [], streamUsage: 'when-asked', chunkDelayMs: 1 });
});

describe('the official openai SDK', () => {
  it('chat completions, plain and streamed without stream_options, each metered at its cost', async () => {
    const { lease, token, baseUrl } = await leaseOn();
    const { client } = openaiOn(baseUrl, token);
    upstream.costs = [0.0001, 0.0002];
    const plain = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(plain.choices[0]!.message.content).toBe('Hello there.');
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) {
      // The client did not ask for usage: none reaches it.
      expect(chunk.usage ?? undefined).toBeUndefined();
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('Hello there.');
    const rows = await metered(lease.id, 2);
    expect(rows.map((r) => [r.costSource, r.costUsd.toFixed(4)])).toEqual([
      ['PROVIDER', '0.0001'],
      ['PROVIDER', '0.0002'],
    ]);
  });

  it('suspended: 402 lease_spend_cap_reached, not retried; revoked: 403; a restored cap: 200', async () => {
    const capped = await leaseOn();
    const { client, sent } = openaiOn(capped.baseUrl, capped.token);
    const ask = () => client.chat.completions.create({ model: 'fake-model', messages: [] });
    await ask();
    await metered(capped.lease.id, 1);
    const setCap = async (cap: string) =>
      ok(await server.gql(Q.updateCap, { id: capped.lease.id, cap }, admin), 'updateLeaseCap').status;
    expect(await setCap('0.000001')).toBe('SUSPENDED');

    const before = sent.count;
    const refused = await ask().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect(refused).toMatchObject({ status: 402, code: 'lease_spend_cap_reached', type: 'insufficient_quota' });
    expect((refused as Error).message).toMatch(/spent \$0\.001845 of its \$0\.000001 spend cap/);
    // The SDK retries some statuses twice by default: not this one.
    expect(sent.count - before).toBe(1);

    expect(await setCap('5')).toBe('ACTIVE');
    const restored = await ask();
    expect(restored.choices).toHaveLength(1);

    ok(await server.gql(Q.revoke, { id: capped.lease.id }, admin), 'revokeLease');
    const ended = await ask().catch((error: unknown) => error);
    expect(ended).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(ended).toMatchObject({ status: 403, code: 'lease_not_active' });
  });

  it('a key at its daily limit: 402 quota_exhausted', async () => {
    const limited = await leaseOn({ dailyLimitUsd: '0.001' });
    const { client, sent } = openaiOn(limited.baseUrl, limited.token);
    await client.chat.completions.create({ model: 'fake-model', messages: [] });
    await metered(limited.lease.id, 1);
    const before = sent.count;
    const refused = await client.chat.completions.create({ model: 'fake-model', messages: [] }).catch((e) => e);
    expect(refused).toMatchObject({ status: 402, code: 'quota_exhausted' });
    expect(sent.count - before).toBe(1);
  });

  it('the Responses API, plain and streamed, metered from its usage', async () => {
    const { lease, token, baseUrl } = await leaseOn();
    const { client } = openaiOn(baseUrl, token);
    upstream.costs = [0.00003, 0.00004];
    const plain = await client.responses.create({ model: 'fake-model', input: 'hi' });
    expect(plain.output_text).toBe('Hello there.');
    expect(plain.usage).toMatchObject({ input_tokens: 12, output_tokens: 3 });

    const stream = await client.responses.create({ model: 'fake-model', input: 'hi', stream: true });
    let text = '';
    let completed = false;
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = true;
    }
    expect(text).toBe('Hello there.');
    expect(completed).toBe(true);

    const rows = await metered(lease.id, 2);
    expect(rows.map((r) => [r.costSource, r.costUsd.toFixed(5), r.promptTokens])).toEqual([
      ['PROVIDER', '0.00003', 12],
      ['PROVIDER', '0.00004', 12],
    ]);
    expect(rows.map((r) => r.providerRequestId)).toEqual([plain.id, expect.stringMatching(/^resp-/)]);
    expect(upstream.paths.slice(-2)).toEqual(['/responses', '/responses']);
  });
});

describe('the Vercel AI SDK', () => {
  it('generateText and streamText (usage not asked for by default) are both metered', async () => {
    const { lease, token, baseUrl } = await leaseOn();
    const provider = createOpenAICompatible({ name: 'mpk', baseURL: baseUrl, apiKey: token });
    upstream.costs = [0.00005, 0.00006];
    const generated = await generateText({ model: provider('fake-model'), prompt: 'hi' });
    expect(generated.text).toBe('Hello there.');

    const streamed = streamText({ model: provider('fake-model'), prompt: 'hi' });
    expect(await streamed.text).toBe('Hello there.');

    const rows = await metered(lease.id, 2);
    expect(rows.map((r) => [r.costSource, r.costUsd.toFixed(5), r.completionTokens])).toEqual([
      ['PROVIDER', '0.00005', 3],
      ['PROVIDER', '0.00006', 4],
    ]);
  });
});

describe('keys of local OpenAI-compatible servers', () => {
  it("a one-word key such as 'ollama' is accepted and sent upstream as it is", async () => {
    const { token, baseUrl } = await leaseOn({ apiKey: 'ollama' });
    const { client } = openaiOn(baseUrl, token);
    await client.chat.completions.create({ model: 'fake-model', messages: [] });
    expect(upstream.authorizations.at(-1)).toBe('Bearer ollama');
    // Other providers' keys are still at least 8 characters.
    const refused = await server.gql(
      Q.createKey,
      { input: { provider: 'OPENROUTER', label: 'short', apiKey: 'ollama' } },
      admin,
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'apiKey' });
    await createKey(server, admin, { provider: 'OPENAI_COMPATIBLE', apiKey: 'x', baseUrl: upstream.url });
  });
});
