// OpenRouter's generation stats (GET {baseUrl}/generation?id=gen-...): the exact cost of one
// generation, a cancelled one included. When a client leaves mid-generation the usage never comes
// down the stream, so the proxy asks here. The stats appear a moment after the generation ends
// (404 until then), so a lookup tries again after each of its delays before it gives up.

import { providerData } from '../core/provider-request.js';

export interface GenerationStats {
  costUsd: string;
  promptTokens?: number;
  completionTokens?: number;
  model?: string;
}

export interface GenerationSource {
  origin: string;
  basePath: string;
  secret: string;
}

export function createGenerationLookups(deps: { delaysMs?: readonly number[] } = {}) {
  const delaysMs = deps.delaysMs ?? [1_000, 2_000, 4_000, 8_000, 15_000];
  /** Lookups waiting for their next try; closing ends them all at once. */
  const waiting = new Set<() => void>();

  /** Waits `ms`, or less if closed; false when closed. */
  function pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const stop = () => {
        clearTimeout(timer);
        waiting.delete(stop);
        resolve(false);
      };
      const timer = setTimeout(() => {
        waiting.delete(stop);
        resolve(true);
      }, ms);
      waiting.add(stop);
    });
  }

  /** The stats; null without a cost yet, and an error (404 until they settle) for `lookUp` to retry. */
  async function fetchStats(source: GenerationSource, id: string): Promise<GenerationStats | null> {
    const url = `${source.origin}${source.basePath}/generation?id=${encodeURIComponent(id)}`;
    const data = await providerData(url, source.secret);
    const cost = data.total_cost;
    if (typeof cost !== 'number' && typeof cost !== 'string') return null;
    const count = (value: unknown) => (typeof value === 'number' ? value : undefined);
    return {
      costUsd: String(cost),
      promptTokens: count(data.tokens_prompt) ?? count(data.native_tokens_prompt),
      completionTokens: count(data.tokens_completion) ?? count(data.native_tokens_completion),
      model: typeof data.model === 'string' ? data.model : undefined,
    };
  }

  return {
    /** The stats of generation `id`, or null when they did not come in time (or on close). */
    async lookUp(source: GenerationSource, id: string): Promise<GenerationStats | null> {
      for (const delay of delaysMs) {
        if (!(await pause(delay))) return null;
        try {
          const stats = await fetchStats(source, id);
          if (stats) return stats;
        } catch {
          // Not there yet (404), unreachable or slow this time: the next try may do better.
        }
      }
      return null;
    },
    /** Ends every waiting lookup now (their requests are then estimated), for a graceful stop. */
    close() {
      for (const stop of [...waiting]) stop();
    },
  };
}
export type GenerationLookups = ReturnType<typeof createGenerationLookups>;
