// What providers' answers say about usage and cost, read the way they write it: OpenAI's chat
// completions, completions and Responses API (plain and streamed as server-sent events),
// OpenRouter's `usage.cost`, Venice's `cost.usd`. Also what MPK asks of a streaming request so that
// its usage comes back at all, and what a request cost when no answer said so.
import { Decimal } from '../core/money.js';
import type { Prices } from './admission.js';
import type { MeteredRequest } from './service.js';

/** The ledger keeps 12 decimals: a provider's cost (0.00012345678) is kept as it came. */
export const LEDGER_DECIMALS = 12;

export interface Usage {
  /** The provider's id for the answer (kept beside MPK's own request id, for reconciliation). */
  id?: string;
  model?: string;
  promptTokens?: number;
  completionTokens?: number;
  providerCost?: string;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object';
const isAmount = (value: unknown) => typeof value === 'number' || typeof value === 'string';

/** Usage and cost from an answer, or from one event of a streamed answer; adds to `into`. */
export function usageOf(body: unknown, into: Usage = {}): Usage {
  if (!isObject(body)) return into;
  if (typeof body.id === 'string') into.id ??= body.id;
  if (typeof body.model === 'string') into.model ??= body.model;
  const u = body.usage;
  if (isObject(u)) {
    // Chat completions and completions say prompt/completion; the Responses API input/output.
    const prompt = u.prompt_tokens ?? u.input_tokens;
    const completion = u.completion_tokens ?? u.output_tokens;
    if (typeof prompt === 'number') into.promptTokens = prompt;
    if (typeof completion === 'number') into.completionTokens = completion;
    if (isAmount(u.cost)) into.providerCost = String(u.cost);
  }
  if (isObject(body.cost) && isAmount(body.cost.usd)) into.providerCost = String(body.cost.usd);
  // The Responses API's stream events carry the response (with its id and, at the end, its usage).
  if (isObject(body.response)) usageOf(body.response, into);
  return into;
}

/** What a streamed answer has shown so far. */
export interface StreamProgress {
  usage: Usage;
  /** The generation is over (a finish reason, or the end of the output text): only usage may follow. */
  finished: boolean;
  /** Text streamed so far, in characters and in chunks: what an estimate counts tokens from. */
  outputChars: number;
  outputChunks: number;
}

export const newProgress = (): StreamProgress => ({ usage: {}, finished: false, outputChars: 0, outputChunks: 0 });

const FINISHING_EVENTS = new Set([
  'response.output_text.done',
  'response.completed',
  'response.incomplete',
  'response.failed',
]);

/** Reads one parsed stream event; true when it is a usage-only chunk (no choices, only usage). */
function readEvent(event: Json, progress: StreamProgress): boolean {
  usageOf(event, progress.usage);
  const countText = (text: unknown) => {
    if (typeof text !== 'string' || !text) return;
    progress.outputChars += text.length;
    progress.outputChunks++;
  };
  const choices = event.choices;
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      if (!isObject(choice)) continue;
      const delta = isObject(choice.delta) ? choice.delta : {};
      countText(delta.content ?? choice.text);
      countText(delta.reasoning ?? delta.reasoning_content);
      if (choice.finish_reason) progress.finished = true;
    }
    return choices.length === 0 && isObject(event.usage);
  }
  if (typeof event.type === 'string') {
    if (event.type.endsWith('.delta')) countText(event.delta);
    if (FINISHING_EVENTS.has(event.type)) progress.finished = true;
  }
  return false;
}

/** Reads the `data:` lines of an event; true when the event is a usage-only chunk. */
function readEventText(text: string, progress: StreamProgress): boolean {
  let usageOnly = false;
  for (const line of text.split('\n')) {
    const data = line.startsWith('data:') ? line.slice(5).trim() : '';
    if (!data || data === '[DONE]') continue;
    try {
      const parsed: unknown = JSON.parse(data);
      if (isObject(parsed) && readEvent(parsed, progress)) usageOnly = true;
    } catch {
      // Not JSON: passed through untouched, nothing to meter in it.
    }
  }
  return usageOnly;
}

const EVENT_END = /\r?\n\r?\n/g;

/**
 * Follows a server-sent event stream as it arrives. `read` returns what to pass to the client: the
 * chunk itself, byte for byte; or, when MPK asked for usage the client did not (`hideUsage`),
 * the complete events of the chunk without the usage-only chunk and without the `"usage":null`
 * that asking adds to every other chunk, so the client gets what it asked for.
 */
export function createStreamReader(progress: StreamProgress, options: { hideUsage: boolean }) {
  const decoder = new TextDecoder();
  let pending = '';
  return {
    read(chunk: Uint8Array): Uint8Array | string {
      pending += decoder.decode(chunk, { stream: true });
      if (!options.hideUsage) {
        const end = pending.lastIndexOf('\n');
        if (end >= 0) {
          readEventText(pending.slice(0, end), progress);
          pending = pending.slice(end + 1);
        }
        return chunk;
      }
      let out = '';
      let from = 0;
      EVENT_END.lastIndex = 0;
      for (let match = EVENT_END.exec(pending); match; match = EVENT_END.exec(pending)) {
        const to = match.index + match[0].length;
        const event = pending.slice(from, to);
        if (!readEventText(event, progress)) out += event.replaceAll(',"usage":null}', '}');
        from = to;
      }
      pending = pending.slice(from);
      return out;
    },
    /** What is left at the end of the stream (an event without its closing blank line). */
    end(): string {
      const rest = pending;
      pending = '';
      if (!rest) return '';
      const usageOnly = readEventText(rest, progress);
      return options.hideUsage ? (usageOnly ? '' : rest.replaceAll(',"usage":null}', '}')) : '';
    },
  };
}

/**
 * A streaming chat completion or completion reports usage only when asked
 * (`stream_options.include_usage`); MPK asks for every stream, so that none goes unmetered. Returns
 * the body to send and whether the client had asked itself; undefined when the request does not
 * stream or is not JSON (it goes as it came).
 */
export function askForStreamUsage(body: Buffer): { body: Buffer; clientAsked: boolean } | undefined {
  // Most requests do not stream: spare them the parse.
  if (!body.includes('"stream"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || parsed.stream !== true) return undefined;
  const options = isObject(parsed.stream_options) ? parsed.stream_options : {};
  if (options.include_usage === true) return { body, clientAsked: true };
  parsed.stream_options = { ...options, include_usage: true };
  return { body: Buffer.from(JSON.stringify(parsed)), clientAsked: false };
}

type Cost = Pick<MeteredRequest, 'costUsd' | 'costSource'>;

const COST_TEXT = /^\d+(\.\d+)?(e-?\d+)?$/i;

/** Prices are USD per million tokens; the cost is rounded up at the ledger's 12th decimal. */
function priced(price: Prices, promptTokens: number, completionTokens: number): Decimal {
  return new Decimal(price.prompt)
    .times(promptTokens)
    .plus(new Decimal(price.completion).times(completionTokens))
    .dividedBy(1_000_000)
    .toDecimalPlaces(LEDGER_DECIMALS, Decimal.ROUND_UP);
}

/** The answer's own cost (PROVIDER), else its tokens at the key's prices (PRICE), else NONE (flagged). */
export function costOf(usage: Usage, prices: Record<string, Prices> | undefined, model: string | undefined): Cost {
  if (usage.providerCost !== undefined && COST_TEXT.test(usage.providerCost)) {
    const cost = new Decimal(usage.providerCost).toDecimalPlaces(LEDGER_DECIMALS, Decimal.ROUND_UP);
    return { costUsd: cost, costSource: 'PROVIDER' };
  }
  const price = model ? prices?.[model] : undefined;
  if (price && (usage.promptTokens !== undefined || usage.completionTokens !== undefined)) {
    return { costUsd: priced(price, usage.promptTokens ?? 0, usage.completionTokens ?? 0), costSource: 'PRICE' };
  }
  return { costUsd: new Decimal(0), costSource: 'NONE' };
}

/**
 * A request whose answer never said what it cost (the client left mid-generation, or the stream
 * ended without usage): the tokens it used, counted as tokenizers average (four characters a
 * token; a streamed chunk is at least one), at the key's prices: ESTIMATED. Without prices the
 * tokens are kept and the cost is NONE, flagged like any unpriced request. The prompt is counted
 * from the whole request body, so an estimate errs on the side of charging.
 */
export function estimateOf(
  progress: StreamProgress,
  requestBytes: number,
  prices: Record<string, Prices> | undefined,
  model: string | undefined,
): Cost & Pick<MeteredRequest, 'promptTokens' | 'completionTokens'> {
  const promptTokens = progress.usage.promptTokens ?? Math.ceil(requestBytes / 4);
  const completionTokens =
    progress.usage.completionTokens ?? Math.max(progress.outputChunks, Math.ceil(progress.outputChars / 4));
  const price = model ? prices?.[model] : undefined;
  if (!price) return { costUsd: new Decimal(0), costSource: 'NONE', promptTokens, completionTokens };
  return {
    costUsd: priced(price, promptTokens, completionTokens),
    costSource: 'ESTIMATED',
    promptTokens,
    completionTokens,
  };
}
