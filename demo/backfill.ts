// Thirty days of history, made by MPK's own services with the demo clock set to each past moment:
// leases granted by requestLease, usage recorded through the ledger's write path with the time
// each request was metered, leases released, revoked, suspended at their cap or expired as the
// scheduler would have. No row is written any other way, so every figure the dashboard shows
// (the 30-day spend chart, key pages, the audit log) is what MPK itself computed. The minting key's
// leases get their provider keys the same way: after each lease change the app's own provider job
// runner makes the calls it queued, at that moment, against the fake's key-management API.
import { randomUUID } from 'node:crypto';
import type { App } from '../server/app.js';
import { MpkError } from '../server/core/errors.js';
import { Decimal } from '../server/core/money.js';
import type { Lease } from '../server/db/client.js';
import type { MeteredRequest } from '../server/usage/service.js';
import { DAY_MS, type DemoClock } from './clock.js';
import type { FakeKeyAdmin } from './fake-key-admin.js';
import { type FakeUpstream, priceOf } from './fake-provider.js';
import type { Random } from './random.js';
import { adminIdentity, type RegisteredKey, userIdentity } from './setup.js';
import { AGENTS, type AgentProfile, EMBEDDING_MODEL, POLICIES, PRICES, USERS } from './story.js';

/** Today's last leases run out this long after the backfill: the live scheduler expires them. */
const STILL_RUNNING_FOR_MS = 12_000;

export interface BackfillSummary {
  leases: number;
  requests: number;
  refusals: number;
  spentUsd: Decimal;
}

interface Context {
  app: App;
  clock: DemoClock;
  fake: FakeUpstream;
  /** Where the minting key's leases get their provider keys (on the demo clock). */
  keyAdmin: FakeKeyAdmin;
  keys: RegisteredKey[];
  random: Random;
  /** Expiry times of leases left running, for the scheduler's part. */
  running: number[];
  summary: BackfillSummary;
}

interface SessionOptions {
  /** Requests the agent makes at most. */
  requests: number;
  /** Stop once this key has spent this much today, if the lease is on it (the busy key's target). */
  keySpendTarget?: { keyId: string; usd: Decimal };
  /** Leave the lease running whatever happens (today's last leases). */
  leaveRunning?: boolean;
}

/**
 * The provider calls a lease change queued (a minted key's creation, suspension, deletion), made now
 * by the app's own runner, as the scheduler's would have been woken by the change's event.
 */
const providerCalls = (ctx: Context) => ctx.app.providerJobs.runNow();

/**
 * Moves the clock forward to `at`, first expiring every lease that fell due on the way, at the
 * moment the scheduler would have (its timer fires at the due time, give or take a sweep).
 */
async function moveTo(ctx: Context, at: number) {
  ctx.running.sort((a, b) => a - b);
  while (ctx.running.length && ctx.running[0]! <= at) {
    const due = ctx.running.shift()!;
    ctx.clock.travelTo(new Date(Math.min(at, due + ctx.random.int(1, 400))));
    if (await ctx.app.expiry.expireAll()) await providerCalls(ctx);
  }
  ctx.clock.travelTo(new Date(at));
}

/**
 * The secret the lease's requests were made with, as the fake bills it: the key's own, or on a
 * minting key the provider key minted for the lease.
 */
async function billedSecret(ctx: Context, key: RegisteredKey, lease: Lease): Promise<string> {
  if (key.spec.mode !== 'MINT') return key.secret;
  const recorded = await ctx.app.db.mintedKey.findUnique({ where: { leaseId: lease.id } });
  const minted = recorded?.providerKeyId ? ctx.keyAdmin.keys.get(recorded.providerKeyId) : undefined;
  if (!minted) throw new Error(`No provider key was minted for lease ${lease.id} on ${key.spec.label}`);
  return minted.secret;
}

const isRefusal = (error: unknown) =>
  error instanceof MpkError && ['TIER_LIMIT_REACHED', 'NO_KEY_AVAILABLE'].includes(error.code);

/** requestLease as the agent's user; a provider with no room sends the agent to its fallback. */
async function grant(ctx: Context, profile: AgentProfile): Promise<Lease | null> {
  const request = (provider: AgentProfile['provider']) =>
    ctx.app.services.leases.request(userIdentity(profile.userId), {
      provider,
      framework: profile.framework,
      agentId: profile.agentId,
    });
  try {
    return await request(profile.provider);
  } catch (error) {
    if (!isRefusal(error)) throw error;
    ctx.summary.refusals++;
    if (!profile.fallbackProvider || (error as MpkError).code !== 'NO_KEY_AVAILABLE') return null;
  }
  try {
    return await request(profile.fallbackProvider);
  } catch (error) {
    if (!isRefusal(error)) throw error;
    ctx.summary.refusals++;
    return null;
  }
}

/** One request as the agent would have sent it: its context grows along the session. */
function draftRequest(
  ctx: Context,
  key: RegisteredKey,
  profile: AgentProfile,
  index: number,
  at: number,
): MeteredRequest {
  const embedding = ctx.random.chance(profile.embeddings);
  const fallback = key.spec.fallbackModels[0];
  const model = embedding ? EMBEDDING_MODEL : fallback && ctx.random.chance(0.15) ? fallback : key.spec.defaultModel;
  const promptTokens = embedding
    ? ctx.random.int(200, 3000)
    : ctx.random.int(800, 3000) + index * ctx.random.int(150, 500);
  const completionTokens = embedding ? 0 : ctx.random.int(60, 700);
  return {
    requestId: `chatcmpl-${randomUUID()}`,
    model,
    promptTokens,
    completionTokens,
    costUsd: new Decimal(priceOf(PRICES, model, promptTokens, completionTokens) ?? 0),
    // As the proxy would have found it: in the answer from OpenRouter and Venice, by price otherwise.
    costSource: key.spec.costStyle === 'none' ? 'PRICE' : 'PROVIDER',
    at: new Date(at),
  };
}

/** What the lease may still spend before the proxy refuses it: its cap, the key's day and month. */
async function roomOf(
  ctx: Context,
  lease: Lease,
  target: SessionOptions['keySpendTarget'],
): Promise<{ room: Decimal; capBound: boolean }> {
  const row = await ctx.app.db.managedKey.findUniqueOrThrow({ where: { id: lease.keyId } });
  const spend = ctx.app.services.keys.spendOf(row);
  const cap = new Decimal(lease.spendCapUsd).minus(lease.usageUsd);
  const keyRooms = [
    spend.remainingToday,
    spend.remainingThisMonth,
    target?.keyId === lease.keyId ? target.usd.minus(spend.today) : null,
  ];
  const keyRoom = Decimal.min(...keyRooms.filter((r): r is Decimal => r !== null), cap.plus(1));
  return { room: Decimal.max(0, Decimal.min(cap, keyRoom)), capBound: cap.lessThanOrEqualTo(keyRoom) };
}

/**
 * An agent's lease from `start`, with its requests spread until `end` (or the lease's expiry),
 * stopping where the proxy would have refused the next one; then released, revoked, or left to
 * expire. A lease whose requests reach its cap is suspended by the ledger itself.
 */
async function session(
  ctx: Context,
  profile: AgentProfile,
  start: number,
  end: number,
  options: SessionOptions,
): Promise<void> {
  await moveTo(ctx, start);
  const lease = await grant(ctx, profile);
  if (!lease) return;
  ctx.summary.leases++;
  const key = ctx.keys.find((k) => k.id === lease.keyId)!;
  // Only a minting key's leases queue provider calls (asking the queue costs two statements).
  const minting = key.spec.mode === 'MINT';
  if (minting) await providerCalls(ctx);
  const secret = await billedSecret(ctx, key, lease);
  const { room, capBound } = await roomOf(ctx, lease, options.keySpendTarget);
  const until = Math.max(start, Math.min(end, lease.expiresAt.getTime() - 5_000));
  const gap = Math.max(1, (until - start) / (options.requests + 1));

  const batch: (MeteredRequest & { leaseId: string })[] = [];
  let spent = new Decimal(0);
  let at = start;
  while (batch.length < options.requests && spent.lessThan(room)) {
    at = Math.min(until, at + gap * (0.5 + ctx.random.next()));
    const request = draftRequest(ctx, key, profile, batch.length, at);
    batch.push({ ...request, leaseId: lease.id });
    // The provider's own books agree with MPK's, as they do for what the fake serves live.
    ctx.fake.bill(secret, request.costUsd.toNumber(), new Date(at));
    spent = spent.plus(request.costUsd);
  }
  if (batch.length) {
    await moveTo(ctx, at);
    ctx.summary.requests += await ctx.app.services.usage.recordBatch(batch);
    ctx.summary.spentUsd = ctx.summary.spentUsd.plus(spent);
    if (minting) await providerCalls(ctx);
  }
  const refused = spent.greaterThanOrEqualTo(room);
  if (refused && capBound) return; // suspended at its cap by the ledger
  if (options.leaveRunning || (!refused && ctx.random.chance(0.2))) {
    ctx.running.push(lease.expiresAt.getTime());
    return;
  }
  await moveTo(ctx, Math.min(until, at + ctx.random.int(2_000, 30_000)));
  if (!refused && ctx.random.chance(0.08)) {
    await ctx.app.services.leases.revoke(adminIdentity, lease.id, 'Runaway loop: the same prompt repeated for minutes');
  } else {
    await ctx.app.services.leases.release(userIdentity(profile.userId), lease.id);
  }
  if (minting) await providerCalls(ctx);
}

/** The platform grows: later days are busier, weekends quieter. */
function sessionsOn(ctx: Context, dayStart: number, daysAgo: number, days: number): number {
  const weekday = new Date(dayStart).getUTCDay();
  const base = weekday === 0 || weekday === 6 ? 3 : 6;
  return Math.max(2, Math.round(base * (1 + 0.6 * (1 - daysAgo / days))) + ctx.random.int(-1, 2));
}

/** A day of ordinary traffic in [start, end); on the day a key was disabled, the admin does so midway. */
async function ordinaryDay(ctx: Context, start: number, end: number, sessions: number, daysAgo: number) {
  const slot = (end - start) / sessions;
  for (let i = 0; i < sessions; i++) {
    if (i === Math.floor(sessions / 2)) await disableKeysOf(ctx, daysAgo, start + i * slot);
    const from = start + i * slot + ctx.random.next() * slot * 0.3;
    await session(ctx, ctx.random.pick(AGENTS), from, start + (i + 1) * slot, { requests: ctx.random.int(8, 40) });
  }
}

async function disableKeysOf(ctx: Context, daysAgo: number, at: number) {
  for (const key of ctx.keys.filter((k) => k.spec.disabled?.daysAgo === daysAgo)) {
    await moveTo(ctx, at);
    await ctx.app.services.leases.disableKey(adminIdentity, key.id, key.spec.disabled!.reason);
    await providerCalls(ctx);
  }
}

/** Today's traffic keeps a busy key working until it has spent its share of the daily limit. */
async function busyKeysToday(ctx: Context, start: number, end: number) {
  for (const key of ctx.keys.filter((k) => k.spec.busyTodayUntil !== undefined)) {
    const target = new Decimal(key.spec.dailyLimitUsd).times(key.spec.busyTodayUntil!);
    const agents = AGENTS.filter((a) => a.provider === key.spec.provider);
    const rounds = 12;
    for (let i = 0; i < rounds; i++) {
      const row = await ctx.app.db.managedKey.findUniqueOrThrow({ where: { id: key.id } });
      if (ctx.app.services.keys.spendOf(row).today.greaterThanOrEqualTo(target)) break;
      const slot = (end - start) / rounds;
      await session(ctx, agents[i % agents.length]!, start + i * slot, start + (i + 1) * slot, {
        requests: 150,
        keySpendTarget: { keyId: key.id, usd: target },
      });
    }
  }
}

/** When a FREE lease must be granted to end STILL_RUNNING_FOR_MS after `now`. */
const lastGrantBefore = (now: number) => now - POLICIES.FREE.leaseDurationSeconds * 1000 + STILL_RUNNING_FOR_MS;

/**
 * The last FREE leases of today, granted so that the live scheduler expires them seconds after
 * the demo goes live (timed from the end of the backfill, not its start).
 */
async function stillRunning(ctx: Context) {
  const now = Date.now();
  const grantedAt = lastGrantBefore(now);
  // One lease for each FREE user (their tier allows one), on their first agent.
  const firstAgents = USERS.filter((u) => u.tier === 'FREE').map((u) => AGENTS.find((a) => a.userId === u.id));
  for (const profile of firstAgents)
    if (profile) await session(ctx, profile, grantedAt, now - 2_000, { requests: 3, leaveRunning: true });
}

/**
 * Writes `days` days of history up to now. Today's share is squeezed into the part of today that
 * has passed, however little, so that the busy key is near its daily limit at any hour.
 */
export async function backfill(
  deps: Omit<Context, 'running' | 'summary'> & { days: number },
): Promise<BackfillSummary> {
  const ctx: Context = {
    ...deps,
    running: [],
    summary: { leases: 0, requests: 0, refusals: 0, spentUsd: new Decimal(0) },
  };
  const now = Date.now();
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  try {
    for (let daysAgo = deps.days; daysAgo >= 1; daysAgo--) {
      const start = today - daysAgo * DAY_MS;
      await ordinaryDay(ctx, start, start + DAY_MS, sessionsOn(ctx, start, daysAgo, deps.days), daysAgo);
    }
    // Before the last leases are granted: today's ordinary traffic, then the busy key's.
    const todayEnd = Math.max(today, lastGrantBefore(now) - 1_000);
    const busyFrom = today + (todayEnd - today) * 0.7;
    const share = (todayEnd - today) / DAY_MS;
    await ordinaryDay(ctx, today, busyFrom, Math.max(2, Math.round(sessionsOn(ctx, today, 0, deps.days) * share)), 0);
    await busyKeysToday(ctx, busyFrom, todayEnd);
    await stillRunning(ctx);
  } finally {
    ctx.clock.backToPresent();
  }
  return ctx.summary;
}
