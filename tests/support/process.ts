// MPK in a process of its own, started as `npm start` starts it (`node --import tsx
// server/main.ts`): for the tests of the process itself (a fresh start, several instances) and
// for the benchmarks, whose load generator must not share the server's event loop.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { mintToken } from '../../server/auth/authenticator.js';
import { type ServerSecrets, tempDir, testSecrets } from './config.js';
import { type GraphQLServer, postGraphQL } from './graphql.js';

const root = path.resolve(import.meta.dirname, '../..');

export interface SpawnedServer {
  child: ChildProcess;
  url: string;
  /** What it has printed so far: stdout, and stderr unless that goes to this terminal. */
  output(): string;
  /** SIGTERM; resolves with the exit code once it has exited (at once if it already had). */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  /** Names it in errors. */
  name?: string;
  /** Flags for its node (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** What node runs, from `cwd`: `npm start`'s `--import tsx server/main.ts` unless given (the image's
   * `dist/server/main.js`, say). */
  entry?: string[];
  /** The folder it runs in: this checkout unless given. */
  cwd?: string;
  /** `inherit`: its stderr goes to this terminal (the benchmarks) instead of into `output()`. */
  stderr?: 'pipe' | 'inherit';
  timeoutMs?: number;
}

/** Servers started and not yet stopped, with how to end each: see `killServers`. */
const running = new Set<() => Promise<void>>();

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
const exit = (child: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    exited(child) ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
  );

/**
 * Starts the server with `env` and, of this process's environment, only PATH and HOME, on a free
 * port. Resolves once it listens (the URL it logs); rejects with everything it printed if it exits
 * first or does not listen in time.
 */
export function spawnServer(env: Record<string, string>, options: SpawnOptions = {}): Promise<SpawnedServer> {
  const { name = 'server', nodeArgs = [], stderr = 'pipe', timeoutMs = 30_000 } = options;
  const { entry = ['--import', 'tsx', 'server/main.ts'], cwd = root } = options;
  const child = spawn(process.execPath, [...nodeArgs, ...entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', stderr],
  });
  const kill = async () => {
    if (!exited(child)) child.kill('SIGKILL');
    await exit(child);
  };
  running.add(kill);
  let output = '';
  return new Promise((resolve, reject) => {
    let started = false;
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${timeoutMs / 1000} s:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = started ? null : /"url":"(http:\/\/[^"]+)\/graphql"/.exec(output);
      if (!match) return;
      started = true;
      clearTimeout(timer);
      resolve({
        child,
        url: match[1]!,
        output: () => output,
        async stop() {
          running.delete(kill);
          if (!exited(child)) child.kill('SIGTERM');
          return exit(child);
        },
      });
    };
    child.stdout!.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      running.delete(kill);
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${output}`));
    });
  });
}

export interface ServerProcess extends SpawnedServer, GraphQLServer {
  secrets: ServerSecrets;
}

/**
 * A server process on known secrets (fresh ones unless given: instances of one deployment share
 * theirs) with a data folder of its own, removed when it stops; `env` adds DATABASE_URL and the like.
 */
export async function startServerProcess(
  env: Record<string, string> = {},
  options: SpawnOptions & { secrets?: ServerSecrets } = {},
): Promise<ServerProcess> {
  const { secrets = testSecrets(), ...spawnOptions } = options;
  const dataDir = await tempDir('mpk-server-');
  running.add(dataDir.remove);
  const spawned = await spawnServer(
    { MPK_DATA_DIR: dataDir.path, MPK_JWT_SECRET: secrets.jwtSecret, MPK_MASTER_KEYS: secrets.masterKeys, ...env },
    spawnOptions,
  ).catch(async (error: unknown) => {
    running.delete(dataDir.remove);
    await dataDir.remove();
    throw error;
  });
  return {
    ...spawned,
    secrets,
    // With the issuer and audience the process checks, when `env` sets them.
    token: (role, sub = `${role.toLowerCase()}-1`, extra = {}) =>
      mintToken({
        secret: secrets.jwtSecret,
        issuer: env.MPK_JWT_ISSUER,
        audience: env.MPK_JWT_AUDIENCE,
        sub,
        role,
        ...extra,
      }),
    gql: (query, variables, token) => postGraphQL(spawned.url, query, variables, token),
    async stop() {
      const code = await spawned.stop();
      running.delete(dataDir.remove);
      await dataDir.remove();
      return code;
    },
  };
}

/**
 * One deployment: instances started on the same PostgreSQL and Redis (`env()`, read at each start)
 * and sharing their secrets. `instances` holds them in the order they were started.
 */
export function deployment(name: string, env: () => Record<string, string>) {
  const secrets = testSecrets(name);
  const instances: ServerProcess[] = [];
  return {
    instances,
    async start(instanceName: string) {
      const instance = await startServerProcess(env(), { name: instanceName, secrets });
      instances.push(instance);
      return instance;
    },
  };
}

/** Kills (-9) every server process still running and removes their data folders: for afterAll. */
export async function killServers() {
  const ends = [...running];
  running.clear();
  // Newest first: a process ends before the folder it was started on is removed.
  for (const end of ends.reverse()) await end();
}

/** Whether the instance runs the scheduler: 'leader', 'standby' or 'off' (its /healthz). */
export const schedulerRole = async (instance: SpawnedServer) =>
  ((await (await fetch(`${instance.url}/healthz`)).json()) as { scheduler: string }).scheduler;
