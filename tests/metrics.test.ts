// GET /metrics and the request logs, as an operator meets them: a scrape after grants, refusals, an
// expiry, proxied requests and a live subscription finds every family with the figures those left;
// who may scrape (roles, the metrics token, the listed addresses, never a forwarding header); the
// Grafana dashboard asks only for metrics the server has; and each GraphQL operation's log line
// names the operation, the caller's role and subject and its duration, and no secret.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../demo/fake-provider.js';
import { ConfigError, loadConfig, parseEnv } from '../server/config.js';
import { metricsAddressList, parseMetricsAddresses } from '../server/metrics/addresses.js';
import { createMetricsEndpoint } from '../server/metrics/endpoint.js';
import { boundedOperationNames } from '../server/metrics/graphql.js';
import { createMetrics } from '../server/metrics/metrics.js';
import { testSecrets } from './support/config.js';
import {
  callProvider,
  codeOf,
  completionStatus,
  createKey,
  newUser,
  ok,
  proxiedLease,
  Q,
  requestLease,
} from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';
import { collect, wsClient } from './support/ws.js';

const METRICS_TOKEN = 'metrics-scraper-secret-0123456789';
const PROVIDER_SECRET = 'sk-provider-secret-for-metrics-0123456789';

let server: TestServer;
let admin: string;
let worker: string;
let observer: string;
let upstream: FakeUpstream;

// No address may scrape without credentials here: the test's loopback peer is as remote as any.
withTestServer(
  { roles: 'm', config: { metricsToken: METRICS_TOKEN, metricsAddresses: [] } },
  (s) => ({ server, admin, worker, observer } = s),
);
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text as families (from `# TYPE`) and samples. */
function parseExposition(text: string) {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  /** The sum of the samples named `name` whose labels include `labels` (0 when there are none). */
  const value = (name: string, labels: Record<string, string> = {}) =>
    find(name, labels).reduce((n, s) => n + s.value, 0);
  return { families, samples, find, value };
}

/** A subscription once its stream runs on the server (it holds a listener on the event pump). */
async function subscribed(client: Client, query: string) {
  const listeners = server.app.pump.listenerCount();
  const live = collect(client, query);
  await expect.poll(() => server.app.pump.listenerCount()).toBeGreaterThan(listeners);
  return live;
}

const scrape = async (headers: Record<string, string> = { authorization: `Bearer ${METRICS_TOKEN}` }) => {
  const res = await fetch(`${server.url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
};

describe('a scrape after real traffic', () => {
  it('finds every family, with the figures the traffic left', async () => {
    // Grants (named operations, for the GraphQL family), and a refusal: no VENICE key exists.
    const { key, lease, token, baseUrl } = await proxiedLease(server, admin, worker, {
      baseUrl: upstream.url,
      apiKey: PROVIDER_SECRET,
    });
    const user = await newUser(server);
    const second = ok(
      await server.gql(
        'mutation RequestLease($input: RequestLeaseInput!) { requestLease(input: $input) { id } }',
        { input: { provider: 'OPENAI_COMPATIBLE', framework: 'GENERIC' } },
        user.token,
      ),
      'requestLease',
    );
    const refused = await server.gql(
      'mutation RequestLease($input: RequestLeaseInput!) { requestLease(input: $input) { id } }',
      { input: { provider: 'VENICE' } },
      (await newUser(server)).token,
    );
    expect(codeOf(refused)).toBe('NO_KEY_AVAILABLE');

    // A live subscription, held open over the scrape.
    const client = wsClient(server.url, observer);
    const live = await subscribed(client, 'subscription { leaseEvents { type lease { id } } }');

    // Proxied requests: three answered, one with a token that is no lease's.
    for (let i = 0; i < 3; i++) expect(await completionStatus(baseUrl, token)).toBe(200);
    const bad = await callProvider(baseUrl, 'not-a-lease-token', '/chat/completions', { model: 'fake-model' });
    await bad.text();
    expect(bad.status).toBe(401);

    // An expiry: the second lease's time is made to have passed 2 s ago, and the expiry job runs.
    await server.app.db.$executeRaw`
      UPDATE "Lease" SET "expiresAt" = now() - interval '2 seconds' WHERE id = ${second.id}::uuid`;
    expect(await server.app.expiry.runNow()).toBe(1);
    await live.waitFor(1);

    // A lease revoked: the proxy's admission refuses it, and resolveLease refuses it too.
    ok(await server.gql(Q.revoke, { id: lease.id }, admin), 'revokeLease');
    expect(await completionStatus(baseUrl, token)).toBe(403);
    expect(codeOf(await server.gql(Q.resolve, { leaseId: lease.id }, worker))).toBe('LEASE_NOT_ACTIVE');

    // The meter writes its batches within ~100 ms.
    await expect.poll(async () => (await scrape()).value('mpk_meter_batch_size_count')).toBeGreaterThanOrEqual(1);
    const m = await scrape();

    // Leases: a third one, ACTIVE, keeps the gauge above zero on the proxied key.
    expect(m.families.get('mpk_leases_active')).toBe('gauge');
    const active = await server.app.db.lease.count({ where: { status: 'ACTIVE', keyId: key.id } });
    expect(m.value('mpk_leases_active', { tier: 'FREE', key: key.id })).toBe(active);
    expect(m.value('mpk_lease_grants_total', { tier: 'FREE' })).toBe(2);
    expect(m.value('mpk_lease_refusals_total', { operation: 'requestLease', code: 'NO_KEY_AVAILABLE' })).toBe(1);
    expect(m.value('mpk_lease_refusals_total', { operation: 'resolveLease', code: 'LEASE_NOT_ACTIVE' })).toBe(1);
    expect(m.value('mpk_lease_expiries_total')).toBe(1);
    expect(m.value('mpk_lease_expiry_lateness_seconds_count')).toBe(1);
    const lateness = m.value('mpk_lease_expiry_lateness_seconds_sum');
    expect(lateness).toBeGreaterThanOrEqual(1.9);
    expect(lateness).toBeLessThan(30);

    // The proxy: by route and status, with upstream and added latency for the three forwarded.
    const route = '/chat/completions';
    expect(m.value('mpk_proxy_requests_total', { route, status: '200' })).toBe(3);
    expect(m.value('mpk_proxy_requests_total', { route, status: '401' })).toBe(1);
    expect(m.value('mpk_proxy_requests_total', { route, status: '403' })).toBe(1);
    expect(m.value('mpk_proxy_upstream_seconds_count', { route })).toBe(3);
    const upstreamSum = m.value('mpk_proxy_upstream_seconds_sum', { route });
    expect(upstreamSum).toBeGreaterThan(0);
    expect(upstreamSum).toBeLessThan(30);
    expect(m.value('mpk_proxy_added_seconds_count')).toBe(3);
    // MPK's own part is small next to the provider's (the first request reads the lease: ms, not s).
    expect(m.value('mpk_proxy_added_seconds_sum')).toBeLessThan(1);

    // Metering: three requests written, none left unwritten.
    expect(m.value('mpk_meter_batch_size_sum')).toBe(3);
    expect(m.value('mpk_meter_write_seconds_count', { outcome: 'ok' })).toBe(m.value('mpk_meter_batch_size_count'));
    expect(m.value('mpk_meter_unwritten_requests')).toBe(0);

    // Admission: the first request and the one after the revocation had to read; the latter was refused.
    expect(m.value('mpk_admission_refreshes_total', { mode: 'blocking' })).toBeGreaterThanOrEqual(2);
    expect(m.value('mpk_admission_refusals_total', { reason: 'LEASE_NOT_ACTIVE' })).toBe(1);

    // Events and the scheduler.
    expect(m.value('mpk_subscribers_connected', { kind: 'subscriptions' })).toBe(1);
    expect(m.value('mpk_subscribers_connected', { kind: 'connections' })).toBe(1);
    expect(m.value('mpk_event_log_read_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(m.value('mpk_event_log_read_lag_seconds_sum')).toBeLessThan(
      m.value('mpk_event_log_read_lag_seconds_count') * 5,
    );
    expect(m.value('mpk_scheduler_leader')).toBe(1);

    // GraphQL through Yoga's plugin: named operations by type, errors by code.
    expect(
      m.value('mpk_graphql_operation_duration_seconds_count', {
        operationName: 'RequestLease',
        operationType: 'mutation',
      }),
    ).toBe(2);
    expect(m.value('mpk_graphql_errors_total', { phase: 'execute', code: 'NO_KEY_AVAILABLE' })).toBe(1);

    // Node's own, with the same prefix.
    expect(m.value('mpk_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(m.value('mpk_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(m.families.has('mpk_nodejs_eventloop_lag_seconds')).toBe(true);

    // No label holds a lease id, a user id or a token: only keys' ids, on the one gauge that has them.
    const text = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    ).text();
    for (const secret of [lease.id, second.id, user.sub, token, PROVIDER_SECRET]) expect(text).not.toContain(secret);

    live.dispose();
    await client.dispose();
    await expect
      .poll(async () => (await scrape()).value('mpk_subscribers_connected', { kind: 'subscriptions' }))
      .toBe(0);
  });

  it('keeps the operation-name label bounded: names past the cap, or odd ones, count as `other`', () => {
    const label = boundedOperationNames(3);
    expect(['A', 'B', 'C', 'D', 'A'].map(label)).toEqual(['A', 'B', 'C', 'other', 'A']);
    expect(label(undefined)).toBe('anonymous');
    expect(boundedOperationNames()('x'.repeat(65))).toBe('other');
  });

  it('gives each app its own registry: two in one process count apart', () => {
    const [a, b] = [createMetrics(), createMetrics()];
    a.leaseRefused('requestLease', 'TIER_LIMIT_REACHED');
    expect(a.registry).not.toBe(b.registry);
    return Promise.all([a.render(), b.render()]).then(([textA, textB]) => {
      expect(parseExposition(textA).value('mpk_lease_refusals_total')).toBe(1);
      expect(parseExposition(textB).value('mpk_lease_refusals_total')).toBe(0);
    });
  });
});

describe('who may scrape', () => {
  const get = (headers: Record<string, string> = {}, url = server.url) => fetch(`${url}/metrics`, { headers });

  it('refuses an unauthenticated scrape from an address not listed, and a wrong metrics token', async () => {
    const anonymous = await get();
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await anonymous.text()).not.toContain('mpk_');
    expect((await get({ authorization: 'Bearer wrong-metrics-token-0123456789' })).status).toBe(401);
    // A forwarding header claiming loopback changes nothing: the peer is what counts.
    expect((await get({ 'x-forwarded-for': '127.0.0.1' })).status).toBe(401);
  });

  it('admits the metrics token and ADMIN or OBSERVER tokens; refuses USER and WORKER (403)', async () => {
    expect((await get({ authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
    expect((await get({ authorization: `Bearer ${admin}` })).status).toBe(200);
    expect((await get({ authorization: `Bearer ${observer}` })).status).toBe(200);
    expect((await get({ authorization: `Bearer ${worker}` })).status).toBe(403);
    expect((await get({ authorization: `Bearer ${(await newUser(server)).token}` })).status).toBe(403);
    const expired = await server.token('ADMIN', 'admin-m', {
      now: new Date(Date.now() - 3600_000),
      expiresInSeconds: 60,
    });
    expect((await get({ authorization: `Bearer ${expired}` })).status).toBe(401);
  });

  it('is a route of its own: not the dashboard, and GET or HEAD only', async () => {
    const head = await fetch(`${server.url}/metrics`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(head.status).toBe(200);
    const post = await fetch(`${server.url}/metrics`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(post.status).toBe(405);
    const under = await fetch(`${server.url}/metrics/extra`, { headers: { authorization: `Bearer ${admin}` } });
    expect(under.status).toBe(404);
    expect(under.headers.get('content-type')).toMatch(/json/);
  });

  it('by default, admits loopback peers without credentials, unless the request was forwarded', async () => {
    // The endpoint alone, on a loopback port, with the default address list.
    const endpoint = createMetricsEndpoint({
      metrics: createMetrics(),
      authenticator: { authenticate: async () => null },
      access: { token: undefined, addresses: parseMetricsAddresses(undefined) },
    });
    const plain = http.createServer((req, res) => void endpoint(req, res));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    try {
      const local = await get({}, url);
      expect(local.status).toBe(200);
      expect(await local.text()).toContain('mpk_process_cpu_user_seconds_total');
      // A reverse proxy on the same host sends its clients from loopback, with these headers.
      for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip'])
        expect((await get({ [header]: '203.0.113.9' }, url)).status).toBe(401);
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('reads MPK_METRICS_ADDRESSES: loopback by default, none, addresses and CIDR ranges; refuses junk', async () => {
    const loopback = metricsAddressList(parseMetricsAddresses(undefined));
    expect(loopback.check('127.0.0.1', 'ipv4')).toBe(true);
    expect(loopback.check('::1', 'ipv6')).toBe(true);
    expect(loopback.check('10.1.2.3', 'ipv4')).toBe(false);
    expect(parseMetricsAddresses('none')).toEqual([]);
    const ranges = metricsAddressList(parseMetricsAddresses('10.0.0.0/8, fd00::/8'));
    expect(ranges.check('10.1.2.3', 'ipv4')).toBe(true);
    expect(ranges.check('127.0.0.1', 'ipv4')).toBe(false);
    expect(ranges.check('fd00::5', 'ipv6')).toBe(true);
    expect(() => parseEnv({ MPK_METRICS_ADDRESSES: '10.0.0.0/33' })).toThrow(ConfigError);
    expect(() => parseEnv({ MPK_METRICS_ADDRESSES: 'example.com' })).toThrow(/MPK_METRICS_ADDRESSES/);
    expect(() => parseEnv({ MPK_METRICS_TOKEN: 'short' })).toThrow(/MPK_METRICS_TOKEN/);
    expect(parseEnv({ MPK_METRICS_TOKEN: METRICS_TOKEN }).MPK_METRICS_TOKEN).toBe(METRICS_TOKEN);
    const secrets = testSecrets();
    const env = { MPK_JWT_SECRET: secrets.jwtSecret, MPK_MASTER_KEYS: secrets.masterKeys };
    expect(await loadConfig({ ...env, MPK_METRICS_TOKEN: METRICS_TOKEN, MPK_METRICS_ADDRESSES: 'none' })).toMatchObject(
      {
        metricsToken: METRICS_TOKEN,
        metricsAddresses: [],
      },
    );
    expect(await loadConfig(env)).toMatchObject({ metricsToken: undefined, metricsAddresses: ['loopback'] });
  });
});

describe('the Grafana dashboard', () => {
  it('is valid JSON whose every query asks for metrics this server exposes', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../deploy/grafana/mpk.json', import.meta.url), 'utf8'));
    const exprs: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'expr' && typeof v === 'string') exprs.push(v);
          else walk(v);
        }
      }
    };
    walk(dashboard.panels);
    expect(exprs.length).toBeGreaterThanOrEqual(12);
    const { families } = await scrape();
    const referenced = new Set(exprs.flatMap((e) => e.match(/\bmpk_\w+/g) ?? []));
    const missing = [...referenced].filter((name) => {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      return !families.has(name) && !(families.get(family) === 'histogram' && family !== name);
    });
    expect(missing, 'metrics the dashboard asks for that /metrics does not have').toEqual([]);
    // Every MPK family (not Node's) is on the dashboard.
    const ours = [...families.keys()].filter((f) => f.startsWith('mpk_') && !/^mpk_(process|nodejs)_/.test(f));
    const shown = new Set([...referenced].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(
      ours.filter((f) => !shown.has(f)),
      'families the dashboard does not show',
    ).toEqual([]);
  });
});

describe('request logs', () => {
  it("name each GraphQL operation, the caller's role and subject, and its duration, and hold no secret", async () => {
    const user = await newUser(server, { prefix: 'logged' });
    const before = server.logs.length;
    await server.gql('query WhoAmI { me { id } }', {}, user.token);
    ok(await server.gql(Q.policies, {}, admin), 'tierPolicies');
    const client = wsClient(server.url, observer);
    const live = await subscribed(client, 'subscription Watch { leaseEvents { type } }');
    await createKey(server, admin, { provider: 'VENICE', label: 'logged' });
    await requestLease(server, (await newUser(server)).token, { provider: 'VENICE' });
    await live.waitFor(1);
    live.dispose();
    await client.dispose();
    await expect.poll(() => server.logs.slice(before).some((l) => l.includes('graphql subscription ended'))).toBe(true);

    const lines = server.logs.slice(before).map((l) => JSON.parse(l));
    const ops = lines.filter((l) => l.msg === 'graphql operation');
    expect(ops.find((l) => l.operation === 'WhoAmI')).toMatchObject({
      type: 'query',
      role: 'USER',
      subject: user.sub,
      transport: 'http',
      requestId: expect.any(String),
      ms: expect.any(Number),
    });
    expect(ops.find((l) => l.operation === 'anonymous' && l.role === 'ADMIN')).toMatchObject({ subject: 'admin-m' });
    const started = lines.find((l) => l.msg === 'graphql subscription started');
    expect(started).toMatchObject({
      operation: 'Watch',
      type: 'subscription',
      role: 'OBSERVER',
      transport: 'websocket',
    });
    expect(lines.find((l) => l.msg === 'graphql subscription ended')).toMatchObject({
      operation: 'Watch',
      subject: 'observer-m',
      ms: expect.any(Number),
    });
    // Not a token (the callers' JWTs, the metrics token), nor a provider key, anywhere in the log.
    const all = server.logs.join('\n');
    for (const secret of [user.token, admin, observer, worker, METRICS_TOKEN, PROVIDER_SECRET])
      expect(all).not.toContain(secret);
  });
});
