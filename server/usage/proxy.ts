// The metering proxy: an OpenAI-compatible endpoint under /v1/ that takes a lease token as its
// bearer key. Each request is checked (lease active, key under its windows, lease under its cap,
// from the admission cache) before it is forwarded with the real key, and its cost is counted at
// once and recorded after, in batches. Responses pass through byte for byte; streamed ones chunk
// by chunk, without buffering. Upstream calls go through undici's dispatch API rather than fetch:
// it is the cheapest HTTP client Node has, and the proxy's cost is mostly its HTTP work.
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { Decimal } from '../core/money.js';
import type { LeaseTokens } from '../leases/lease-token.js';
import type { AdmissionCache, AdmittedKey, Prices } from './admission.js';
import type { MeterBuffer } from './meter-buffer.js';
import type { MeteredRequest } from './service.js';

const ROUTES: Record<string, string> = {
  'POST /v1/chat/completions': '/chat/completions',
  'POST /v1/completions': '/completions',
  'POST /v1/embeddings': '/embeddings',
  'GET /v1/models': '/models',
};
const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
// content-length too: the bytes pass unchanged, and a sized answer spares the client chunked decoding.
const PASS_HEADERS = [
  'content-type',
  'content-length',
  'cache-control',
  'x-request-id',
  'openai-processing-ms',
  'retry-after',
];

function openAiError(res: http.ServerResponse, status: number, type: string, code: string, message: string) {
  const body = JSON.stringify({ error: { message, type, param: null, code } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

interface Usage {
  id?: string;
  model?: string;
  promptTokens?: number;
  completionTokens?: number;
  providerCost?: string;
}

/** Usage and cost as OpenAI, OpenRouter (`usage.cost`) and Venice (`cost.usd`) report them. */
export function usageOf(body: unknown, into: Usage = {}): Usage {
  if (!body || typeof body !== 'object') return into;
  const b = body as { id?: unknown; model?: unknown; usage?: Record<string, unknown>; cost?: { usd?: unknown } };
  if (typeof b.id === 'string') into.id ??= b.id;
  if (typeof b.model === 'string') into.model ??= b.model;
  const u = b.usage;
  if (u && typeof u === 'object') {
    if (typeof u.prompt_tokens === 'number') into.promptTokens = u.prompt_tokens;
    if (typeof u.completion_tokens === 'number') into.completionTokens = u.completion_tokens;
    if (typeof u.cost === 'number' || typeof u.cost === 'string') into.providerCost = String(u.cost);
  }
  if (b.cost && (typeof b.cost.usd === 'number' || typeof b.cost.usd === 'string'))
    into.providerCost = String(b.cost.usd);
  return into;
}

/** Reads the `data:` lines of a server-sent event stream as they arrive, keeping the usage seen. */
function sseUsageScanner(usage: Usage) {
  let pending = '';
  const decoder = new TextDecoder();
  return (chunk: Uint8Array) => {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const data = line.startsWith('data:') ? line.slice(5).trim() : '';
      if (!data || data === '[DONE]') continue;
      try {
        usageOf(JSON.parse(data), usage);
      } catch {
        // Not JSON: passed through untouched, nothing to meter in it.
      }
    }
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  // A sized body is complete with its last byte: no need to wait a turn for 'end'.
  const announced = Number(req.headers['content-length'] ?? NaN);
  if (announced > MAX_REQUEST_BYTES) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        req.destroy();
        resolve(null);
        return;
      }
      chunks.push(c);
      if (size === announced) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Answers up to this size (announced by content-length, not streamed) are sent in one write. */
const WHOLE_ANSWER_BYTES = 256 * 1024;
/** Why an upstream request is aborted when its client leaves; one instance (an Error costs a stack capture). */
const CLIENT_GONE = new Error('the client went away');
const SERVICE_UNAVAILABLE = 'MPK cannot check the lease right now; try again shortly';

export function createMeteringProxy(deps: {
  admission: AdmissionCache;
  tokens: LeaseTokens;
  meter: MeterBuffer;
  clock: Clock;
  logger: Logger;
}) {
  const { admission, tokens, meter, clock, logger } = deps;
  // One connection pool per provider origin, kept alive between requests.
  const upstreamAgent = new Agent({ keepAliveTimeout: 30_000 });

  function costOf(
    seen: Usage,
    prices: Record<string, Prices> | undefined,
    model: string | undefined,
  ): Pick<MeteredRequest, 'costUsd' | 'costSource'> {
    if (seen.providerCost !== undefined && /^\d+(\.\d+)?(e-?\d+)?$/i.test(seen.providerCost)) {
      return { costUsd: new Decimal(seen.providerCost).toDecimalPlaces(6, Decimal.ROUND_UP), costSource: 'PROVIDER' };
    }
    const price = model ? prices?.[model] : undefined;
    if (price && (seen.promptTokens !== undefined || seen.completionTokens !== undefined)) {
      const cost = new Decimal(price.prompt)
        .times(seen.promptTokens ?? 0)
        .plus(new Decimal(price.completion).times(seen.completionTokens ?? 0))
        .dividedBy(1_000_000);
      return { costUsd: cost.toDecimalPlaces(6, Decimal.ROUND_UP), costSource: 'PRICE' };
    }
    return { costUsd: new Decimal(0), costSource: 'NONE' };
  }

  /** Sends the request upstream and the answer back as it arrives; meters it once it is over. */
  async function forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    upstreamPath: string,
    search: string,
    key: AdmittedKey,
    leaseId: string,
  ) {
    const body = req.method === 'POST' ? await readBody(req) : null;
    if (req.method === 'POST' && !body)
      return openAiError(res, 413, 'invalid_request_error', 'request_too_large', 'Request body too large');

    const seen: Usage = {};
    let status = 0;
    let streamed = false;
    let whole = false;
    let scan: ((chunk: Uint8Array) => void) | undefined;
    const chunks: Buffer[] = [];
    let upstream: Dispatcher.DispatchController | undefined;
    res.on('close', () => {
      if (!res.writableFinished) upstream?.abort(CLIENT_GONE);
    });

    // undici's dispatch API, the lowest layer of Node's HTTP client: no stream or promise per
    // chunk, so a pass-through costs little more than the bytes it moves.
    const answered = await new Promise<boolean>((done) => {
      upstreamAgent.dispatch(
        {
          origin: key.origin,
          path: `${key.basePath}${upstreamPath}${search}`,
          method: req.method!,
          headers: {
            authorization: `Bearer ${key.secret}`,
            'content-type': req.headers['content-type'] ?? 'application/json',
            accept: req.headers.accept ?? '*/*',
            // Bytes must reach the client as the provider sent them.
            'accept-encoding': 'identity',
          },
          body,
        },
        {
          onRequestStart(controller) {
            upstream = controller;
            if (res.destroyed) controller.abort(CLIENT_GONE);
          },
          onResponseStart(_controller, statusCode, headers) {
            if (statusCode < 200) return;
            status = statusCode;
            const passed: Record<string, string> = { 'x-mpk-lease': leaseId };
            for (const name of PASS_HEADERS) {
              const value = headers[name];
              if (value) passed[name] = Array.isArray(value) ? value.join(', ') : value;
            }
            streamed = (passed['content-type'] ?? '').includes('text/event-stream');
            if (streamed) scan = sseUsageScanner(seen);
            // A small sized answer goes out in one write with its headers when it is complete;
            // anything else, streamed or large, passes through as it arrives.
            const length = Number(passed['content-length']);
            whole = !streamed && length <= WHOLE_ANSWER_BYTES;
            res.writeHead(statusCode, passed);
          },
          onResponseData(controller, chunk) {
            if (!streamed) chunks.push(chunk);
            if (whole) return;
            // Respect the client's pace: a slow reader holds the provider's stream back, not memory.
            if (!res.write(chunk)) {
              controller.pause();
              res.once('drain', () => controller.resume());
            }
            if (scan) scan(chunk);
          },
          onResponseEnd() {
            if (whole) res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
            else res.end();
            done(true);
          },
          onResponseError(_controller, error) {
            if (error !== CLIENT_GONE)
              logger.warn({ err: error, leaseId }, status ? 'upstream stream failed' : 'upstream request failed');
            if (status) res.destroy();
            else if (!res.destroyed)
              openAiError(res, 502, 'api_error', 'upstream_unreachable', 'The provider could not be reached');
            done(status !== 0);
          },
        },
      );
    });
    // What reached the client is metered, also when it left mid-stream; after this tick, so that
    // the answer's bytes leave first.
    if (answered)
      setImmediate(() => meterRequest(req.method!, status, streamed ? undefined : chunks, seen, body, key, leaseId));
  }

  function meterRequest(
    method: string,
    status: number,
    chunks: Buffer[] | undefined,
    seen: Usage,
    body: Buffer | null,
    key: AdmittedKey,
    leaseId: string,
  ) {
    if (chunks?.length) {
      try {
        usageOf(JSON.parse(Buffer.concat(chunks).toString('utf8')), seen);
      } catch {
        // Not JSON (an upstream error page): nothing to meter.
      }
    }
    const ok = status >= 200 && status < 300;
    // Listing models costs nothing; a refused request with no usage in it neither.
    if (method !== 'POST' || (!ok && seen.promptTokens === undefined && seen.providerCost === undefined)) return;
    const model = seen.model ?? requestedModel(body);
    const cost = costOf(seen, key.prices, model);
    const micros = cost.costUsd.times(1_000_000).toNumber();
    admission.charge(leaseId, key.id, micros);
    meter.add({
      leaseId,
      keyId: key.id,
      micros,
      requestId: seen.id ? `${seen.id}` : `mpk-${randomUUID()}`,
      model: model ?? null,
      promptTokens: seen.promptTokens ?? null,
      completionTokens: seen.completionTokens ?? null,
      at: clock.now(),
      ...cost,
    });
  }

  return {
    /** Closes the kept-alive connections to providers (after the server stopped taking requests). */
    close: () => upstreamAgent.close(),

    async handle(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, search = '') {
      const upstreamPath = ROUTES[`${req.method} ${pathname}`];
      if (!upstreamPath)
        return openAiError(
          res,
          404,
          'invalid_request_error',
          'unknown_url',
          `Unknown endpoint ${req.method} ${pathname}`,
        );
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const leaseId = bearer ? tokens.verify(bearer) : null;
      if (!leaseId)
        return openAiError(
          res,
          401,
          'invalid_request_error',
          'invalid_api_key',
          'Use the lease token from resolveLease as the API key',
        );

      let verdict = admission.admit(leaseId);
      if (verdict instanceof Promise) {
        try {
          verdict = await verdict;
        } catch (error) {
          logger.error({ err: error, leaseId }, 'admission check failed');
          return openAiError(res, 503, 'api_error', 'service_unavailable', SERVICE_UNAVAILABLE);
        }
      }
      if (!verdict.admitted) {
        return verdict.status === 403
          ? openAiError(
              res,
              403,
              'invalid_request_error',
              'lease_not_active',
              'The lease behind this token is not active',
            )
          : openAiError(
              res,
              402,
              'insufficient_quota',
              'quota_exhausted',
              "The lease's spend cap or its key's spend limit has been reached",
            );
      }
      return forward(req, res, upstreamPath, search, verdict.key, leaseId);
    },
  };
}
export type MeteringProxy = ReturnType<typeof createMeteringProxy>;

/** The model the client asked for, read only when the response did not name one. */
function requestedModel(body: Buffer | null): string | undefined {
  if (!body?.length) return undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { model?: unknown };
    return typeof parsed.model === 'string' ? parsed.model : undefined;
  } catch {
    return undefined;
  }
}
