// Provider reconciliation against local fakes of OpenRouter's key API and Venice's rate-limits
// API: figures stored beside MPK's metered ones, drift exposed, failures recorded without the key.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, disableKeys, leaseForNewUser, ok, reportUsage } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const OPENROUTER_KEY = 'sk-or-v1-reconcile-0123456789';
const VENICE_KEY = 'venice-reconcile-0123456789';
let server: TestServer;
let fake: http.Server;
let fakeUrl: string;
let admin: string;
let worker: string;
let failing = false;
/** The fake answers GET /key with a text page quoting the key (some providers' 401 pages do). */
let quoting = false;
const seen: string[] = [];

const PROVIDER = `query($id: ID!) { managedKey(id: $id) { spendTodayUsd providerUsage {
  checkedAt error usageTodayUsd usageThisMonthUsd limitUsd limitRemainingUsd balanceUsd
  driftTodayUsd driftThisMonthUsd } } }`;

beforeAll(async () => {
  fake = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    if (failing) return res.writeHead(500).end('upstream broke');
    if (quoting) return res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.headers.authorization} ok`);
    res.setHeader('content-type', 'application/json');
    if (req.url === '/openrouter/api/v1/key') {
      return res.end(
        JSON.stringify({
          data: {
            label: 'sk-or-v1-rec...789',
            usage: 12.5,
            usage_daily: 1.25,
            usage_weekly: 4,
            usage_monthly: 12.5,
            limit: 100,
            limit_remaining: 87.5,
            is_free_tier: false,
          },
        }),
      );
    }
    if (req.url === '/venice/api/v1/api_keys/rate_limits') {
      return res.end(
        JSON.stringify({
          data: {
            apiTier: { id: 'paid', isCharged: true },
            balances: { USD: 42.75, DIEM: 10 },
            nextEpochBegins: '2026-11-26T00:00:00.000Z',
            rateLimits: [],
          },
        }),
      );
    }
    res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
});
afterAll(() => fake?.close());
withTestServer({ scheduler: false, roles: 'rec' }, (s) => ({ server, admin, worker } = s));

describe('reconciliation', () => {
  it('stores OpenRouter and Venice figures beside the metered ones and exposes the drift', async () => {
    const openrouter = await createKey(server, admin, {
      baseUrl: `${fakeUrl}/openrouter/api/v1`,
      apiKey: OPENROUTER_KEY,
      config: { delivery: 'DIRECT' },
    });
    const venice = await createKey(server, admin, {
      provider: 'VENICE',
      baseUrl: `${fakeUrl}/venice/api/v1`,
      apiKey: VENICE_KEY,
      defaultModel: 'llama-3.3-70b',
    });
    expect(ok(await server.gql(PROVIDER, { id: openrouter.id }, admin), 'managedKey').providerUsage).toBeNull();

    // MPK metered $1.00 today on the OpenRouter key; the provider says $1.25.
    await disableKeys(server, openrouter.id);
    const lease = await leaseForNewUser(server, {}, { prefix: 'rec' });
    ok(await reportUsage(server, worker, { leaseId: lease.id, requestId: 'r1', costUsd: '1' }), 'reportUsage');
    await server.app.db.managedKey.update({ where: { id: venice.id }, data: { status: 'ACTIVE' } });

    expect(await server.app.reconcile.runOnce()).toBeGreaterThanOrEqual(2);
    expect(seen).toContain(`GET /openrouter/api/v1/key Bearer ${OPENROUTER_KEY}`);
    expect(seen).toContain(`GET /venice/api/v1/api_keys/rate_limits Bearer ${VENICE_KEY}`);

    const or = ok(await server.gql(PROVIDER, { id: openrouter.id }, admin), 'managedKey');
    expect(or.providerUsage).toMatchObject({
      error: null,
      usageTodayUsd: '1.25',
      usageThisMonthUsd: '12.50',
      limitUsd: '100.00',
      limitRemainingUsd: '87.50',
      balanceUsd: null,
      driftTodayUsd: '0.25',
      driftThisMonthUsd: '11.50',
    });
    const ve = ok(await server.gql(PROVIDER, { id: venice.id }, admin), 'managedKey');
    expect(ve.providerUsage).toMatchObject({ balanceUsd: '42.75', usageTodayUsd: null, driftTodayUsd: null });
  });

  it('records a failed check without the key, and keeps the last figures', async () => {
    failing = true;
    try {
      const key = await createKey(server, admin, { baseUrl: `${fakeUrl}/openrouter/api/v1`, apiKey: OPENROUTER_KEY });
      await server.app.reconcile.runOnce();
      const res = await server.gql(PROVIDER, { id: key.id }, admin);
      expect(ok(res, 'managedKey').providerUsage.error).toBe('GET /openrouter/api/v1/key answered 500');
      expect(res.raw).not.toContain(OPENROUTER_KEY);
      expect(server.logs.join('\n')).not.toContain(OPENROUTER_KEY);
    } finally {
      failing = false;
    }
  });

  it("stores and logs no part of a non-JSON answer: only the endpoint, the status and MPK's reason", async () => {
    quoting = true;
    try {
      const key = await createKey(server, admin, { baseUrl: `${fakeUrl}/openrouter/api/v1`, apiKey: OPENROUTER_KEY });
      await server.app.reconcile.runOnce();
      const res = await server.gql(PROVIDER, { id: key.id }, admin);
      expect(ok(res, 'managedKey').providerUsage.error).toBe(
        'GET /openrouter/api/v1/key answered 200 with a body that is not JSON',
      );
      const stored = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
      for (const leak of [OPENROUTER_KEY, OPENROUTER_KEY.slice(0, 10), 'Bearer']) {
        expect(res.raw).not.toContain(leak);
        expect(stored.providerError).not.toContain(leak);
        expect(server.logs.join('\n')).not.toContain(leak);
      }
    } finally {
      quoting = false;
    }
  });
});
