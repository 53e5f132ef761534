// `npm run mpk -- <keys|leases|users> <action> ...`: the operator's scripted tasks, through the
// GraphQL API of a running server with an admin token, so the server's rules, audit log and live
// events apply exactly as from the dashboard. It never opens the database itself.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { cliArgs, usageError } from './args.js';

const USAGE = `usage: npm run mpk -- <command> [options]

Commands:
  keys list [--status ACTIVE|DISABLED] [--provider <provider>] [--first <n>]
  keys create --provider OPENROUTER|VENICE|OPENAI_COMPATIBLE --label <label> --api-key <key | ->
              [--base-url <url>] [--daily-limit <usd>] [--monthly-limit <usd>] [--max-leases <n>]
              [--default-model <model>]       (--api-key -: read the key from stdin, out of shell history)
  keys disable <key id> [--reason <text>]
  leases list [--status ACTIVE|SUSPENDED|EXPIRED|RELEASED|REVOKED] [--user <user id>] [--key <key id>]
              [--tier FREE|PRO|ENTERPRISE] [--first <n>]
  leases revoke <lease id> [--reason <text>]
  leases extend <lease id> --by <seconds> [--reactivate]
  users set-tier <user id> FREE|PRO|ENTERPRISE

Options:
  --url <url>      the server (or MPK_URL; default http://127.0.0.1:4000)
  --token <jwt>    an ADMIN token (or MPK_TOKEN), e.g. from \`npm run token -- --role admin --sub <you>\`
  --json           print the result as JSON instead of a table
  -h, --help       this text

Exit status: 0 done, 1 refused by the server or unreachable (the GraphQL error code is printed), 2 bad usage.`;

const GLOBAL = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type Row = Record<string, unknown>;
type Vars = Record<string, unknown>;

interface Command {
  options: NonNullable<ParseArgsConfig['options']>;
  /** Names of the positional arguments after the command words. */
  args: string[];
  run(call: Call, values: Record<string, string | boolean | undefined>, args: string[]): Promise<Row | Row[]>;
}

type Call = <T>(query: string, variables: Vars) => Promise<T>;

const KEY = 'id label provider status maskedKey activeLeaseCount spendTodayUsd dailyLimitUsd monthlyLimitUsd';
const LEASE = 'id status tier provider agentId user { id } key { id } expiresAt usageUsd spendCapUsd';
const leaseRow = ({ user, key, ...lease }: Row & { user: { id: string }; key: { id: string } | null }) => ({
  ...lease,
  userId: user.id,
  keyId: key?.id ?? null,
});

const int = (name: string, value: string | boolean | undefined) => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) usageError(`--${name} must be a whole number, not "${value}".`, USAGE);
  return n;
};

const upper = (value: string | boolean | undefined) => (typeof value === 'string' ? value.toUpperCase() : undefined);

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

const COMMANDS: Record<string, Command> = {
  'keys list': {
    options: { status: { type: 'string' }, provider: { type: 'string' }, first: { type: 'string' } },
    args: [],
    async run(call, v) {
      const data = await call<{ managedKeys: { edges: { node: Row }[] } }>(
        `query ($status: KeyStatus, $provider: Provider, $first: Int) {
          managedKeys(status: $status, provider: $provider, first: $first) { edges { node { ${KEY} } } }
        }`,
        { status: upper(v.status), provider: upper(v.provider), first: int('first', v.first) ?? 200 },
      );
      return data.managedKeys.edges.map((e) => e.node);
    },
  },
  'keys create': {
    options: {
      provider: { type: 'string' },
      label: { type: 'string' },
      'api-key': { type: 'string' },
      'base-url': { type: 'string' },
      'daily-limit': { type: 'string' },
      'monthly-limit': { type: 'string' },
      'max-leases': { type: 'string' },
      'default-model': { type: 'string' },
    },
    args: [],
    async run(call, v) {
      for (const name of ['provider', 'label', 'api-key'])
        if (typeof v[name] !== 'string') usageError(`keys create needs --${name}.`, USAGE);
      const apiKey = v['api-key'] === '-' ? await readStdin() : (v['api-key'] as string);
      const input = {
        provider: upper(v.provider),
        label: v.label,
        apiKey,
        baseUrl: v['base-url'],
        dailyLimitUsd: v['daily-limit'],
        monthlyLimitUsd: v['monthly-limit'],
        maxActiveLeases: int('max-leases', v['max-leases']),
        defaultModel: v['default-model'],
      };
      const data = await call<{ createManagedKey: Row }>(
        `mutation ($input: CreateManagedKeyInput!) { createManagedKey(input: $input) { ${KEY} } }`,
        { input },
      );
      return data.createManagedKey;
    },
  },
  'keys disable': {
    options: { reason: { type: 'string' } },
    args: ['key id'],
    async run(call, v, [id]) {
      const data = await call<{ disableManagedKey: Row }>(
        `mutation ($id: ID!, $reason: String) { disableManagedKey(id: $id, reason: $reason) { ${KEY} disabledReason } }`,
        { id, reason: v.reason },
      );
      return data.disableManagedKey;
    },
  },
  'leases list': {
    options: {
      status: { type: 'string' },
      user: { type: 'string' },
      key: { type: 'string' },
      tier: { type: 'string' },
      first: { type: 'string' },
    },
    args: [],
    async run(call, v) {
      const data = await call<{ leases: { edges: { node: Parameters<typeof leaseRow>[0] }[] } }>(
        `query ($status: LeaseStatus, $userId: ID, $keyId: ID, $tier: Tier, $first: Int) {
          leases(status: $status, userId: $userId, keyId: $keyId, tier: $tier, first: $first) {
            edges { node { ${LEASE} } }
          }
        }`,
        {
          status: upper(v.status),
          userId: v.user,
          keyId: v.key,
          tier: upper(v.tier),
          first: int('first', v.first) ?? 200,
        },
      );
      return data.leases.edges.map((e) => leaseRow(e.node));
    },
  },
  'leases revoke': {
    options: { reason: { type: 'string' } },
    args: ['lease id'],
    async run(call, v, [id]) {
      const data = await call<{ revokeLease: Parameters<typeof leaseRow>[0] }>(
        `mutation ($id: ID!, $reason: String) { revokeLease(id: $id, reason: $reason) { ${LEASE} endReason } }`,
        { id, reason: v.reason },
      );
      return leaseRow(data.revokeLease);
    },
  },
  'leases extend': {
    options: { by: { type: 'string' }, reactivate: { type: 'boolean' } },
    args: ['lease id'],
    async run(call, v, [id]) {
      const bySeconds = int('by', v.by);
      if (bySeconds === undefined) usageError('leases extend needs --by <seconds>.', USAGE);
      const data = await call<{ extendLease: Parameters<typeof leaseRow>[0] }>(
        `mutation ($id: ID!, $by: Int!, $reactivate: Boolean) {
          extendLease(id: $id, bySeconds: $by, reactivate: $reactivate) { ${LEASE} }
        }`,
        { id, by: bySeconds, reactivate: v.reactivate },
      );
      return leaseRow(data.extendLease);
    },
  },
  'users set-tier': {
    options: {},
    args: ['user id', 'tier'],
    async run(call, _v, [userId, tier]) {
      const data = await call<{ setUserTier: Row }>(
        `mutation ($userId: ID!, $tier: Tier!) { setUserTier(userId: $userId, tier: $tier) { id email role tier } }`,
        { userId, tier: tier!.toUpperCase() },
      );
      return data.setUserTier;
    },
  },
};

class RemoteError extends Error {}

function caller(url: string, token: string): Call {
  const endpoint = `${url.replace(/\/+$/, '')}/graphql`;
  return async (query, variables) => {
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new RemoteError(`Cannot reach ${endpoint}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
    }
    const text = await res.text();
    let body: { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
    try {
      body = JSON.parse(text);
    } catch {
      throw new RemoteError(`${endpoint} answered HTTP ${res.status} with something other than GraphQL JSON.`);
    }
    if (body.errors?.length) {
      throw new RemoteError(
        body.errors.map((e) => `${e.extensions?.code ?? `HTTP ${res.status}`}: ${e.message}`).join('\n'),
      );
    }
    return body.data as never;
  };
}

const cell = (value: unknown) => (value === null || value === undefined ? '-' : String(value));

/** Columns padded to their widest cell; a single object prints as field/value lines. */
function table(result: Row | Row[]): string {
  if (!Array.isArray(result)) {
    const width = Math.max(...Object.keys(result).map((k) => k.length));
    return Object.entries(result)
      .map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`)
      .join('\n');
  }
  if (!result.length) return '(none)';
  const columns = Object.keys(result[0]!);
  const widths = columns.map((c) => Math.max(c.length, ...result.map((r) => cell(r[c]).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...result.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

async function main() {
  const argv = process.argv.slice(2);
  // A lax first pass finds the command words wherever the global options sit.
  const lax = parseArgs({ args: argv, options: GLOBAL, strict: false, allowPositionals: true });
  const name = lax.positionals.slice(0, 2).join(' ');
  const command = COMMANDS[name];
  if (!command) {
    if (argv.includes('--help') || argv.includes('-h')) cliArgs(USAGE, {}, { args: ['--help'] });
    usageError(lax.positionals.length ? `Unknown command "${name}".` : 'Which command?', USAGE);
  }
  const { values, positionals } = cliArgs(USAGE, { ...GLOBAL, ...command.options }, { positionals: true, args: argv });
  const args = positionals.slice(2);
  if (args.length !== command.args.length) {
    usageError(`${name} takes ${command.args.map((a) => `<${a}>`).join(' ') || 'no arguments'}.`, USAGE);
  }
  const url = (values.url as string | undefined) ?? process.env.MPK_URL ?? 'http://127.0.0.1:4000';
  const token = (values.token as string | undefined) ?? process.env.MPK_TOKEN;
  if (!token) usageError('No token: pass --token or set MPK_TOKEN to an ADMIN token.', USAGE);
  try {
    const result = await command.run(caller(url, token), values as Record<string, string | boolean>, args);
    console.log(values.json ? JSON.stringify(result, null, 2) : table(result));
  } catch (error) {
    if (!(error instanceof RemoteError)) throw error;
    console.error(error.message);
    process.exitCode = 1;
  }
}

await main();
