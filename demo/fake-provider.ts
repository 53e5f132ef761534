// The built-in fake provider: a local OpenAI-compatible server for the demo, the tests and the
// proxy benchmark, and for nothing else. MPK reaches it only through a key's base URL, like any
// provider; no file under server/ may import it (tests/demo.test.ts checks).
//
// Chat completions and completions (plain and streamed as server-sent events; a stream reports
// usage only when asked with `stream_options.include_usage`, as OpenAI documents, unless
// `streamUsage` is 'always'), the Responses API (plain and streamed), embeddings and models, in
// the documented wire format, with OpenRouter's `usage.cost` or Venice's `cost.usd` when asked.
// OpenRouter's `GET /key` and `GET /generation?id=` (a generation's stats, a cancelled one's too,
// after `generationDelayMs`) and Venice's `GET /api_keys/rate_limits` answer with what it charged.
// Served at the root and under /api/v1 (where both providers' APIs live), on loopback only.
//
// Without options it answers at once with fixed token counts and costs (the tests assert them).
// With `prices` it counts tokens from the request, writes replies of varying length and charges
// by those prices; with `latencyMs` it takes a moment to answer: the demo wants both.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeKeyAdmin } from './fake-key-admin.js';

export type CostStyle = 'openrouter' | 'venice' | 'none';

/** USD per million tokens, as providers publish them. */
export interface ModelPrice {
  prompt: number;
  completion: number;
}

/** Settings of one API key, for a fake that stands in for several keys at once (the demo). */
export interface FakeAccount {
  /** How answers to this key report cost; `FakeUpstream.costStyle` when absent. */
  costStyle?: CostStyle;
  /** OpenRouter's credit limit on the key (`limit` of GET /key); none when absent. */
  creditLimitUsd?: number;
  /** Venice: the USD balance before anything was charged. */
  balanceUsd?: number;
}

export interface FakeProviderOptions {
  /** A random delay before each inference answer (not key management), uniform in [min, max] milliseconds. */
  latencyMs?: { min: number; max: number };
  /** Prices by model: token counts follow the request, and cost follows these prices. */
  prices?: Record<string, ModelPrice>;
  /** The provider's key-management API, served on the same origin (demo/fake-key-admin.ts). */
  keyAdmin?: FakeKeyAdmin;
}

/** How answers are identified: each its own id, ids that repeat (Ollama's style), or one id for all. */
export type ResponseIds = 'unique' | 'repeating' | 'fixed';

export interface FakeUpstream {
  url: string;
  /** Authorization headers received, in order. */
  authorizations: string[];
  /** Request paths as received (with any /api/v1 prefix and query), in order. */
  paths: string[];
  /** The latest request bodies as received (parsed), oldest first (the last 100). */
  bodies: Record<string, unknown>[];
  /** Streams whose client went away before the end. */
  aborted: number;
  /** How the next responses report cost: OpenRouter style, Venice style, or not at all. */
  costStyle: CostStyle;
  /** Costs (USD) the next answers report, one each, exactly as given, before any other rule. */
  costs: number[];
  /** Whether a chat stream reports usage only when asked (OpenAI's documented way) or always. */
  streamUsage: 'when-asked' | 'always';
  responseIds: ResponseIds;
  /** How long after a generation ends its stats appear at GET /generation (404 until then). */
  generationDelayMs: number;
  /** A status to answer with instead of a completion (e.g. 429), until cleared. */
  failWith: number | null;
  /**
   * A careless provider that quotes the caller's Authorization back: in error pages, answers, a
   * stream event (written in two pieces, cut inside the key), an x-request-id header, and a
   * non-JSON answer to GET /key.
   */
  echoKey: boolean;
  chunkDelayMs: number;
  /** Pause before the usage-only chunk of a stream (after its finish_reason), in milliseconds. */
  usageDelayMs: number;
  /** Per API key (the bearer token as sent), settings that override the fake's own. */
  accounts: Map<string, FakeAccount>;
  /**
   * Charges a key as if the fake had served it at `at` (it charges what it does serve itself); a
   * minted key's own usage at the key-management fake grows too: a request MPK never saw.
   */
  bill(apiKey: string, usd: number, at: Date): void;
  close(): Promise<void>;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost?: number;
}

/** A generation as OpenRouter's GET /generation describes it. */
interface Generation {
  model: string;
  prompt: number;
  completion: number;
  cost: number;
  cancelled: boolean;
  streamed: boolean;
  endedAt: number | undefined;
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const utcDay = (at: Date) => at.toISOString().slice(0, 10);
/** Providers report cost in fractions of a cent; six decimals is what MPK keeps. */
const round6 = (usd: number) => Math.round(usd * 1e6) / 1e6;
const WORDS = [
  'the',
  'agent',
  'plans',
  'a',
  'next',
  'step',
  'and',
  'checks',
  'its',
  'notes',
  'before',
  'acting',
  'on',
  'them.',
];

/** What `tokens` of `model` cost at `prices`; undefined for a model without a price. */
export function priceOf(
  prices: Record<string, ModelPrice> | undefined,
  model: string,
  promptTokens: number,
  completionTokens: number,
): number | undefined {
  const price = prices?.[model];
  return price ? round6((price.prompt * promptTokens + price.completion * completionTokens) / 1e6) : undefined;
}

/** Roughly four characters a token, as tokenizers average on English text. */
const tokensIn = (text: string) => Math.max(1, Math.ceil(text.length / 4));

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join(' ');
  if (value && typeof value === 'object')
    return textOf((value as { content?: unknown; text?: unknown }).content ?? (value as { text?: unknown }).text);
  return '';
}

/** The cost a key is charged per day, so that GET /key can say what it used today and this month. */
function createLedger() {
  const byKey = new Map<string, Map<string, number>>();
  return {
    charge(apiKey: string, usd: number, at: Date) {
      const days = byKey.get(apiKey) ?? new Map<string, number>();
      byKey.set(apiKey, days);
      days.set(utcDay(at), (days.get(utcDay(at)) ?? 0) + usd);
    },
    /** Spend of the key whose UTC day starts with `prefix` ('' = ever, '2026-03' = that month). */
    spent(apiKey: string, prefix: string) {
      let total = 0;
      for (const [day, usd] of byKey.get(apiKey) ?? []) if (day.startsWith(prefix)) total += usd;
      return round6(total);
    },
  };
}

export async function startFakeUpstream(options: FakeProviderOptions = {}): Promise<FakeUpstream> {
  let n = 0;
  const ledger = createLedger();
  /** Charges the key, and a key the key-management fake minted also on its own usage (GET /keys/{hash}). */
  const charge = (apiKey: string, usd: number, at?: Date) => {
    ledger.charge(apiKey, usd, at ?? new Date());
    options.keyAdmin?.charge(apiKey, usd, at);
  };
  // The latest generations (a long demo or benchmark must not grow without bound).
  const generations = new Map<string, Generation>();
  const remember = (id: string, g: Generation) => {
    generations.delete(id);
    generations.set(id, g);
    if (generations.size > 10_000) generations.delete(generations.keys().next().value!);
  };
  const state: Omit<FakeUpstream, 'url' | 'close' | 'bill'> = {
    authorizations: [],
    paths: [],
    bodies: [],
    aborted: 0,
    costStyle: 'openrouter',
    costs: [],
    streamUsage: 'when-asked',
    responseIds: 'unique',
    generationDelayMs: 0,
    failWith: null,
    echoKey: false,
    chunkDelayMs: 5,
    usageDelayMs: 0,
    accounts: new Map(),
  };
  const priced = options.prices !== undefined;

  function nextId(prefix: string): string {
    n++;
    if (state.responseIds === 'fixed') return `${prefix}-fixed`;
    if (state.responseIds === 'repeating') return `${prefix}-${Math.floor(Math.random() * 999)}`;
    return `${prefix}-fake-${n}`;
  }

  /** What an answer costs: the next queued cost, else its tokens at the prices, else the fixed rates. */
  function costOf(style: CostStyle, model: string, prompt: number, completion: number): number {
    const queued = state.costs.shift();
    if (queued !== undefined) return queued;
    return (
      priceOf(options.prices, model, prompt, completion) ??
      (style === 'venice' ? 0.0042 : 0.000123 * (prompt + completion))
    );
  }

  /** Usage and cost of one answer, charged to the key and reported in the key's style. */
  function meter(apiKey: string, model: string, prompt: number, completion: number) {
    const style = state.accounts.get(apiKey)?.costStyle ?? state.costStyle;
    const cost = costOf(style, model, prompt, completion);
    charge(apiKey, cost);
    const usage: Usage = {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      ...(style === 'openrouter' ? { cost } : {}),
    };
    return { cost, usage, reported: { usage, ...(style === 'venice' ? { cost: { usd: cost } } : {}) } };
  }

  /** The reply's words: a fixed greeting, 200 words when asked for 'long', or a varying length when priced. */
  function replyWords(body: { messages?: { content?: unknown }[]; input?: unknown }): string[] {
    if (body.messages?.[0]?.content === 'long' || body.input === 'long')
      return Array.from({ length: 200 }, (_, i) => `w${i} `);
    if (!priced) return ['Hel', 'lo ', 'there', '.'];
    return Array.from({ length: 16 + Math.floor(Math.random() * 300) }, (_, i) => `${WORDS[i % WORDS.length]} `);
  }

  /** OpenRouter's GET /key: what the key has used, and its credit limit. */
  function openRouterKey(apiKey: string) {
    const limit = state.accounts.get(apiKey)?.creditLimitUsd ?? null;
    const usage = ledger.spent(apiKey, '');
    const today = new Date().toISOString();
    return {
      data: {
        label: apiKey.length > 14 ? `${apiKey.slice(0, 9)}...${apiKey.slice(-3)}` : apiKey,
        usage,
        usage_daily: ledger.spent(apiKey, today.slice(0, 10)),
        usage_monthly: ledger.spent(apiKey, today.slice(0, 7)),
        limit,
        limit_remaining: limit === null ? null : round6(Math.max(0, limit - usage)),
        is_free_tier: false,
      },
    };
  }

  /** OpenRouter's GET /generation?id=: a generation's stats, once they have settled. */
  function generationStats(res: http.ServerResponse, id: string) {
    const g = generations.get(id);
    if (!g || g.endedAt === undefined || Date.now() - g.endedAt < state.generationDelayMs)
      return json(res, 404, { error: { message: 'Generation not found', code: 404 } });
    return json(res, 200, {
      data: {
        id,
        model: g.model,
        total_cost: g.cost,
        tokens_prompt: g.prompt,
        tokens_completion: g.completion,
        native_tokens_prompt: g.prompt,
        native_tokens_completion: g.completion,
        streamed: g.streamed,
        cancelled: g.cancelled,
        finish_reason: g.cancelled ? null : 'stop',
      },
    });
  }

  /** Venice's GET /api_keys/rate_limits: the balance left after what the key was charged. */
  function veniceRateLimits(apiKey: string) {
    const start = state.accounts.get(apiKey)?.balanceUsd ?? 0;
    return {
      data: {
        accessPermitted: true,
        balances: { USD: round6(Math.max(0, start - ledger.spent(apiKey, ''))), DIEM: 0 },
      },
    };
  }

  /**
   * Streams `words` as events made by `event(word)`; charges what was streamed, also when the
   * client leaves before the end (the generation then counts as cancelled); `finish` writes the rest.
   */
  async function stream(
    res: http.ServerResponse,
    generation: { id: string; apiKey: string; model: string; prompt: number },
    words: string[],
    event: (word: string) => string,
    finish: (charged: ReturnType<typeof meter>) => Promise<void>,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let closed = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        closed = true;
        state.aborted++;
      }
    });
    const g: Generation = {
      model: generation.model,
      prompt: generation.prompt,
      completion: 0,
      cost: 0,
      cancelled: false,
      streamed: true,
      endedAt: undefined,
    };
    remember(generation.id, g);
    const settle = (cancelled: boolean) => {
      const charged = meter(generation.apiKey, generation.model, generation.prompt, g.completion);
      Object.assign(g, { cost: charged.cost, cancelled, endedAt: Date.now() });
      return charged;
    };
    for (const word of words) {
      if (closed) return void settle(true);
      res.write(event(word));
      g.completion++;
      await sleep(state.chunkDelayMs);
    }
    if (closed) return void settle(true);
    await finish(settle(false));
  }

  async function chatStream(
    res: http.ServerResponse,
    id: string,
    apiKey: string,
    body: Record<string, any>,
    prompt: number,
    words: string[],
  ) {
    const asked = body.stream_options?.include_usage === true;
    const withUsage = asked || state.streamUsage === 'always';
    const model = String(body.model ?? '');
    // Asked for usage, OpenAI adds `"usage": null` to every chunk and the usage in a last chunk of its own.
    const chunk = (choices: unknown[], extra: object = asked ? { usage: null } : {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices, ...extra })}\n\n`;
    await stream(
      res,
      { id, apiKey, model, prompt },
      words,
      (word) => chunk([{ index: 0, delta: { content: word }, finish_reason: null }]),
      async (charged) => {
        if (state.echoKey) {
          const leak = chunk([{ index: 0, delta: { content: ` (${apiKey})` }, finish_reason: null }]);
          const cut = leak.indexOf(apiKey) + Math.floor(apiKey.length / 2);
          res.write(leak.slice(0, cut));
          await sleep(20);
          res.write(leak.slice(cut));
        }
        const finish = [{ index: 0, delta: {}, finish_reason: 'stop' }];
        if (withUsage && !asked) {
          // Always-reporting providers (OpenRouter) put the usage in the finishing chunk.
          res.write(chunk(finish, charged.reported));
        } else {
          res.write(chunk(finish));
          if (withUsage) {
            if (state.usageDelayMs) await sleep(state.usageDelayMs);
            if (res.destroyed) return;
            res.write(chunk([], charged.reported));
          }
        }
        res.end('data: [DONE]\n\n');
      },
    );
  }

  /** The Responses API's answer object, as a plain answer and inside its stream events. */
  function responseObject(id: string, model: unknown, text: string, usage: Usage | null, status: string) {
    return {
      id,
      object: 'response',
      created_at: 1,
      status,
      model,
      output:
        status === 'completed'
          ? [
              {
                type: 'message',
                id: `msg-${id}`,
                status: 'completed',
                role: 'assistant',
                content: [{ type: 'output_text', text, annotations: [] }],
              },
            ]
          : [],
      usage: usage && {
        input_tokens: usage.prompt_tokens,
        output_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
        ...(usage.cost === undefined ? {} : { cost: usage.cost }),
      },
    };
  }

  async function responsesStream(
    res: http.ServerResponse,
    id: string,
    apiKey: string,
    body: Record<string, any>,
    prompt: number,
    words: string[],
  ) {
    let seq = 0;
    const sse = (type: string, data: object) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
    const itemId = `msg-${id}`;
    await stream(
      res,
      { id, apiKey, model: String(body.model ?? ''), prompt },
      words,
      (word) => {
        const opening =
          seq === 0
            ? sse('response.created', { response: responseObject(id, body.model, '', null, 'in_progress') }) +
              sse('response.output_item.added', {
                output_index: 0,
                item: { type: 'message', id: itemId, status: 'in_progress', role: 'assistant', content: [] },
              })
            : '';
        return `${opening}${sse('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta: word })}`;
      },
      async (charged) => {
        const text = words.join('');
        res.write(sse('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text }));
        if (state.usageDelayMs) await sleep(state.usageDelayMs);
        if (res.destroyed) return;
        const done = responseObject(id, body.model, text, charged.usage, 'completed');
        res.end(sse('response.completed', { response: done }));
      },
    );
  }

  async function answer(req: http.IncomingMessage, res: http.ServerResponse, route: string, body: Record<string, any>) {
    const apiKey = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    if (state.echoKey) res.setHeader('x-request-id', `req for ${req.headers.authorization}`);
    if (route === '/key' && state.echoKey) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(`${apiKey} is not a key this server knows`);
    }
    if (route === '/key') return json(res, 200, openRouterKey(apiKey));
    if (route === '/generation')
      return generationStats(res, new URL(req.url ?? '', 'http://x').searchParams.get('id') ?? '');
    if (route === '/api_keys/rate_limits') return json(res, 200, veniceRateLimits(apiKey));
    if (state.failWith) {
      const message = state.echoKey ? `Incorrect API key provided: ${apiKey}` : 'Rate limit reached';
      return json(res, state.failWith, {
        error: { message, type: 'rate_limit_error', param: null, code: 'rate_limit' },
      });
    }
    const model = String(body.model ?? '');
    if (route === '/models') {
      const ids = priced ? Object.keys(options.prices!) : ['fake-model'];
      return json(res, 200, { object: 'list', data: ids.map((m) => ({ id: m, object: 'model', owned_by: 'fake' })) });
    }
    if (route === '/embeddings') {
      const charged = meter(apiKey, model, priced ? tokensIn(textOf(body.input)) : 8, 0);
      return json(res, 200, {
        object: 'list',
        model: body.model,
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
        ...charged.reported,
      });
    }
    const words = replyWords(body);
    if (route === '/responses') {
      const id = nextId('resp');
      const prompt = priced ? tokensIn(textOf(body.input)) : 12;
      if (body.stream) return responsesStream(res, id, apiKey, body, prompt, words);
      const charged = meter(apiKey, model, prompt, priced ? words.length : 3);
      const text = priced ? words.join('').trim() : 'Hello there.';
      return json(res, 200, responseObject(id, body.model, text, charged.usage, 'completed'));
    }
    if (route !== '/chat/completions' && route !== '/completions')
      return json(res, 404, { error: { message: 'not found' } });
    const id = nextId('chatcmpl');
    const prompt = priced ? tokensIn(textOf(body.messages ?? body.prompt)) : 12;
    if (body.stream) return chatStream(res, id, apiKey, body, prompt, words);
    const completion = priced ? words.length : 3;
    const charged = meter(apiKey, model, prompt, completion);
    remember(id, {
      model,
      prompt,
      completion,
      cost: charged.cost,
      cancelled: false,
      streamed: false,
      endedAt: Date.now(),
    });
    const content = `${priced ? words.join('').trim() : 'Hello there.'}${state.echoKey ? ` (${apiKey})` : ''}`;
    return json(res, 200, {
      id,
      object: 'chat.completion',
      created: 1,
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      ...charged.reported,
    });
  }

  const server = http.createServer(async (req, res) => {
    state.authorizations.push(req.headers.authorization ?? '');
    state.paths.push(req.url ?? '');
    if (req.url?.startsWith('/api/v1/')) req.url = req.url.slice('/api/v1'.length);
    const route = (req.url ?? '').split('?')[0] ?? '';
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : {};
    state.bodies.push(body);
    if (state.bodies.length > 100) state.bodies.shift();
    // The latency stands for a model's time to answer: key management answers at once (the demo's
    // history mints and deletes dozens of keys while it is written, one call after another).
    if (options.keyAdmin?.handles(req.method ?? 'GET', route)) return options.keyAdmin.answer(req, res, route, body);
    if (options.latencyMs)
      await sleep(options.latencyMs.min + Math.random() * (options.latencyMs.max - options.latencyMs.min));
    await answer(req, res, route, body);
  });
  // Loopback only, whatever the caller: a fake provider must never be reachable from elsewhere.
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const fake = state as FakeUpstream;
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.bill = charge;
  fake.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}
