// The metering proxy: an OpenAI-compatible endpoint under /v1/ that takes a lease token as its
// bearer key. Each request is checked (lease active, key under its windows, lease under its cap)
// before it is forwarded with the real key, and its cost is recorded after. Responses pass through
// byte for byte; streamed ones chunk by chunk, without buffering.
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { Decimal } from '../core/money.js';
import type { Db } from '../db/client.js';
import type { KeyService } from '../keys/service.js';
import type { LeaseTokens } from '../leases/lease-token.js';
import { keyUnderLimits, utcDate } from '../leases/transitions.js';
import type { MeterBuffer } from './meter-buffer.js';
import type { MeteredRequest } from './service.js';

const ROUTES: Record<string, string> = {
  'POST /v1/chat/completions': '/chat/completions',
  'POST /v1/completions': '/completions',
  'POST /v1/embeddings': '/embeddings',
  'GET /v1/models': '/models',
};
const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
const PASS_HEADERS = ['content-type', 'cache-control', 'x-request-id', 'openai-processing-ms', 'retry-after'];

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
  if (b.cost && (typeof b.cost.usd === 'number' || typeof b.cost.usd === 'string')) into.providerCost = String(b.cost.usd);
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
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        req.destroy();
        resolve(null);
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Prices {
  prompt: string | number;
  completion: string | number;
}

export function createMeteringProxy(deps: { db: Db; clock: Clock; keys: KeyService; tokens: LeaseTokens; meter: MeterBuffer; logger: Logger }) {
  const { db, clock, keys, tokens, meter, logger } = deps;

  function costOf(seen: Usage, prices: Record<string, Prices> | undefined, model: string | undefined): Pick<MeteredRequest, 'costUsd' | 'costSource'> {
    if (seen.providerCost !== undefined && /^\d+(\.\d+)?(e-?\d+)?$/i.test(seen.providerCost)) {
      return { costUsd: new Decimal(seen.providerCost).toDecimalPlaces(6, Decimal.ROUND_UP), costSource: 'PROVIDER' };
    }
    const price = model ? prices?.[model] : undefined;
    if (price && (seen.promptTokens !== undefined || seen.completionTokens !== undefined)) {
      const cost = new Decimal(price.prompt).times(seen.promptTokens ?? 0).plus(new Decimal(price.completion).times(seen.completionTokens ?? 0)).dividedBy(1_000_000);
      return { costUsd: cost.toDecimalPlaces(6, Decimal.ROUND_UP), costSource: 'PRICE' };
    }
    return { costUsd: new Decimal(0), costSource: 'NONE' };
  }

  return {
    async handle(req: http.IncomingMessage, res: http.ServerResponse, pathname: string) {
      const upstreamPath = ROUTES[`${req.method} ${pathname}`];
      if (!upstreamPath) return openAiError(res, 404, 'invalid_request_error', 'unknown_url', `Unknown endpoint ${req.method} ${pathname}`);
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const leaseId = bearer ? tokens.verify(bearer) : null;
      if (!leaseId) return openAiError(res, 401, 'invalid_request_error', 'invalid_api_key', 'Use the lease token from resolveLease as the API key');

      const now = clock.now();
      const [row] = await db.$queryRaw<
        { status: string; expiresAt: Date; usageUsd: Decimal; spendCapUsd: Decimal; keyId: string; keyStatus: string; baseUrl: string; secretCiphertext: string; config: { prices?: Record<string, Prices> }; underLimits: boolean }[]
      >`SELECT l.status::text AS status, l."expiresAt", l."usageUsd", l."spendCapUsd", k.id::text AS "keyId", k.status::text AS "keyStatus",
               k."baseUrl", k."secretCiphertext", k.config, ${keyUnderLimits(utcDate(now, 'day'), utcDate(now, 'month'))} AS "underLimits"
        FROM "Lease" l JOIN "ManagedKey" k ON k.id = l."keyId" WHERE l.id = ${leaseId}::uuid`;
      if (!row || row.status !== 'ACTIVE' || row.expiresAt <= now || row.keyStatus !== 'ACTIVE') {
        return openAiError(res, 403, 'invalid_request_error', 'lease_not_active', 'The lease behind this token is not active');
      }
      if (!row.underLimits || new Decimal(row.usageUsd).greaterThanOrEqualTo(row.spendCapUsd)) {
        return openAiError(res, 402, 'insufficient_quota', 'quota_exhausted', "The lease's spend cap or its key's spend limit has been reached");
      }

      const body = req.method === 'POST' ? await readBody(req) : null;
      if (req.method === 'POST' && !body) return openAiError(res, 413, 'invalid_request_error', 'request_too_large', 'Request body too large');
      let requested: { model?: string; stream?: boolean } = {};
      try {
        if (body?.length) requested = JSON.parse(body.toString('utf8'));
      } catch {
        // Forwarded as is: the upstream answers malformed JSON in its own words.
      }

      const abort = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) abort.abort();
      });
      let upstream: Response;
      try {
        upstream = await fetch(`${row.baseUrl}${upstreamPath}`, {
          method: req.method,
          headers: {
            authorization: `Bearer ${keys.revealSecret({ id: row.keyId, secretCiphertext: row.secretCiphertext })}`,
            'content-type': req.headers['content-type'] ?? 'application/json',
            accept: req.headers.accept ?? '*/*',
            // Bytes must reach the client as the provider sent them.
            'accept-encoding': 'identity',
          },
          body: body ? new Uint8Array(body) : undefined,
          signal: abort.signal,
        });
      } catch (error) {
        if (abort.signal.aborted) return;
        logger.warn({ err: error, leaseId }, 'upstream request failed');
        return openAiError(res, 502, 'api_error', 'upstream_unreachable', 'The provider could not be reached');
      }

      const headers: Record<string, string> = { 'x-mpk-lease': leaseId };
      for (const name of PASS_HEADERS) {
        const value = upstream.headers.get(name);
        if (value) headers[name] = value;
      }
      res.writeHead(upstream.status, headers);
      const seen: Usage = {};
      const streamed = (upstream.headers.get('content-type') ?? '').includes('text/event-stream');
      const scan = streamed ? sseUsageScanner(seen) : undefined;
      const chunks: Uint8Array[] = [];
      try {
        for await (const chunk of (upstream.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
          res.write(chunk);
          if (scan) scan(chunk);
          else chunks.push(chunk);
        }
        res.end();
      } catch (error) {
        if (!abort.signal.aborted) logger.warn({ err: error, leaseId }, 'upstream stream failed');
        res.destroy();
      }
      if (!streamed && chunks.length) {
        try {
          usageOf(JSON.parse(Buffer.concat(chunks).toString('utf8')), seen);
        } catch {
          // Not JSON (an upstream error page): nothing to meter.
        }
      }
      // Listing models costs nothing; a refused request with no usage in it neither.
      if (req.method !== 'POST' || (!upstream.ok && seen.promptTokens === undefined && seen.providerCost === undefined)) return;
      const model = seen.model ?? requested.model;
      meter.add(leaseId, {
        requestId: seen.id ? `${seen.id}` : `mpk-${randomUUID()}`,
        model: model ?? null,
        promptTokens: seen.promptTokens ?? null,
        completionTokens: seen.completionTokens ?? null,
        ...costOf(seen, row.config?.prices, model),
      });
    },
  };
}
export type MeteringProxy = ReturnType<typeof createMeteringProxy>;
