// Two real server processes on one PostgreSQL and one Redis: events cross instances, exactly one
// instance runs the scheduler, and when it is killed (-9) the other takes over.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../server/auth/authenticator.js';
import { createDb, type Db } from '../server/db/client.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { startFakeUpstream } from '../demo/fake-provider.js';
import { collect, settle, wsClient } from './support/ws.js';

const root = path.resolve(import.meta.dirname, '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const jwtSecret = randomBytes(32).toString('base64url');
const masterKeys = `m1:${randomBytes(32).toString('base64')}`;

interface Instance {
  name: string;
  child: ChildProcess;
  url: string;
  output: () => string;
}

let database: TestDatabase;
let db: Db;
let dataDir: string;
const instances: Instance[] = [];

function start(name: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '5',
      REDIS_URL,
      MPK_JWT_SECRET: jwtSecret,
      MPK_MASTER_KEYS: masterKeys,
      MPK_DATA_DIR: path.join(dataDir, name),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output}`)), 30_000);
    let started = false;
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /"url":"(http:\/\/[^"]+)\/graphql"/.exec(output);
      if (match && !started) {
        started = true;
        clearTimeout(timer);
        const instance = { name, child, url: match[1]!, output: () => output };
        instances.push(instance);
        resolve(instance);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
}

const role = async (i: Instance) => ((await (await fetch(`${i.url}/healthz`)).json()) as { scheduler: string }).scheduler;
const token = (r: 'ADMIN' | 'USER' | 'WORKER', sub: string) => mintToken({ secret: jwtSecret, sub, role: r });
async function gql(i: Instance, query: string, variables: object, bearer: string) {
  const res = await fetch(`${i.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as any;
  expect(body.errors).toBeUndefined();
  return body.data;
}
const grant = async (i: Instance, sub: string) =>
  (await gql(i, `mutation { requestLease(input: {}) { id } }`, {}, await token('USER', sub))).requestLease.id as string;

async function until(check: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await settle(100);
  }
  return Date.now() - started;
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('two instances', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb(database.url, { maxConnections: 2 });
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-multi-'));
    await start('a');
    await start('b');
    const admin = await token('ADMIN', 'multi-admin');
    await gql(instances[0]!, `mutation { createManagedKey(input: { provider: OPENROUTER, label: "shared", apiKey: "sk-or-v1-multi-instance-0001" }) { id } }`, {}, admin);
  });
  afterAll(async () => {
    for (const i of instances) if (i.child.exitCode === null) i.child.kill('SIGKILL');
    await db?.$disconnect();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('a grant on one instance is heard by a subscriber on the other', async () => {
    const [a, b] = instances as [Instance, Instance];
    const c = wsClient(b.url, await token('ADMIN', 'multi-admin'));
    const stream = collect(c, `subscription { leaseEvents(types: [GRANTED]) { leaseId type } }`);
    await settle(300);
    const id = await grant(a, 'cross-user');
    const [event] = await stream.waitFor(1, 5000);
    expect(event.leaseEvents).toEqual({ leaseId: id, type: 'GRANTED' });
    stream.dispose();
    await c.dispose();
  });

  it("a lease revoked on one instance stops the other's proxy within a second; spend recorded there is enforced here", async () => {
    const [a, b] = instances as [Instance, Instance];
    const upstream = await startFakeUpstream();
    try {
      const admin = await token('ADMIN', 'multi-admin');
      await gql(a, `mutation($i: CreateManagedKeyInput!) { createManagedKey(input: $i) { id } }`,
        { i: { provider: 'OPENAI_COMPATIBLE', label: 'proxied', apiKey: 'sk-multi-proxied-0001', baseUrl: upstream.url, defaultModel: 'fake-model', dailyLimitUsd: '1' } }, admin);
      const worker = await token('WORKER', 'multi-worker');
      const lease = async () => {
        const { requestLease } = await gql(a, `mutation { requestLease(input: { provider: OPENAI_COMPATIBLE }) { id } }`, {}, await token('USER', `proxy-${randomBytes(4).toString('hex')}`));
        const { resolveLease } = await gql(a, `query($id: ID) { resolveLease(leaseId: $id) { apiKey } }`, { id: requestLease.id }, worker);
        return { id: requestLease.id as string, token: resolveLease.apiKey as string };
      };
      // Through B, whatever instance resolved the lease.
      const complete = async (bearer: string) => {
        const res = await fetch(`${b.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'fake-model', messages: [] }),
        });
        await res.text();
        return res.status;
      };

      const revoked = await lease();
      expect(await complete(revoked.token)).toBe(200);
      await gql(a, `mutation($id: ID!) { revokeLease(id: $id) { id } }`, { id: revoked.id }, admin);
      const revokedAfter = await until(async () => (await complete(revoked.token)) === 403, 5000);
      expect(revokedAfter).toBeLessThan(1000);

      const spent = await lease();
      expect(await complete(spent.token)).toBe(200);
      await gql(a, `mutation($i: ReportUsageInput!) { reportUsage(input: $i) { duplicate } }`, { i: { leaseId: spent.id, requestId: 'on-a', costUsd: '1' } }, worker);
      const refusedAfter = await until(async () => (await complete(spent.token)) === 402, 5000);
      expect(refusedAfter).toBeLessThan(1000);
    } finally {
      await upstream.close();
    }
  });

  it('exactly one instance runs the scheduler, and only it expires leases', async () => {
    const roles = await Promise.all(instances.map(role));
    expect(roles.sort()).toEqual(['leader', 'standby']);
    const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => grant(instances[i % 2]!, `due-user-${i}`)));
    await db.lease.updateMany({ where: { id: { in: ids } }, data: { expiresAt: new Date(Date.now() + 500) } });
    await until(async () => (await db.lease.count({ where: { id: { in: ids }, status: 'EXPIRED' } })) === 5, 10_000);
    const byLeader = (await Promise.all(instances.map(role))).indexOf('leader');
    expect(instances[byLeader]!.output()).toMatch(/"expired":\d+/);
    expect(instances[1 - byLeader]!.output()).not.toMatch(/"expired":\d+/);
  });

  it('when the leader is killed (-9), the other expires leases due afterwards within 10 s', async () => {
    const roles = await Promise.all(instances.map(role));
    const leader = instances[roles.indexOf('leader')]!;
    const survivor = instances[roles.indexOf('standby')]!;
    leader.child.kill('SIGKILL');
    await new Promise((r) => leader.child.once('exit', r));
    const ids = await Promise.all(Array.from({ length: 3 }, (_, i) => grant(survivor, `after-kill-${i}`)));
    const due = Date.now() + 500;
    await db.lease.updateMany({ where: { id: { in: ids } }, data: { expiresAt: new Date(due) } });
    await until(async () => (await db.lease.count({ where: { id: { in: ids }, status: 'EXPIRED' } })) === 3, 10_000);
    expect(Date.now() - due).toBeLessThan(10_000);
    expect(await role(survivor)).toBe('leader');
  });
});
