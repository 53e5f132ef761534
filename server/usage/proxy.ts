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
import type { LeaseTokens } from '../leases/lease-token.js';
import { capReachedMessage, KEY_QUOTA_MESSAGE, type LeaseRefusal } from '../leases/refusals.js';
import type { Metrics } from '../metrics/metrics.js';
import { KEY_NOT_READY_RETRY_SECONDS } from '../minting/service.js';
import type { AdmissionCache, AdmittedKey } from './admission.js';
import type { GenerationLookups } from './generation-stats.js';
import type { MeterBuffer } from './meter-buffer.js';
import {
  askForStreamUsage,
  costOf,
  createStreamReader,
  estimateOf,
  newProgress,
  type StreamProgress,
  usageOf,
} from './provider-answers.js';
import { createRedactor, redactText } from './redact.js';
import type { MeteredRequest } from './service.js';

const ROUTES: Record<string, string> = {
  'POST /v1/chat/completions': '/chat/completions',
  'POST /v1/completions': '/completions',
  'POST /v1/responses': '/responses',
  'POST /v1/embeddings': '/embeddings',
  'GET /v1/models': '/models',
};
/** Where a streaming request's usage must be asked for (the Responses API always reports it). */
const ASK_FOR_STREAM_USAGE = new Set(['/chat/completions', '/completions']);
export const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
// content-length too: the bytes pass unchanged, and a sized answer spares the client chunked decoding.
const PASS_HEADERS = [
  'content-type',
  'content-length',
  'cache-control',
  'x-request-id',
  'openai-processing-ms',
  'retry-after',
];

function openAiError(
  res: http.ServerResponse,
  status: number,
  error: { type: string; code: string; message: string },
  headers: Record<string, string> = {},
) {
  const body = JSON.stringify({ error: { message: error.message, type: error.type, param: null, code: error.code } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * A refused lease in OpenAI's error shape. 402 is what agents' SDKs treat as "out of money" and do
 * not retry; `x-should-retry: false` says so to the official SDKs in so many words.
 */
function refuse(res: http.ServerResponse, refusal: LeaseRefusal, used: number, cap: number) {
  const noRetry = { 'x-should-retry': 'false' };
  switch (refusal) {
    case 'LEASE_SPEND_CAP_REACHED': {
      const message = capReachedMessage(used / 1e6, cap / 1e6);
      return openAiError(res, 402, { type: 'insufficient_quota', code: 'lease_spend_cap_reached', message }, noRetry);
    }
    case 'QUOTA_EXHAUSTED':
      return openAiError(
        res,
        402,
        { type: 'insufficient_quota', code: 'quota_exhausted', message: KEY_QUOTA_MESSAGE },
        noRetry,
      );
    default:
      return openAiError(
        res,
        403,
        { type: 'invalid_request_error', code: 'lease_not_active', message: 'The lease behind this token has ended' },
        noRetry,
      );
  }
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
/**
 * After the generation is over, what the proxy reads on for the usage when the client has left
 * (or stopped reading): at most this long and this much. Usage follows the last text at once.
 */
const DRAIN_MS = 10_000;
const DRAIN_BYTES = 1024 * 1024;
/** Why an upstream request is aborted when its client leaves; one instance (an Error costs a stack capture). */
const CLIENT_GONE = new Error('the client went away');
const DRAIN_OVER = new Error('the usage did not come in time after the client went away');
const SERVICE_UNAVAILABLE = 'MPK cannot check the lease right now; try again shortly';
const KEY_NOT_READY = `The lease's provider key is still being created; try again in ${KEY_NOT_READY_RETRY_SECONDS} s`;

/** How a proxied request ended, for its metering. */
type Outcome = 'complete' | 'client-gone';

interface Exchange {
  requestId: string;
  leaseId: string;
  key: AdmittedKey;
  method: string;
  /** The body as the client sent it (before MPK asked for stream usage). */
  body: Buffer | null;
  status: number;
  /** The answer's bytes, when it was not streamed. */
  chunks: Buffer[] | undefined;
  progress: StreamProgress;
  streamed: boolean;
  outcome: Outcome;
}

export function createMeteringProxy(deps: {
  admission: AdmissionCache;
  tokens: LeaseTokens;
  meter: MeterBuffer;
  generations: GenerationLookups;
  clock: Clock;
  logger: Logger;
  /** The lease's request rate (its tier's requestsPerMinute): seconds to wait, 0 to go on. */
  rateLimits?: { check(leaseId: string): number | Promise<number> };
  metrics?: Pick<Metrics, 'proxyRequest' | 'proxyForwarded'>;
}) {
  const { admission, tokens, meter, generations, clock, logger, metrics } = deps;
  // One connection pool per provider origin, kept alive between requests.
  const upstreamAgent = new Agent({ keepAliveTimeout: 30_000 });

  /** Sends the request upstream and the answer back as it arrives; meters it once it is over. */
  async function forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    upstreamPath: string,
    search: string,
    key: AdmittedKey,
    leaseId: string,
    leaseToken: string,
    startedAt: number,
    /** The secret that goes upstream: the lease's minted key on a MINT key, else the pool key's. */
    upstreamSecret: string,
  ) {
    const reading = performance.now();
    const body = req.method === 'POST' ? await readBody(req) : null;
    // The client's upload is the client's time, not MPK's.
    const uploadMs = performance.now() - reading;
    if (req.method === 'POST' && !body)
      return openAiError(res, 413, {
        type: 'invalid_request_error',
        code: 'request_too_large',
        message: 'Request body too large',
      });
    // A stream's usage comes only when asked for: MPK asks, and hides it from a client that did not.
    const asked = body && ASK_FOR_STREAM_USAGE.has(upstreamPath) ? askForStreamUsage(body) : undefined;
    const hideUsage = asked?.clientAsked === false;

    const exchange: Exchange = {
      requestId: `mpk-${randomUUID()}`,
      leaseId,
      key,
      method: req.method!,
      body,
      status: 0,
      chunks: undefined,
      progress: newProgress(),
      streamed: false,
      outcome: 'complete',
    };
    const chunks: Buffer[] = [];
    // The pool's key (and the lease token) never go back to the client, whatever the provider echoes.
    const secrets = [upstreamSecret, key.secret, leaseToken];
    const redactor = createRedactor(secrets);
    let whole = false;
    let reader: ReturnType<typeof createStreamReader> | undefined;
    let upstream: Dispatcher.DispatchController | undefined;
    let clientGone = false;
    let drained = 0;
    let drainTimer: NodeJS.Timeout | undefined;
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      if (exchange.streamed && exchange.progress.finished && upstream && !upstream.aborted) {
        // The generation is over and its usage follows: read on without the client, briefly.
        drainTimer = setTimeout(() => upstream?.abort(DRAIN_OVER), DRAIN_MS);
        upstream.resume();
      } else {
        upstream?.abort(CLIENT_GONE);
      }
    });

    // undici's dispatch API, the lowest layer of Node's HTTP client: no stream or promise per
    // chunk, so a pass-through costs little more than the bytes it moves.
    const sentAt = performance.now();
    const answered = await new Promise<boolean>((done) => {
      upstreamAgent.dispatch(
        {
          origin: key.origin,
          path: `${key.basePath}${upstreamPath}${search}`,
          method: req.method!,
          headers: {
            authorization: `Bearer ${upstreamSecret}`,
            'content-type': req.headers['content-type'] ?? 'application/json',
            accept: req.headers.accept ?? '*/*',
            // Bytes must reach the client as the provider sent them.
            'accept-encoding': 'identity',
          },
          body: asked?.body ?? body,
        },
        {
          onRequestStart(controller) {
            upstream = controller;
            if (res.destroyed) {
              clientGone = true;
              controller.abort(CLIENT_GONE);
            }
          },
          onResponseStart(_controller, statusCode, headers) {
            if (statusCode < 200) return;
            exchange.status = statusCode;
            const passed: Record<string, string> = { 'x-mpk-lease': leaseId, 'x-mpk-request-id': exchange.requestId };
            for (const name of PASS_HEADERS) {
              const value = headers[name];
              if (value) passed[name] = redactText(Array.isArray(value) ? value.join(', ') : value, secrets);
            }
            exchange.streamed = (passed['content-type'] ?? '').includes('text/event-stream');
            if (exchange.streamed) reader = createStreamReader(exchange.progress, { hideUsage });
            // A small sized answer goes out in one write with its headers when it is complete;
            // anything else, streamed or large, passes through as it arrives.
            const length = Number(passed['content-length']);
            whole = !exchange.streamed && length <= WHOLE_ANSWER_BYTES;
            if (exchange.streamed && hideUsage) delete passed['content-length'];
            if (!clientGone) res.writeHead(statusCode, passed);
          },
          onResponseData(controller, upstreamChunk) {
            const chunk = redactor.read(upstreamChunk);
            if (!exchange.streamed) chunks.push(chunk);
            const out = reader ? reader.read(chunk) : chunk;
            if (clientGone) {
              drained += chunk.length;
              if (drained > DRAIN_BYTES) controller.abort(DRAIN_OVER);
              return;
            }
            if (whole || out.length === 0) return;
            // Respect the client's pace: a slow reader holds the provider's stream back, not memory;
            // but once the generation is over the rest (its usage) is read regardless.
            if (!res.write(out) && !exchange.progress.finished) {
              controller.pause();
              res.once('drain', () => controller.resume());
            }
          },
          onResponseEnd() {
            clearTimeout(drainTimer);
            const tail = redactor.end();
            if (!exchange.streamed && tail.length) chunks.push(tail);
            // What is left to send: the held-back tail, and a stream's last incomplete event.
            let rest: Uint8Array | string = tail;
            if (reader) {
              const out = tail.length ? reader.read(tail) : '';
              const last = reader.end();
              rest = typeof out === 'string' ? out + last : Buffer.concat([out, Buffer.from(last)]);
            }
            if (!clientGone) {
              if (whole) res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
              else res.end(rest.length ? rest : undefined);
            }
            done(true);
          },
          onResponseError(_controller, error) {
            clearTimeout(drainTimer);
            if (clientGone || error === CLIENT_GONE || error === DRAIN_OVER) {
              exchange.outcome = 'client-gone';
              return done(true);
            }
            logger.warn(
              { err: error, leaseId },
              exchange.status ? 'upstream stream failed' : 'upstream request failed',
            );
            if (exchange.status) res.destroy();
            else if (!res.destroyed)
              openAiError(res, 502, {
                type: 'api_error',
                code: 'upstream_unreachable',
                message: 'The provider could not be reached',
              });
            done(exchange.status !== 0);
          },
        },
      );
    });
    metrics?.proxyForwarded(upstreamPath, performance.now() - sentAt, sentAt - startedAt - uploadMs);
    if (!answered) return;
    if (!exchange.streamed) exchange.chunks = chunks;
    // After this tick, so that the answer's bytes leave first.
    setImmediate(() => meterExchange(exchange));
  }

  /** Records what a request cost, from the best source there is for how it ended. */
  function meterExchange(exchange: Exchange) {
    const { progress, key } = exchange;
    if (exchange.chunks?.length) {
      try {
        usageOf(JSON.parse(Buffer.concat(exchange.chunks).toString('utf8')), progress.usage);
      } catch {
        // Not JSON (an upstream error page, or an answer cut short): nothing to read in it.
      }
    }
    const usage = progress.usage;
    const ok = exchange.status >= 200 && exchange.status < 300;
    const reported = usage.promptTokens !== undefined || usage.providerCost !== undefined;
    // Listing models costs nothing; a refused request with no usage in it neither.
    if (exchange.method !== 'POST' || (exchange.status && !ok && !reported)) return;
    const model = usage.model ?? requestedModel(exchange.body);
    if (reported) return record(exchange, model, costOf(usage, key.prices, model));
    // The client left before the usage came (or the answer never had any). OpenRouter can say what
    // that generation cost; otherwise the tokens so far are estimated at the key's prices.
    const estimate = () => record(exchange, model, estimateOf(progress, exchange.body?.length ?? 0, key.prices, model));
    if (key.provider !== 'OPENROUTER' || !usage.id || exchange.outcome !== 'client-gone') return estimate();
    void generations.lookUp(key, usage.id).then((stats) => {
      if (!stats) return estimate();
      const statsModel = stats.model ?? model;
      const statsUsage = { ...usage, ...stats, providerCost: stats.costUsd };
      record(exchange, statsModel, {
        ...costOf(statsUsage, key.prices, statsModel),
        promptTokens: statsUsage.promptTokens ?? null,
        completionTokens: statsUsage.completionTokens ?? null,
      });
    });
  }

  function record(
    exchange: Exchange,
    model: string | undefined,
    cost: Pick<MeteredRequest, 'costUsd' | 'costSource'> & Partial<MeteredRequest>,
  ) {
    const { usage } = exchange.progress;
    // The admission cache counts in whole micro-dollars, rounded up: it errs on the side of refusing.
    const micros = cost.costUsd.times(1_000_000).ceil().toNumber();
    admission.charge(exchange.leaseId, exchange.key.id, micros);
    meter.add({
      leaseId: exchange.leaseId,
      keyId: exchange.key.id,
      micros,
      requestId: exchange.requestId,
      providerRequestId: usage.id ?? null,
      model: model ?? null,
      promptTokens: cost.promptTokens ?? usage.promptTokens ?? null,
      completionTokens: cost.completionTokens ?? usage.completionTokens ?? null,
      at: clock.now(),
      costUsd: cost.costUsd,
      costSource: cost.costSource,
    });
  }

  return {
    /**
     * Closes the kept-alive connections to providers (after the server stopped taking requests);
     * requests still waiting for OpenRouter's figures are estimated now.
     */
    close: () => {
      generations.close();
      return upstreamAgent.close();
    },

    async handle(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, search = '') {
      const startedAt = performance.now();
      const upstreamPath = ROUTES[`${req.method} ${pathname}`];
      if (metrics) {
        res.once('close', () =>
          metrics.proxyRequest(upstreamPath ?? 'other', res.headersSent ? res.statusCode : 'client-gone'),
        );
      }
      if (!upstreamPath)
        return openAiError(res, 404, {
          type: 'invalid_request_error',
          code: 'unknown_url',
          message: `Unknown endpoint ${req.method} ${pathname}`,
        });
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const leaseId = bearer ? tokens.verify(bearer) : null;
      if (!leaseId)
        return openAiError(res, 401, {
          type: 'invalid_request_error',
          code: 'invalid_api_key',
          message: 'Use the lease token from resolveLease as the API key',
        });
      let wait = deps.rateLimits?.check(leaseId) ?? 0;
      if (wait instanceof Promise) wait = await wait;
      if (wait > 0) {
        const seconds = Math.ceil(wait);
        // OpenAI's own shape for a rate limit: its SDKs wait for Retry-After and try again.
        return openAiError(
          res,
          429,
          {
            type: 'requests',
            code: 'rate_limit_exceeded',
            message: `Rate limit reached for this lease's requests per minute; try again in ${seconds} s`,
          },
          { 'retry-after': String(seconds) },
        );
      }

      // The database has not taken the metering for a while (an outage): admitting more would
      // grow what a crash can lose, and memory, without bound.
      if (meter.full())
        return openAiError(
          res,
          503,
          { type: 'api_error', code: 'service_unavailable', message: SERVICE_UNAVAILABLE },
          { 'retry-after': '5' },
        );
      let verdict = admission.admit(leaseId);
      if (verdict instanceof Promise) {
        try {
          verdict = await verdict;
        } catch (error) {
          logger.error({ err: error, leaseId }, 'admission check failed');
          return openAiError(res, 503, {
            type: 'api_error',
            code: 'service_unavailable',
            message: SERVICE_UNAVAILABLE,
          });
        }
      }
      if (!verdict.admitted) return refuse(res, verdict.refusal, verdict.used, verdict.cap);
      // A lease on a MINT key goes upstream with its own minted key, once the runner has made it.
      if (verdict.mintedSecret === null)
        return openAiError(
          res,
          503,
          { type: 'api_error', code: 'key_not_ready', message: KEY_NOT_READY },
          { 'retry-after': String(KEY_NOT_READY_RETRY_SECONDS) },
        );
      const upstreamSecret = verdict.mintedSecret ?? verdict.key.secret;
      return forward(req, res, upstreamPath, search, verdict.key, leaseId, bearer!, startedAt, upstreamSecret);
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
