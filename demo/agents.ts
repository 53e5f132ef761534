// Simulated agents, each doing what a real one on the platform does: its user asks MPK for a
// lease (requestLease), the platform's worker resolves it (resolveLease), and the agent talks to
// the metering proxy with the lease token it was handed, exactly as an OpenAI client would (on the
// minting key the proxy goes upstream with the provider key MPK minted for the lease). Then
// it releases the lease, goes quiet and lets it expire, or runs on until MPK refuses it. Refusals
// (tier limit, no key with room, 402 at a cap or a key's limit, 403 once the lease has ended) are
// part of the story: the agent says so and carries on.
import type { Framework, Provider } from '../server/db/enums.js';
import { type GraphQL, Refusal } from './graphql.js';
import type { Random } from './random.js';
import { type AgentProfile, EMBEDDING_MODEL } from './story.js';

const REQUEST = `mutation($input: RequestLeaseInput!) {
  requestLease(input: $input) { id tier expiresAt spendCapUsd } }`;
const RESOLVE = `query($leaseId: ID) {
  resolveLease(leaseId: $leaseId) { apiKey baseUrl model fallbackModels
    lease { key { label } mintedKey { maskedKey } } } }`;
const RELEASE = `mutation($id: ID!) { releaseLease(id: $id) { status } }`;
const LEASE = `query($id: ID!) { lease(id: $id) { status endReason usageUsd requestCount } }`;

const SYSTEM = 'You are an autonomous agent on a hosted agent platform. Think step by step and keep notes short.';
/** Stands in for what a tool hands an agent to read (a page, a log, a file): most of a real prompt. */
const TOOL_OUTPUT = 'line 42: request handled in 120 ms, cache hit, 3 rows returned; ';
/** How often the agents say what went through the proxy. */
const TRAFFIC_REPORT_MS = 30_000;
/** Resolves of a lease whose minted key is still being made (KEY_NOT_READY) before the agent gives up. */
const NOT_READY_TRIES = 5;
const TASKS = [
  'Summarise the open issues labelled bug and suggest which to fix first.',
  'Draft a reply to the customer who asked about invoices for last quarter.',
  'Read the changelog and list what breaks for users of version 2.',
  'Plan the next three steps for the data migration and name the risks.',
  'Check the monitoring notes from last night and explain the spike at 03:00.',
  'Write a short product description for the new travel mug, friendly tone.',
  'Compare the two proposals in the thread and recommend one, with reasons.',
  'Turn these meeting notes into a list of action items with owners.',
];

interface Lease {
  id: string;
  tier: string;
  expiresAt: string;
  spendCapUsd: string;
}

interface Resolved {
  apiKey: string;
  baseUrl: string;
  model: string;
  fallbackModels: string[];
  lease: { key: { label: string } | null; mintedKey: { maskedKey: string | null } | null };
}

type Plan = { kind: 'release'; after: number } | { kind: 'quiet'; after: number } | { kind: 'until-refused' };
/** How a turn ended: `no-key` sends the agent to its fallback provider, `tier-limit` makes it wait longer. */
type Outcome = 'done' | 'no-key' | 'tier-limit';

/** What went through the proxy since the last report: requests, and the answers by status. */
class Traffic {
  requests = 0;
  streamed = 0;
  embeddings = 0;
  readonly statuses = new Map<number, number>();

  count(status: number, kind: 'chat' | 'streamed' | 'embedding') {
    this.requests++;
    if (kind === 'streamed') this.streamed++;
    if (kind === 'embedding') this.embeddings++;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  /** The report line, or null when nothing went through; counting starts again. */
  take(): string | null {
    if (!this.requests) return null;
    const statuses = [...this.statuses]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status} x${n}`)
      .join(', ');
    const line =
      `proxy: ${this.requests} requests in the last ${TRAFFIC_REPORT_MS / 1000} s ` +
      `(${this.streamed} streamed, ${this.embeddings} embeddings), answered ${statuses}`;
    this.requests = this.streamed = this.embeddings = 0;
    this.statuses.clear();
    return line;
  }
}

export interface AgentsOptions {
  gql: GraphQL;
  /** A user's bearer token (the platform signs its users in). */
  userToken: (userId: string) => string;
  workerToken: string;
  profiles: AgentProfile[];
  random: Random;
  log: (line: string) => void;
}

/** Sleeps `ms`, or less if the demo stops meanwhile (not at all if it has stopped). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** The assistant's words from a completion, plain or streamed, as an agent keeps them for context. */
function replyOf(body: string, streamed: boolean): string {
  try {
    if (!streamed) return JSON.parse(body).choices?.[0]?.message?.content ?? '';
    return body
      .split('\n')
      .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
      .map((line) => JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? '')
      .join('');
  } catch {
    return '';
  }
}

const seconds = (iso: string) => Math.round((new Date(iso).getTime() - Date.now()) / 1000);

class Agent {
  private readonly history: { role: 'user' | 'assistant'; content: string }[] = [];
  private readonly token: string;

  constructor(
    private readonly profile: AgentProfile,
    private readonly options: AgentsOptions,
    private readonly traffic: Traffic,
    private readonly signal: AbortSignal,
  ) {
    this.token = options.userToken(profile.userId);
  }

  private say(line: string) {
    this.options.log(`[${this.profile.agentId}] ${line}`);
  }

  private gql<T>(token: string, query: string, variables: Record<string, unknown>): Promise<T> {
    return this.options.gql<T>(token, query, variables, this.signal);
  }

  /** Until the demo stops: a lease, its work, a pause, and again. */
  async run() {
    let provider = this.profile.provider;
    // Agents start a few seconds apart, as a platform's do.
    await pause(this.options.random.int(0, 3_000), this.signal);
    while (!this.signal.aborted) {
      try {
        const outcome = await this.oneLease(provider, this.profile.framework);
        const fallback = this.profile.fallbackProvider;
        provider = outcome === 'no-key' && fallback && provider !== fallback ? fallback : this.profile.provider;
        if (provider !== this.profile.provider) this.say(`the platform sends it to ${provider} next`);
        // Its user's other agent holds the tier's only lease: no use asking again at once.
        if (outcome === 'tier-limit') await pause(this.options.random.int(8_000, 20_000), this.signal);
      } catch (error) {
        if (this.signal.aborted) return;
        this.say(`error: ${error instanceof Error ? error.message : String(error)}`);
      }
      await pause(this.options.random.int(3_000, 10_000), this.signal);
    }
  }

  private async oneLease(provider: Provider, framework: Framework): Promise<Outcome> {
    let lease: Lease;
    try {
      ({ requestLease: lease } = await this.gql<{ requestLease: Lease }>(this.token, REQUEST, {
        input: { provider, framework, agentId: this.profile.agentId },
      }));
    } catch (error) {
      if (!(error instanceof Refusal) || !['TIER_LIMIT_REACHED', 'NO_KEY_AVAILABLE'].includes(error.code)) throw error;
      this.say(`lease refused: ${error.code} (${error.message})`);
      return error.code === 'NO_KEY_AVAILABLE' ? 'no-key' : 'tier-limit';
    }
    let resolved: Resolved | null;
    try {
      resolved = await this.resolve(lease);
    } catch (error) {
      if (!(error instanceof Refusal) || !['QUOTA_EXHAUSTED', 'LEASE_NOT_ACTIVE'].includes(error.code)) throw error;
      this.say(`worker could not resolve its lease: ${error.code}`);
      return this.letGo(lease);
    }
    if (!resolved) {
      await this.release(
        lease,
        `its minted key was still not ready after ${NOT_READY_TRIES} tries: released the lease`,
      );
      return 'done';
    }
    const minted = resolved.lease.mintedKey;
    this.say(
      `${lease.tier} lease on ${resolved.lease.key?.label ?? provider}` +
        `${minted ? ` with its own minted key ${minted.maskedKey ?? '(being made)'}` : ''}: ${resolved.model}, ` +
        `ends in ${seconds(lease.expiresAt)} s or at $${lease.spendCapUsd}`,
    );
    return this.work(lease, resolved, this.plan(lease));
  }

  /**
   * The worker's resolveLease; on a minting key whose provider key is still being made (KEY_NOT_READY)
   * it asks again 2 s later (MPK's retryAfterSeconds), a few times; null if the key never came.
   */
  private async resolve(lease: Lease): Promise<Resolved | null> {
    for (let tries = 1; ; tries++) {
      try {
        const { resolveLease } = await this.gql<{ resolveLease: Resolved }>(this.options.workerToken, RESOLVE, {
          leaseId: lease.id,
        });
        return resolveLease;
      } catch (error) {
        if (!(error instanceof Refusal) || error.code !== 'KEY_NOT_READY') throw error;
        if (tries >= NOT_READY_TRIES || this.signal.aborted) return null;
        this.say('its minted key is still being made: the worker asks again in 2 s');
        await pause(2_000, this.signal);
      }
    }
  }

  /** Most agents finish and release; some go quiet (FREE's short leases only); some run until refused. */
  private plan(lease: Lease): Plan {
    const { random } = this.options;
    const roll = random.next();
    if (roll < 0.55) return { kind: 'release', after: random.int(4, 20) };
    if (roll < 0.75 && seconds(lease.expiresAt) <= 180) return { kind: 'quiet', after: random.int(2, 6) };
    return { kind: 'until-refused' };
  }

  private async work(lease: Lease, resolved: Resolved, plan: Plan): Promise<Outcome> {
    for (let sent = 0; !this.signal.aborted; sent++) {
      if (plan.kind === 'release' && sent >= plan.after) {
        await this.release(lease, `done after ${sent} requests: released its lease`);
        return 'done';
      }
      if (plan.kind === 'quiet' && sent >= plan.after) return this.goQuiet(lease);
      const status = await this.send(resolved);
      if (status === 402) {
        this.say("proxy answered 402 quota_exhausted: its spend cap or its key's limit is reached");
        return this.letGo(lease);
      }
      if (status === 403) {
        const { lease: ended } = await this.gql<{ lease: { status: string; endReason: string | null } }>(
          this.token,
          LEASE,
          { id: lease.id },
        );
        this.say(
          `proxy answered 403 lease_not_active: lease ${ended.status}${ended.endReason ? ` (${ended.endReason})` : ''}`,
        );
        return 'done';
      }
      if (status !== 200) this.say(`proxy answered ${status}; trying again`);
      await pause(this.options.random.int(1_000, 4_000), this.signal);
    }
    return 'done';
  }

  /** Stops sending and lets the lease run out; the scheduler expires it. */
  private async goQuiet(lease: Lease): Promise<Outcome> {
    this.say(`goes quiet; its lease runs out in ${seconds(lease.expiresAt)} s`);
    await pause(Math.max(0, seconds(lease.expiresAt) * 1000 + 3_000), this.signal);
    if (this.signal.aborted) return 'done';
    const { lease: after } = await this.gql<{ lease: { status: string } }>(this.token, LEASE, { id: lease.id });
    this.say(`its idle lease is now ${after.status}`);
    return 'done';
  }

  /** After a refusal: a lease suspended at its cap stays so; one on a key at its limit is released. */
  private async letGo(lease: Lease): Promise<Outcome> {
    const { lease: now } = await this.gql<{ lease: { status: string } }>(this.token, LEASE, { id: lease.id });
    if (now.status !== 'ACTIVE') {
      this.say(`lease is ${now.status}`);
      return 'done';
    }
    await this.release(lease, 'its key is at its spend limit: released the lease');
    return 'no-key';
  }

  /** releaseLease; a lease that ended meanwhile (expired a moment ago) is simply over. */
  private async release(lease: Lease, why: string) {
    try {
      await this.gql(this.token, RELEASE, { id: lease.id });
      this.say(why);
    } catch (error) {
      if (!(error instanceof Refusal) || error.code !== 'LEASE_NOT_ACTIVE') throw error;
      this.say(`its lease had already ended: ${error.message}`);
    }
  }

  /** The conversation the agent sends as context: its last dozen messages, as a context window holds. */
  private remember(role: 'user' | 'assistant', content: string) {
    this.history.push({ role, content });
    if (this.history.length > 12) this.history.shift();
  }

  /** One request through the proxy: chat (sometimes streamed, sometimes on a fallback model) or embeddings. */
  private async send(resolved: Resolved): Promise<number> {
    const { random } = this.options;
    const embedding = random.chance(this.profile.embeddings);
    const streamed = !embedding && random.chance(0.3);
    const task = Array.from({ length: random.int(1, 4) }, () => random.pick(TASKS)).join(' ');
    const read = random.chance(0.4) ? `\n\nTool output:\n${TOOL_OUTPUT.repeat(random.int(20, 120))}` : '';
    const fallback = resolved.fallbackModels[0];
    const model = embedding ? EMBEDDING_MODEL : fallback && random.chance(0.1) ? fallback : resolved.model;
    if (!embedding) this.remember('user', task + read);
    const body = embedding
      ? { model, input: task }
      : { model, stream: streamed, messages: [{ role: 'system', content: SYSTEM }, ...this.history] };
    const res = await fetch(`${resolved.baseUrl}/${embedding ? 'embeddings' : 'chat/completions'}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${resolved.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: this.signal,
    });
    const text = await res.text();
    this.traffic.count(res.status, embedding ? 'embedding' : streamed ? 'streamed' : 'chat');
    if (res.ok && !embedding) this.remember('assistant', replyOf(text, streamed));
    return res.status;
  }
}

/** Starts one loop per profile; `stop()` ends them (leases they hold stay as they are). */
export function startAgents(options: AgentsOptions) {
  const controller = new AbortController();
  const traffic = new Traffic();
  const loops = options.profiles.map((profile) => new Agent(profile, options, traffic, controller.signal).run());
  const reports = setInterval(() => {
    const line = traffic.take();
    if (line) options.log(line);
  }, TRAFFIC_REPORT_MS);
  return {
    async stop() {
      clearInterval(reports);
      controller.abort();
      await Promise.all(loops);
    },
  };
}
