// Shared by the benchmarks: a scratch PostgreSQL database, an MPK server in its own process (so
// the load generator never shares its event loop), and latency statistics.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { mintToken, type Role } from '../server/auth/authenticator.js';

const root = path.resolve(import.meta.dirname, '..');
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export async function scratchDatabase() {
  const name = `mpk_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface BenchServer {
  url: string;
  child: ChildProcess;
  token(role: Role, sub: string): Promise<string>;
  gql(query: string, variables: Record<string, unknown>, token: string): Promise<any>;
  rss(): Promise<number>;
  stop(): Promise<void>;
}

export async function startServer(env: Record<string, string>): Promise<BenchServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-bench-'));
  const jwtSecret = randomBytes(32).toString('base64url');
  const child = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'server/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      LOG_LEVEL: 'info',
      MPK_DATA_DIR: dataDir,
      MPK_JWT_SECRET: jwtSecret,
      MPK_MASTER_KEYS: `b1:${randomBytes(32).toString('base64')}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const match = /"url":"(http:\/\/[^"]+)\/graphql"/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return {
    url,
    child,
    token: (role, sub) => mintToken({ secret: jwtSecret, sub, role, expiresInSeconds: 3600 }),
    async gql(query, variables, token) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as any;
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    },
    async rss() {
      const { readFile } = await import('node:fs/promises');
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

export const ms = (value: number) => `${value.toFixed(2)} ms`;

/** Runs `task(i)` for i in [0, total) with `concurrency` workers; returns the wall time in ms. */
export async function pool(total: number, concurrency: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await task(next++);
    }),
  );
  return performance.now() - started;
}

/**
 * CPU time (ms) used so far by this process, the server, and PostgreSQL's processes (Linux
 * /proc), to tell where a figure's time goes on a shared machine.
 */
export async function cpuTimes(serverPid: number): Promise<{ bench: number; server: number; postgres: number }> {
  const { readFile, readdir } = await import('node:fs/promises');
  const ticks = async (pid: number | string) => {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpu: Number(fields[11]) + Number(fields[12]) };
    } catch {
      return { comm: '', cpu: 0 };
    }
  };
  let postgres = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = await ticks(entry);
    if (t.comm === 'postgres') postgres += t.cpu;
  }
  const msPerTick = 1000 / 100;
  return { bench: (await ticks(process.pid)).cpu * msPerTick, server: (await ticks(serverPid)).cpu * msPerTick, postgres: postgres * msPerTick };
}
