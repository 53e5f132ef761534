// A graphql-ws client for tests, collecting what a subscription delivers.
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface Collected<T = any> {
  items: T[];
  errors: unknown[];
  done: boolean;
  /** Resolves once `n` items have arrived (or rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<T[]>;
  dispose(): void;
}

export function wsClient(
  httpUrl: string,
  token: string | null,
  onClose?: (event: { code: number; reason: string }) => void,
): Client {
  return createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {},
    on: { closed: (event) => onClose?.(event as { code: number; reason: string }) },
  });
}

export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): Collected<T> {
  const collected: Collected<T> = {
    items: [],
    errors: [],
    done: false,
    waitFor: (n, ms = 10_000) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const check = () => {
          if (collected.items.length >= n) return resolve(collected.items);
          if (collected.errors.length) return reject(new Error(JSON.stringify(collected.errors)));
          if (Date.now() - started > ms)
            return reject(new Error(`only ${collected.items.length} of ${n} items after ${ms} ms`));
          setTimeout(check, 10);
        };
        check();
      }),
    dispose: () => {},
  };
  collected.dispose = client.subscribe<T>(
    { query, variables },
    {
      next: (value) => {
        if (value.errors) collected.errors.push(...value.errors);
        else collected.items.push(value.data as T);
      },
      error: (error) => collected.errors.push(error),
      complete: () => (collected.done = true),
    },
  );
  return collected;
}

export const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));
