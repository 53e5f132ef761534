// GET requests to a provider's own API (OpenRouter's /key and /generation, Venice's rate limits),
// with the key as bearer. Failures are worded by MPK: the endpoint, the status and a short reason.
// Nothing a provider wrote goes into them: an error page or a non-JSON answer can quote the key.

const TIMEOUT_MS = 10_000;

export class ProviderAnswerError extends Error {}

/** The `data` object of the JSON answer at `url`; a ProviderAnswerError (or a network error) if none. */
export async function getProviderData(url: string, apiKey: string): Promise<Record<string, unknown>> {
  const endpoint = new URL(url).pathname;
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new ProviderAnswerError(`${endpoint} answered ${res.status}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(await res.text());
  } catch {
    throw new ProviderAnswerError(`${endpoint} answered ${res.status} with a body that is not JSON`);
  }
  const data = (body as { data?: unknown } | null)?.data;
  if (!data || typeof data !== 'object')
    throw new ProviderAnswerError(`${endpoint} answered ${res.status} without a data object`);
  return data as Record<string, unknown>;
}

/** What went wrong with a call to a provider, in MPK's words only. */
export function reasonOf(error: unknown): string {
  if (error instanceof ProviderAnswerError) return error.message;
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  return 'the provider could not be reached';
}
