// An agent id is one user's name for their agent: two users may both run `agent-A`. Requesting
// and resolving by agent id never reach another user's lease.
import { describe, expect, it } from 'vitest';
import { codeOf, createKey, newUser, ok, Q, requestLease } from '../../tests/support/fixtures.js';
import { type TestServer, withTestServer } from '../../tests/support/server.js';

let server: TestServer;
let admin: string;
let worker: string;

withTestServer({ roles: 'scope' }, (s) => ({ server, admin, worker } = s));

describe('agentId is scoped to its user', () => {
  it("user B's agent-A is not user A's: requests, resolutions and refusals never cross", async () => {
    await createKey(server, admin, { maxActiveLeases: 10 });
    const a = await newUser(server, { prefix: 'owner-a' });
    const b = await newUser(server, { prefix: 'owner-b' });
    const leaseA = await requestLease(server, a.token, { agentId: 'agent-A' });
    // B asking for the same agent id gets a lease of B's own, not A's.
    const leaseB = await requestLease(server, b.token, { agentId: 'agent-A' });
    expect(leaseB.id).not.toBe(leaseA.id);
    expect(leaseB.user.id).toBe(b.sub);
    // Asking again is idempotent per user.
    expect((await requestLease(server, a.token, { agentId: 'agent-A' })).id).toBe(leaseA.id);

    const resolve = (variables: Record<string, unknown>) => server.gql(Q.resolve, variables, worker);
    expect(ok(await resolve({ agentId: 'agent-A', userId: a.sub }), 'resolveLease').lease.id).toBe(leaseA.id);
    expect(ok(await resolve({ agentId: 'agent-A', userId: b.sub }), 'resolveLease').lease.id).toBe(leaseB.id);

    // Without its user an agent id names no lease: the worker is told to say whose.
    const bare = await resolve({ agentId: 'agent-A' });
    expect(bare.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'userId' });
    expect(bare.data).toBeNull();

    // Once A's lease ends, resolving A's agent answers for A's lease (ended), never for B's.
    ok(await server.gql(Q.release, { id: leaseA.id }, a.token), 'releaseLease');
    expect(codeOf(await resolve({ agentId: 'agent-A', userId: a.sub }))).toBe('LEASE_NOT_ACTIVE');
    expect(ok(await resolve({ agentId: 'agent-A', userId: b.sub }), 'resolveLease').lease.id).toBe(leaseB.id);

    // A user id given with a lease id must be the lease's.
    expect(codeOf(await resolve({ leaseId: leaseB.id, userId: a.sub }))).toBe('NOT_FOUND');
    expect(ok(await resolve({ leaseId: leaseB.id, userId: b.sub }), 'resolveLease').lease.id).toBe(leaseB.id);
    // An agent of a user who has none by that name.
    const c = await newUser(server, { prefix: 'owner-c' });
    expect(codeOf(await resolve({ agentId: 'agent-A', userId: c.sub }))).toBe('NOT_FOUND');
  });
});
