// The admin CLI (`npm run mpk -- ...`) run as an operator runs it: a child process talking GraphQL
// to a real server, with the token from MPK_TOKEN or --token, printing tables or JSON.
import { spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerSecret, Q, requestLease } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

const root = path.resolve(import.meta.dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run mpk -- ...args` (as `node --import tsx server/cli/mpk.ts`), with only `env` and PATH set. */
function mpk(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli/mpk.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer();
  env = { MPK_URL: server.url, MPK_TOKEN: await server.token('ADMIN', 'ops-admin') };
});
afterAll(() => server?.close());

const noStack = (run: Run) => expect(`${run.stdout}${run.stderr}`).not.toMatch(/^\s+at /m);

describe('mpk admin CLI', () => {
  it('answers --help, and refuses bad usage with exit 2 and no stack trace', async () => {
    const help = await mpk(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/keys list/);
    expect(help.stdout).toMatch(/users set-tier/);
    const commandHelp = await mpk(['leases', 'extend', '--help']);
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.stdout).toMatch(/--by <seconds>/);

    for (const args of [['keys', 'frobnicate'], ['keys', 'list', '--bogus'], ['leases', 'extend', 'some-id'], []]) {
      const bad = await mpk(args, env);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(/usage: npm run mpk/);
      noStack(bad);
    }
    const tokenless = await mpk(['keys', 'list'], { MPK_URL: server.url });
    expect(tokenless.code).toBe(2);
    expect(tokenless.stderr).toMatch(/No token/);
  });

  it('creates, lists and disables keys, as a table or JSON, never printing the secret', async () => {
    const secret = providerSecret('cli');
    // The key from stdin keeps it out of the process list and shell history.
    const created = await mpk(
      ['keys', 'create', '--provider', 'openrouter', '--label', 'cli pool', '--api-key', '-', '--daily-limit', '5'],
      env,
      `${secret}\n`,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^label\s+cli pool$/m);
    expect(created.stdout).toMatch(/^dailyLimitUsd\s+5(\.0+)?$/m);
    expect(created.stdout).not.toContain(secret);
    const id = /^id\s+(\S+)$/m.exec(created.stdout)![1]!;

    const listed = await mpk(['keys', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    const keys = JSON.parse(listed.stdout) as { id: string; label: string; status: string; maskedKey: string }[];
    expect(keys.find((k) => k.id === id)).toMatchObject({ label: 'cli pool', status: 'ACTIVE' });
    expect(listed.stdout).not.toContain(secret);

    const table = await mpk(['keys', 'list', '--status', 'active'], env);
    const [header, ...rows] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^id\s+label\s+provider\s+status\s+maskedKey/);
    expect(rows.some((r) => r.startsWith(id) && /\bcli pool\b.*\bOPENROUTER\b.*\bACTIVE\b/.test(r))).toBe(true);

    const disabled = await mpk(
      ['keys', 'disable', id, '--reason', 'rotated out', '--json', '--token', env.MPK_TOKEN!],
      {
        MPK_URL: server.url,
      },
    );
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(JSON.parse(disabled.stdout)).toMatchObject({ id, status: 'DISABLED', disabledReason: 'rotated out' });
    const after = await server.gql(Q.key, { id }, env.MPK_TOKEN);
    expect(after.data.managedKey.status).toBe('DISABLED');
  });

  it('lists, extends and revokes leases, and sets a user tier', async () => {
    const admin = env.MPK_TOKEN!;
    const key = await server.gql(
      Q.createKey,
      { input: { provider: 'VENICE', label: 'lease pool', apiKey: providerSecret('v') } },
      admin,
    );
    expect(key.errors).toBeUndefined();
    const sub = `cli-user-${Date.now()}`;
    const lease = await requestLease(server, await server.token('USER', sub), { provider: 'VENICE' });

    const listed = await mpk(['leases', 'list', '--user', sub, '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ id: lease.id, status: 'ACTIVE', userId: sub, keyId: key.data.createManagedKey.id }),
    ]);

    const extended = await mpk(['leases', 'extend', lease.id, '--by', '600', '--json'], env);
    expect(extended.code, extended.stderr).toBe(0);
    const expiresAt = Date.parse(JSON.parse(extended.stdout).expiresAt);
    expect(expiresAt - Date.parse(lease.expiresAt)).toBe(600_000);

    const revoked = await mpk(['leases', 'revoke', lease.id, '--reason', 'operator'], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/^status\s+REVOKED$/m);
    expect(revoked.stdout).toMatch(/^endReason\s+operator$/m);

    const tier = await mpk(['users', 'set-tier', sub, 'pro', '--json'], env);
    expect(tier.code, tier.stderr).toBe(0);
    expect(JSON.parse(tier.stdout)).toMatchObject({ id: sub, tier: 'PRO' });
    expect((await server.gql(Q.me, {}, await server.token('USER', sub))).data.me.tier).toBe('PRO');
  });

  it("shows the server's error codes, exit 1, and says when the server cannot be reached", async () => {
    const asUser = await mpk(['keys', 'list'], { ...env, MPK_TOKEN: await server.token('USER', 'not-admin') });
    expect(asUser.code).toBe(1);
    expect(asUser.stderr).toMatch(/^FORBIDDEN: /m);
    noStack(asUser);

    const missing = await mpk(['leases', 'revoke', 'no-such-lease'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^NOT_FOUND: /m);

    const badToken = await mpk(['keys', 'list'], { ...env, MPK_TOKEN: 'not-a-jwt' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/^UNAUTHENTICATED: /m);

    // A port that was free a moment ago: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const down = await mpk(['keys', 'list', '--url', `http://127.0.0.1:${port}`], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`Cannot reach http://127.0.0.1:${port}/graphql: ECONNREFUSED`);
    noStack(down);
  });
});
