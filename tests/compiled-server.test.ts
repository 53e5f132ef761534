// The server as the production image runs it (no Docker engine here): `npm run build:server`
// compiles it into a folder laid out like the image's /app (package.json, prisma/, web/dist,
// dist/server), and `node dist/server/main.js` runs there with no TypeScript loader. A SIGTERM
// to that process (what `docker stop` sends node as PID 1) must run the graceful stop.
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, symlink } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../demo/fake-provider.js';
import { tempDir } from './support/config.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { callProvider, leaseOnNewKey } from './support/fixtures.js';
import { killServers, startServerProcess } from './support/process.js';
import { collect, settle, wsClient } from './support/ws.js';

const root = path.resolve(import.meta.dirname, '..');
let app: { path: string; remove(): Promise<void> };
let database: TestDatabase;
let upstream: FakeUpstream;

const run = (command: string, args: string[]) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.once('close', (code) => resolve({ code, output }));
  });

beforeAll(async () => {
  app = await tempDir('mpk-image-');
  const out = path.join(app.path, 'dist/server');
  // The script itself, with its output moved here (esbuild takes the last --outdir).
  const built = await run('npm', ['run', '-s', 'build:server', '--', `--outdir=${out}`, `--metafile=${out}/meta.json`]);
  expect(built.code, built.output).toBe(0);
  // The image's other files: package.json (ES modules; where prisma/ is found), the migrations
  // and SQL, the dashboard, and node_modules (here the checkout's: see the first test).
  await cp(path.join(root, 'package.json'), path.join(app.path, 'package.json'));
  await cp(path.join(root, 'prisma'), path.join(app.path, 'prisma'), { recursive: true });
  await mkdir(path.join(app.path, 'web'));
  await symlink(path.join(root, 'web/dist'), path.join(app.path, 'web/dist'));
  await symlink(path.join(root, 'node_modules'), path.join(app.path, 'node_modules'));
  database = await createTestDatabase();
  upstream = await startFakeUpstream();
}, 120_000);

afterAll(async () => {
  await killServers();
  await upstream?.close();
  await database?.drop();
  await app?.remove();
});

describe('the compiled server', () => {
  it('needs nothing at run time but production dependencies and Node built-ins', async () => {
    const meta = JSON.parse(await readFile(path.join(app.path, 'dist/server/meta.json'), 'utf8')) as {
      outputs: Record<string, { imports: { path: string; external?: boolean }[] }>;
    };
    const { dependencies } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
    const packages = new Set<string>();
    for (const output of Object.values(meta.outputs)) {
      for (const imported of output.imports) {
        if (!imported.external) continue;
        if (imported.path.startsWith('node:') || builtinModules.includes(imported.path)) continue;
        const parts = imported.path.split('/');
        packages.add(imported.path.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
      }
    }
    expect(packages.size).toBeGreaterThan(10);
    // The image installs `npm ci --omit=dev`: a dev dependency imported here would crash it.
    expect([...packages].filter((name) => !(name in dependencies))).toEqual([]);
    // Our own code is all inside: the generated Prisma client and every server module.
    const inputs = Object.keys(JSON.parse(await readFile(path.join(app.path, 'dist/server/meta.json'), 'utf8')).inputs);
    expect(inputs.some((input) => input.endsWith('server/db/generated/client.ts'))).toBe(true);
    expect(inputs).toContain('server/app.ts');
  });

  it('runs with `node dist/server/main.js`, and on SIGTERM closes subscriptions with 1001, finishes and meters an in-flight request, and exits 0', async () => {
    const server = await startServerProcess(
      { DATABASE_URL: database.url, NODE_ENV: 'production' },
      { entry: ['dist/server/main.js'], cwd: app.path, timeoutMs: 60_000 },
    );
    // Ready, and it compared the database with prisma/migrations, found beside package.json.
    const ready = await fetch(`${server.url}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { migrations: 'ok' } });
    const dashboard = await fetch(`${server.url}/`, { headers: { accept: 'text/html' } });
    expect(await dashboard.text()).toMatch(/<div id="root">/);

    const admin = await server.token('ADMIN', 'image-admin');
    const worker = await server.token('WORKER', 'image-worker');
    const { lease, token, baseUrl } = await leaseOnNewKey(server, admin, worker, {
      baseUrl: upstream.url,
      apiKey: 'sk-image-0123456789',
    });

    let closeCode: number | undefined;
    const ws = wsClient(server.url, admin, (event) => (closeCode = event.code));
    const sub = collect(ws, 'subscription { leaseEvents { type leaseId } }');
    await settle();

    // A streamed answer that takes a while: SIGTERM arrives after its first chunk.
    upstream.chunkDelayMs = 150;
    const res = await callProvider(baseUrl, token, '/chat/completions', {
      model: 'fake-model',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'one two three four five six seven eight' }],
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-mpk-request-id')!;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let body = decoder.decode((await reader.read()).value);
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
    server.child.kill('SIGTERM');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      body += decoder.decode(value);
    }
    expect(body).toContain('data: [DONE]');
    expect(body).toContain('"finish_reason":"stop"');
    expect(await exited).toBe(0);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    await settle(100);
    expect(closeCode).toBe(1001);
    expect((sub.errors[0] as { code?: number } | undefined)?.code).toBe(1001);
    await ws.dispose();

    // The request it finished was metered before the process exited.
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    const { rows } = await db.query(`SELECT "leaseId" FROM "UsageRecord" WHERE "requestId" = $1`, [requestId]);
    await db.end();
    expect(rows).toEqual([{ leaseId: lease.id }]);
    await server.stop();
  }, 120_000);
});
