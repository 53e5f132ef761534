// Subscriptions are let go the moment they are cancelled, over WebSocket and server-sent events:
// thousands of subscribe/cancel cycles on a filter that never matches leave no listener behind and
// no heap growth (a waiting subscription used to stay until its next matching event); and a USER
// holds at most so many subscriptions and WebSocket connections.
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Client } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import { TOO_MANY_CONNECTIONS_CLOSE } from '../server/http/websocket.js';
import { newUser } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';
import { collect, settle, wsClient } from './support/ws.js';

const CYCLES = 5000;
/** Subscriptions open at once in a round: the cap, so that the rounds also prove it frees up. */
const MAX_SUBSCRIPTIONS = 50;
const MAX_CONNECTIONS = 3;
const HEAP_GROWTH_LIMIT = 20 * 1024 * 1024;
// SUSPENDED never happens here: a subscription on it only ever waits, which is where it leaked.
const WAITING = `subscription { leaseEvents(types: [SUSPENDED]) { cursor } }`;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let server: TestServer;
withTestServer(
  { config: { maxSubscriptionsPerUser: MAX_SUBSCRIPTIONS, maxConnectionsPerUser: MAX_CONNECTIONS } },
  (s) => ({ server } = s),
);
const clients: Client[] = [];
afterAll(async () => {
  for (const c of clients) await c.dispose();
});

const open = () => ({ ...server.app.subscriberLimits.open(), listeners: listening() });
/** Subscriptions whose stream is running on the server: each holds one listener on the pump. */
const listening = () => server.app.pump.listenerCount();

async function until(check: () => boolean, what: string, ms = 5000) {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function heapAfterGc() {
  for (let i = 0; i < 3; i++) {
    await settle(50);
    gc();
  }
  return process.memoryUsage().heapUsed;
}

/** An SSE subscription whose stream runs on the server, and the way to hang it up. */
async function sseSubscription(token: string, query = WAITING) {
  const controller = new AbortController();
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  return {
    read: async () => new TextDecoder().decode((await reader.read()).value),
    cancel: () => {
      controller.abort();
      reader.cancel().catch(() => {});
    },
  };
}

/**
 * `CYCLES` subscribe/cancel cycles in rounds of `MAX_SUBSCRIPTIONS`: each round waits until every
 * stream of it runs on the server (listening on the pump), cancels them all, and waits until every
 * one is gone. Returns the heap growth between a warmed-up start and the end, after GC.
 */
async function cycles(round: (n: number) => Promise<() => void>) {
  const baseListeners = listening();
  const runRound = async () => {
    const cancel = await round(MAX_SUBSCRIPTIONS);
    await until(() => listening() === baseListeners + MAX_SUBSCRIPTIONS, 'every subscription running');
    cancel();
    await until(() => listening() === baseListeners && open().subscriptions === 0, 'every subscription released');
  };
  for (let i = 0; i < 4; i++) await runRound();
  const before = await heapAfterGc();
  for (let done = 4 * MAX_SUBSCRIPTIONS; done < CYCLES; done += MAX_SUBSCRIPTIONS) await runRound();
  const growth = (await heapAfterGc()) - before;
  console.info(`heap growth over ${CYCLES} cycles: ${(growth / 2 ** 20).toFixed(1)} MiB`);
  return growth;
}

describe('cancelled subscriptions are released at once', () => {
  it(`${CYCLES} subscribe/complete cycles on one WebSocket leave nothing behind`, async () => {
    const user = await newUser(server, { prefix: 'ws-cycle' });
    const c = wsClient(server.url, user.token);
    clients.push(c);
    const growth = await cycles(async (n) => {
      const subs = Array.from({ length: n }, () => collect(c, WAITING));
      return () => {
        for (const s of subs) s.dispose();
      };
    });
    expect(growth).toBeLessThan(HEAP_GROWTH_LIMIT);
  });

  it('closing the socket releases its subscriptions', async () => {
    const base = open();
    const user = await newUser(server, { prefix: 'ws-close' });
    const c = wsClient(server.url, user.token);
    for (let i = 0; i < 10; i++) collect(c, WAITING);
    await until(
      () => open().subscriptions === base.subscriptions + 10 && open().connections === base.connections + 1,
      'subscriptions running',
    );
    await c.dispose();
    await until(
      () => open().subscriptions === base.subscriptions && open().connections === base.connections,
      'released',
    );
    expect(listening()).toBe(base.listeners);
  });

  it('an SSE request aborted at any moment, even before its answer starts, holds nothing', async () => {
    const base = open();
    const user = await newUser(server, { prefix: 'sse-early' });
    await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), i % 30);
        await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            authorization: `Bearer ${user.token}`,
          },
          body: JSON.stringify({ query: WAITING }),
          signal: controller.signal,
        })
          .then((res) => res.body?.cancel())
          .catch(() => {});
      }),
    );
    await until(
      () => open().subscriptions === base.subscriptions && listening() === base.listeners,
      'every aborted request released',
      3000,
    );
  });

  it(`${CYCLES} subscribe/abort cycles over server-sent events leave nothing behind`, async () => {
    const user = await newUser(server, { prefix: 'sse-cycle' });
    const growth = await cycles(async (n) => {
      const subs = await Promise.all(Array.from({ length: n }, () => sseSubscription(user.token)));
      return () => {
        for (const s of subs) s.cancel();
      };
    });
    expect(growth).toBeLessThan(HEAP_GROWTH_LIMIT);
  });
});

describe('per-user caps', () => {
  it(`a user's subscription past ${MAX_SUBSCRIPTIONS} is refused (SUBSCRIPTION_LIMIT), any transport`, async () => {
    const user = await newUser(server, { prefix: 'capped' });
    const other = await newUser(server, { prefix: 'uncapped' });
    const c = wsClient(server.url, user.token);
    clients.push(c);
    const held = Array.from({ length: MAX_SUBSCRIPTIONS - 1 }, () => collect(c, WAITING));
    const lastSse = await sseSubscription(user.token);
    await until(() => open().subscriptions === MAX_SUBSCRIPTIONS, 'the cap reached');

    const refused = collect(c, WAITING);
    await until(() => refused.errors.length > 0, 'the refusal');
    expect(JSON.stringify(refused.errors)).toContain('"code":"SUBSCRIPTION_LIMIT"');
    const refusedSse = await sseSubscription(user.token);
    let text = '';
    while (!text.includes('event: complete')) text += await refusedSse.read();
    expect(text).toContain('"code":"SUBSCRIPTION_LIMIT"');

    // Another user is not affected; staff are not capped.
    const theirs = collect(wsClient(server.url, other.token), WAITING);
    const admin = collect(wsClient(server.url, await server.token('ADMIN', 'cap-admin')), WAITING);
    await until(() => open().subscriptions === MAX_SUBSCRIPTIONS + 2, 'others subscribed');
    expect([theirs.errors, admin.errors]).toEqual([[], []]);

    // Ending one makes room for one.
    lastSse.cancel();
    await until(() => open().subscriptions === MAX_SUBSCRIPTIONS + 1, 'one released');
    const again = collect(c, WAITING);
    await until(() => open().subscriptions === MAX_SUBSCRIPTIONS + 2, 'one more admitted');
    expect(again.errors).toEqual([]);
    for (const s of [...held, again]) s.dispose();
  });

  it(`a user's WebSocket connection past ${MAX_CONNECTIONS} is closed with ${TOO_MANY_CONNECTIONS_CLOSE}`, async () => {
    await settle(100);
    const baseline = open().connections;
    const user = await newUser(server, { prefix: 'conns' });
    const sockets = Array.from({ length: MAX_CONNECTIONS }, () => wsClient(server.url, user.token));
    clients.push(...sockets);
    for (const s of sockets) collect(s, WAITING);
    await until(() => open().connections === baseline + MAX_CONNECTIONS, 'connections open');

    let closed: { code: number; reason: string } | undefined;
    const extra = wsClient(server.url, user.token, (e) => (closed = e));
    const sub = collect(extra, WAITING);
    await until(() => closed !== undefined, 'the refusal');
    expect(closed).toMatchObject({
      code: TOO_MANY_CONNECTIONS_CLOSE,
      reason: expect.stringContaining('SUBSCRIPTION_LIMIT'),
    });
    expect(sub.items).toEqual([]);
    await extra.dispose();

    await sockets[0]!.dispose();
    await until(() => open().connections === baseline + MAX_CONNECTIONS - 1, 'one closed');
    const replacement = wsClient(server.url, user.token);
    clients.push(replacement);
    const ok = collect(replacement, WAITING);
    await until(() => open().connections === baseline + MAX_CONNECTIONS, 'a new one admitted');
    await settle(100);
    expect(ok.errors).toEqual([]);
  });
});
