// Requests to a provider's own API with a key as bearer: key management (server/minting), a key's
// usage and rate limits (server/usage/reconcile.ts), generation stats (server/usage/generation-stats.ts).
// Failures are worded by MPK only: "<METHOD> <path> answered <status>", "<METHOD> <path>: no answer
// within 10 s", "<METHOD> <path>: the provider could not be reached". Nothing a provider wrote goes
// into them, or into a log or a job row: an error page or a body that is not JSON can quote the key.

const TIMEOUT_MS = 10_000;

export class ProviderRequestError extends Error {
  constructor(
    message: string,
    /** The provider's HTTP status; null when it did not answer. */
    readonly status: number | null,
    /** From the provider's Retry-After (a 429 or 503). */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'ProviderRequestError';
  }
}

export interface ProviderRequest {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** A 404 answers null instead of failing (a key the provider no longer knows). */
  allow404?: boolean;
}

/** The parsed JSON answer to a request at `url`; null for a 404 when `allow404`. */
export async function providerRequest(url: string, bearer: string, request: ProviderRequest = {}): Promise<unknown> {
  const { method = 'GET', body, allow404 = false } = request;
  const where = `${method} ${new URL(url).pathname}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${bearer}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new ProviderRequestError(
      timedOut ? `${where}: no answer within ${TIMEOUT_MS / 1000} s` : `${where}: the provider could not be reached`,
      null,
    );
  }
  if (res.status === 404 && allow404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ProviderRequestError(
      `${where} answered ${res.status}`,
      res.status,
      parseRetryAfter(res.headers.get('retry-after')),
    );
  }
  try {
    return JSON.parse(await res.text()) as unknown;
  } catch {
    throw new ProviderRequestError(`${where} answered ${res.status} with a body that is not JSON`, res.status);
  }
}

/** The `data` object of the JSON answer to a GET at `url` (OpenRouter's and Venice's envelope). */
export async function providerData(url: string, bearer: string): Promise<Record<string, unknown>> {
  const data = (await providerRequest(url, bearer)) as { data?: unknown } | null;
  if (!data?.data || typeof data.data !== 'object')
    throw new ProviderRequestError(`GET ${new URL(url).pathname} answered without a data object`, null);
  return data.data as Record<string, unknown>;
}

/** What went wrong with a request to a provider, in MPK's words only (`otherwise` for any other error). */
export const reasonOf = (error: unknown, otherwise = 'the provider could not be reached') =>
  error instanceof ProviderRequestError ? error.message : otherwise;

function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
