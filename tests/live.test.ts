// Live streams over real WebSockets: replay-then-live across a disconnect, authorization per role,
// the no-gap guarantee against a transaction committing late, keyUsage throttling, SSE, and the
// close code on shutdown.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl } from './support/db.js';
import { createKey, newUser, ok, Q, requestLease } from './support/fixtures.js';
import { startTestServer, type TestServer, withTestServer } from './support/server.js';
import { collect, settle, wsClient } from './support/ws.js';

const EVENTS = `subscription($after: String, $keyId: ID, $userId: ID, $types: [LeaseEventType!]) {
  leaseEvents(after: $after, keyId: $keyId, userId: $userId, types: $types) {
    cursor type leaseId userId keyId agentId stopAgent lease { id status } } }`;
const USAGE = `subscription($keyId: ID) {
  keyUsage(keyId: $keyId) { activeLeaseCount spendTodayUsd spendThisMonthUsd key { id } } }`;

let server: TestServer;
let admin: string;
let keyId: string;
const clients: { dispose(): Promise<void> | void }[] = [];

const user = () => newUser(server, { prefix: 'live' });
const grant = (token: string, agentId?: string) => requestLease(server, token, { agentId });
const client = (token: string | null, onClose?: (e: { code: number }) => void) => {
  const c = wsClient(server.url, token, onClose);
  clients.push(c);
  return c;
};

withTestServer({ roles: 'live' }, (s) => ({ server, admin } = s));
beforeAll(async () => {
  keyId = (await createKey(server, admin)).id;
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
});

describe('leaseEvents', () => {
  it('replays from a cursor then continues live: nothing missed, nothing twice, in order', async () => {
    const a = await user();
    const first = collect(client(admin), EVENTS, { userId: a.sub });
    await settle();
    const lease = await grant(a.token, 'replay-agent');
    const [granted] = await first.waitFor(1);
    expect(granted.leaseEvents).toMatchObject({
      type: 'GRANTED',
      leaseId: lease.id,
      userId: a.sub,
      agentId: 'replay-agent',
      stopAgent: false,
      lease: { status: 'ACTIVE' },
    });
    first.dispose();

    // While disconnected: three more events.
    ok(await server.gql(Q.release, { id: lease.id }, a.token), 'releaseLease');
    const second = await grant(a.token);
    ok(await server.gql(Q.revoke, { id: second.id, reason: 'test' }, admin), 'revokeLease');

    const resumed = collect(client(admin), EVENTS, { userId: a.sub, after: granted.leaseEvents.cursor });
    const replayed = await resumed.waitFor(3);
    expect(replayed.map((e) => [e.leaseEvents.type, e.leaseEvents.leaseId, e.leaseEvents.stopAgent])).toEqual([
      ['RELEASED', lease.id, true],
      ['GRANTED', second.id, false],
      ['REVOKED', second.id, true],
    ]);
    const third = await grant(a.token);
    await resumed.waitFor(4);
    await settle();
    expect(resumed.items.map((e) => e.leaseEvents.leaseId)).toEqual([lease.id, second.id, second.id, third.id]);
    expect(new Set(resumed.items.map((e) => e.leaseEvents.cursor)).size).toBe(4);
    resumed.dispose();
  });

  it('a user hears only their own leases; admins, observers and workers hear all', async () => {
    const a = await user();
    const b = await user();
    const mine = collect(client(a.token), EVENTS);
    const observer = collect(client(await server.token('OBSERVER', 'obs-live')), EVENTS, { types: ['GRANTED'] });
    const worker = collect(client(await server.token('WORKER', 'worker-live')), EVENTS, { keyId });
    await settle();
    const theirs = await grant(b.token);
    const own = await grant(a.token);
    await mine.waitFor(1);
    await observer.waitFor(2);
    await worker.waitFor(2);
    await settle();
    expect(mine.items.map((e) => e.leaseEvents.leaseId)).toEqual([own.id]);
    expect(observer.items.map((e) => e.leaseEvents.leaseId)).toEqual([theirs.id, own.id]);
    expect(worker.items.map((e) => e.leaseEvents.leaseId)).toEqual([theirs.id, own.id]);
    for (const c of [mine, observer, worker]) c.dispose();
  });

  it('refuses a user asking for someone else, an anonymous caller, and a bad token', async () => {
    const a = await user();
    const sneaky = collect(client(a.token), EVENTS, { userId: 'someone-else' });
    const anonymous = collect(client(null), EVENTS);
    await settle(500);
    expect(JSON.stringify(sneaky.errors)).toContain('BAD_USER_INPUT');
    expect(JSON.stringify(anonymous.errors)).toContain('UNAUTHENTICATED');
    let closed: number | undefined;
    const bad = collect(
      client('not-a-token', (e) => (closed = e.code)),
      EVENTS,
    );
    await settle(500);
    expect(closed).toBe(4403);
    expect(bad.items).toEqual([]);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    'holds back a later event until an older transaction commits, then delivers both in order',
    async () => {
      const a = await user();
      const b = await user();
      const lease = await grant(a.token);
      const stream = collect(client(admin), EVENTS, { keyId, types: ['EXTENDED', 'GRANTED'] });
      await settle();
      // A live subscription starts where this instance's log reader is, which may be just before
      // a's grant: that event may arrive, and is not what this test is about.
      const relevant = () =>
        stream.items.filter((e) => !(e.leaseEvents.type === 'GRANTED' && e.leaseEvents.leaseId === lease.id));
      const other = new pg.Client({ connectionString: server.database.url });
      await other.connect();
      try {
        // An older transaction writes an event and stays open...
        await other.query('BEGIN');
        await other.query(
          `INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "stopAgent")
           VALUES ('EXTENDED', now(), $1, $2, $3, false)`,
          [lease.id, a.sub, keyId],
        );
        // ...while a newer one, another user's grant, commits.
        const later = await grant(b.token);
        await settle(400);
        expect(relevant()).toEqual([]);
        await other.query('COMMIT');
        const started = Date.now();
        while (relevant().length < 2 && Date.now() - started < 10_000) await settle(20);
        expect(relevant().map((e) => [e.leaseEvents.type, e.leaseEvents.leaseId])).toEqual([
          ['EXTENDED', lease.id],
          ['GRANTED', later.id],
        ]);
      } finally {
        await other.end();
        stream.dispose();
      }
    },
  );

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    'a long transaction in another database on the same server does not hold delivery back',
    async () => {
      const a = await user();
      const stream = collect(client(admin), EVENTS, { keyId, types: ['GRANTED'] });
      await settle();
      const other = new pg.Client({ connectionString: databaseUrl(server.database.url) });
      await other.connect();
      try {
        // A write transaction (it holds a transaction id) open in another database: the server's
        // oldest running transaction until it ends, and it never writes to this log.
        await other.query('BEGIN');
        await other.query('SELECT pg_current_xact_id()');
        const later = await grant(a.token);
        const started = Date.now();
        while (!stream.items.some((e) => e.leaseEvents.leaseId === later.id) && Date.now() - started < 5000)
          await settle(20);
        expect(stream.items.map((e) => e.leaseEvents.leaseId)).toContain(later.id);
      } finally {
        await other.query('ROLLBACK').catch(() => {});
        await other.end();
        stream.dispose();
      }
    },
  );
});

describe('keyUsage', () => {
  it('sends the current state, then changes, at most 4 a second per key', async () => {
    const feed = collect(client(admin), USAGE, { keyId });
    const [initial] = await feed.waitFor(1);
    const base = initial.keyUsage.activeLeaseCount;
    expect(initial.keyUsage.key.id).toBe(keyId);
    const started = Date.now();
    const users = await Promise.all(Array.from({ length: 15 }, () => user()));
    for (const u of users) await grant(u.token);
    await settle(700);
    const elapsed = Date.now() - started;
    const updates = feed.items.slice(1);
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    expect(updates.at(-1).keyUsage.activeLeaseCount).toBe(base + 15);
    feed.dispose();
  });

  it('is for admins and observers', async () => {
    const a = await user();
    const refused = collect(client(a.token), USAGE, { keyId });
    const missing = collect(client(admin), USAGE, { keyId: randomUUID() });
    await settle(400);
    expect(JSON.stringify(refused.errors)).toContain('FORBIDDEN');
    expect(JSON.stringify(missing.errors)).toContain('NOT_FOUND');
  });
});

describe('server-sent events', () => {
  it('streams leaseEvents over HTTP too', async () => {
    const a = await user();
    const controller = new AbortController();
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${a.token}` },
      body: JSON.stringify({ query: EVENTS }),
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    await settle();
    const lease = await grant(a.token);
    let text = '';
    while (!text.includes(lease.id)) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('"type":"GRANTED"');
    controller.abort();
  });
});

describe('graceful stop', () => {
  it('closes subscriptions with 1001 and stops', async () => {
    const own = await startTestServer();
    let code: number | undefined;
    const c = wsClient(own.url, await own.token('ADMIN', 'stopper'), (e) => (code = e.code));
    const sub = collect(c, EVENTS);
    await settle();
    await own.close();
    await settle(200);
    expect(code).toBe(1001);
    expect((sub.errors[0] as { code?: number }).code).toBe(1001);
    await c.dispose();
  });
});
