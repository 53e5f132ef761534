// A local OpenAI-compatible provider for tests and benchmarks: chat completions (plain and
// streamed as server-sent events), completions, embeddings and models, in the documented wire
// format, with OpenRouter's `usage.cost` or Venice's `cost.usd` when asked.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUpstream {
  url: string;
  /** Authorization headers received, in order. */
  authorizations: string[];
  /** Request paths as received (with any /api/v1 prefix and query), in order. */
  paths: string[];
  /** Streams whose client went away before the end. */
  aborted: number;
  /** How the next responses report cost: OpenRouter style, Venice style, or not at all. */
  costStyle: 'openrouter' | 'venice' | 'none';
  /** A status to answer with instead of a completion (e.g. 429), until cleared. */
  failWith: number | null;
  chunkDelayMs: number;
  close(): Promise<void>;
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  let n = 0;
  const state: Omit<FakeUpstream, 'url' | 'close'> = { authorizations: [], paths: [], aborted: 0, costStyle: 'openrouter', failWith: null, chunkDelayMs: 5 };
  const usage = (prompt: number, completion: number) => ({
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    ...(state.costStyle === 'openrouter' ? { cost: 0.000123 * (prompt + completion) } : {}),
  });
  const venice = () => (state.costStyle === 'venice' ? { cost: { usd: 0.0042 } } : {});

  const server = http.createServer(async (req, res) => {
    state.authorizations.push(req.headers.authorization ?? '');
    // Served at the root and under /api/v1 (where OpenRouter's API lives), to test base URLs with a path.
    state.paths.push(req.url ?? '');
    if (req.url?.startsWith('/api/v1/')) req.url = req.url.slice('/api/v1'.length);
    const route = (req.url ?? '').split('?')[0];
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : {};
    if (state.failWith) {
      res.writeHead(state.failWith, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'rate_limit_error', param: null, code: 'rate_limit' } }));
    }
    const id = `chatcmpl-fake-${++n}`;
    if (route === '/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model', owned_by: 'fake' }] }));
    }
    if (route === '/embeddings') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', model: body.model, data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage: usage(8, 0), ...venice() }));
    }
    if (route !== '/chat/completions' && route !== '/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: 'not found' } }));
    }
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ id, object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there.' }, finish_reason: 'stop' }], usage: usage(12, 3), ...venice() }));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let closed = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        closed = true;
        state.aborted++;
      }
    });
    const words = (body.messages?.[0]?.content === 'long' ? Array.from({ length: 200 }, (_, i) => `w${i} `) : ['Hel', 'lo ', 'there', '.']);
    for (const word of words) {
      if (closed) return;
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta: { content: word }, finish_reason: null }] })}\n\n`);
      await new Promise((r) => setTimeout(r, state.chunkDelayMs));
    }
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: usage(12, words.length), ...venice() })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const fake = state as FakeUpstream;
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}
