// Lease expiry driven by an injected clock: one lease, a batch larger than one statement, leases
// extended just before their time, and two sweeps racing.
import { beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../tests/support/clock.js';
import { createKey, disableKeys, leaseForNewUser, ok, Q, reportUsage } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

const clock = createManualClock('2026-07-01T00:00:00.000Z');
let server: TestServer;
let admin: string;
let worker: string;

const grant = (agentId?: string) => leaseForNewUser(server, { agentId });

withTestServer({ clock, roles: 'x' }, (s) => ({ server, admin, worker } = s));
beforeEach(async () => {
  await disableKeys(server);
  await createKey(server, admin);
});

describe('expiry', () => {
  it('expires a lease once its time has come, not before, and frees its slot', async () => {
    const lease = await grant('solo');
    clock.set(new Date(new Date(lease.expiresAt).getTime() - 1));
    expect(await server.app.expiry.expireAll()).toBe(0);
    clock.advance(1);
    expect(await server.app.expiry.expireAll()).toBe(1);
    const after = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(after).toMatchObject({ status: 'EXPIRED', endReason: 'expired' });
    expect(after.endedAt?.toISOString()).toBe(clock.now().toISOString());
    const event = await server.app.db.leaseEvent.findFirstOrThrow({ where: { leaseId: lease.id, type: 'EXPIRED' } });
    expect(event).toMatchObject({ stopAgent: true, agentId: 'solo' });
    expect(await server.app.db.auditEntry.count({ where: { targetId: lease.id, action: 'lease.expired' } })).toBe(1);
    const key = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: after.keyId } });
    expect(key.activeLeaseCount).toBe(0);
  });

  it('expires a suspended lease once it is due: it cannot come back after its expiry', async () => {
    const lease = await grant('capped');
    ok(
      await reportUsage(server, worker, { leaseId: lease.id, requestId: 'r1', costUsd: lease.spendCapUsd }),
      'reportUsage',
    );
    expect((await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('SUSPENDED');
    clock.set(lease.expiresAt);
    expect(await server.app.expiry.expireAll()).toBe(1);
    const after = await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } });
    expect(after).toMatchObject({ status: 'EXPIRED', endReason: 'expired' });
    const event = await server.app.db.leaseEvent.findFirstOrThrow({ where: { leaseId: lease.id, type: 'EXPIRED' } });
    expect(event.details).toMatchObject({ from: 'SUSPENDED' });
    // Its slot was freed when it was suspended: nothing is freed twice.
    const key = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: after.keyId } });
    expect(key.activeLeaseCount).toBe(0);
  });

  it('expires a batch larger than one statement (2,500 leases in batches of 1,000)', async () => {
    const key = await server.app.db.managedKey.findFirstOrThrow({ where: { status: 'ACTIVE' } });
    const now = clock.now();
    // Set up directly: 2,500 due leases of 2,500 users, with counters to match.
    await server.app.db.$executeRaw`
      INSERT INTO "User" (id, "activeLeaseCount", "updatedAt")
      SELECT 'bulk-' || g, 1, ${now}
      FROM generate_series(1, 2500) g`;
    await server.app.db.$executeRaw`
      INSERT INTO "Lease" (id, "userId", "keyId", tier, provider, framework, "grantedAt", "expiresAt", "spendCapUsd",
                           "updatedAt")
      SELECT gen_random_uuid(), 'bulk-' || g, ${key.id}::uuid, 'FREE', 'OPENROUTER', 'OPENCLAW', ${now},
             ${new Date(now.getTime() - 1000)}, 5, ${now}
      FROM generate_series(1, 2500) g`;
    await server.app.db.managedKey.update({ where: { id: key.id }, data: { activeLeaseCount: 2500 } });
    expect(await server.app.expiry.expireAll()).toBe(2500);
    expect(await server.app.db.lease.count({ where: { userId: { startsWith: 'bulk-' }, status: 'ACTIVE' } })).toBe(0);
    expect((await server.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } })).activeLeaseCount).toBe(0);
    expect(
      await server.app.db.user.count({ where: { id: { startsWith: 'bulk-' }, activeLeaseCount: { not: 0 } } }),
    ).toBe(0);
    expect(await server.app.db.leaseEvent.count({ where: { userId: { startsWith: 'bulk-' }, type: 'EXPIRED' } })).toBe(
      2500,
    );
  });

  it('leaves a lease extended just before its time alone', async () => {
    const lease = await grant();
    clock.set(new Date(new Date(lease.expiresAt).getTime() - 500));
    ok(await server.gql(Q.extend, { id: lease.id, by: 60 }, admin), 'extendLease');
    clock.advance(1000);
    expect(await server.app.expiry.expireAll()).toBe(0);
    expect((await server.app.db.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('ACTIVE');
    clock.advance(60_000);
    expect(await server.app.expiry.expireAll()).toBe(1);
  });

  it('is idempotent when two sweeps race: each lease expires once', async () => {
    const leases = [];
    for (let i = 0; i < 20; i++) leases.push(await grant());
    clock.advance(3 * 86400_000);
    const [a, b] = await Promise.all([
      server.app.expiry.expireAll(),
      server.app.services.leases.expireDueBatch(1000).then((b) => b.events.length),
    ]);
    expect(a + b).toBe(20);
    for (const lease of leases) {
      expect(await server.app.db.leaseEvent.count({ where: { leaseId: lease.id, type: 'EXPIRED' } })).toBe(1);
    }
    expect(await server.app.expiry.expireAll()).toBe(0);
  });
});
