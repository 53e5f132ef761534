// The metering proxy's admission cache: what it takes to admit a request (the lease's state, its
// key's limits and spend, where to forward and with which secret) held in memory, so that a
// proxied request costs no database round trip. A round trip is most of a millisecond here, which
// is the whole budget the proxy has.
//
// How it stays right:
// - A lease ended, suspended, extended or re-capped on this instance is invalidated before the
//   mutation answers (the event bus's observers); on another instance, as soon as the event log's
//   tail reaches this one (a nudge, within milliseconds). Expiry by time is checked on every
//   request against the clock.
// - Spend metered by this instance counts at once (`charge`), before its write-behind batch is
//   in the database; spend recorded elsewhere (reportUsage, other instances) arrives with its USAGE
//   event, which makes the next request refresh the figures in the background.
// - A refreshed snapshot plus what this instance metered but had not (surely) written when the
//   snapshot was read: a batch that commits during the read is counted twice until the next
//   refresh, never missed, so the estimate errs on the side of refusing.
// - Figures older than `refreshAfterMs` are refreshed in the background; older than `maxAgeMs`
//   (an idle lease), or from another UTC day, before the request is admitted. Key changes made
//   on this instance invalidate at once (`forgetKey`); on others within `refreshAfterMs` of use.
import { type Clock, utcDate } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../db/client.js';
import type { LeaseEventRecord } from '../events/bus.js';
import type { LeaseRefusal } from '../leases/refusals.js';
import type { Metrics } from '../metrics/metrics.js';

export interface Prices {
  prompt: string | number;
  completion: string | number;
}

/** A key as the proxy forwards to it. Amounts are whole micro-dollars, exact as numbers. */
export interface AdmittedKey {
  id: string;
  /** OPENROUTER, VENICE or OPENAI_COMPATIBLE: what the provider can say about a request afterwards. */
  provider: string;
  active: boolean;
  /** Where requests go: the base URL's origin, and its path prefix (e.g. `/api/v1`). */
  origin: string;
  basePath: string;
  secret: string;
  prices: Record<string, Prices> | undefined;
  dailyLimit: number | null;
  monthlyLimit: number | null;
  /** The UTC day and month the spend figures belong to. */
  day: string;
  month: string;
  spentToday: number;
  spentThisMonth: number;
  /** Metered here and not yet written by the meter's batches. */
  pending: number;
  /** Metered here in all, a running total used to tell what a refresh may have missed. */
  charged: number;
  ciphertext: string;
  staticSeq: number;
  spendSeq: number;
}

interface LeaseState {
  id: string;
  key: AdmittedKey | undefined;
  status: string;
  expiresAt: number;
  cap: number;
  used: number;
  pending: number;
  charged: number;
  loadedAt: number;
  /** Must be read again before the next admission (ended or changed elsewhere, or never read). */
  invalid: boolean;
  /** May be refreshed in the background (spend recorded somewhere). */
  stale: boolean;
  /** Bumped by every invalidation: a read that began before one cannot clear it. */
  generation: number;
  loading: Promise<void> | undefined;
  /**
   * On a MINT key, the lease's own minted secret, which requests go upstream with: null while the
   * minted key is not ready (being created or replaced); undefined on a SHARED key.
   */
  mintedSecret: string | null | undefined;
  mintedCiphertext: string;
}

export type AdmissionVerdict =
  /** `mintedSecret`: the lease's own provider key (a MINT key), null while it is not ready yet. */
  | { admitted: true; leaseId: string; key: AdmittedKey; mintedSecret: string | null | undefined }
  /** `used` and `cap` in micro-dollars, for the refusal's message. */
  | { admitted: false; refusal: LeaseRefusal; leaseId: string; used: number; cap: number };

export interface SnapshotRow {
  status: string | null;
  expiresAt: Date;
  used: bigint;
  cap: bigint;
  keyId: string;
  provider: string;
  keyStatus: string;
  baseUrl: string;
  secretCiphertext: string;
  config: { prices?: Record<string, Prices> } | null;
  dailyLimit: bigint | null;
  monthlyLimit: bigint | null;
  spentToday: bigint;
  spentThisMonth: bigint;
  mode: string;
  mintedId: string | null;
  mintedCiphertext: string | null;
  mintedReady: boolean | null;
}

const micros = (value: bigint | null) => (value === null ? null : Number(value));

/**
 * What admission needs of a lease and its key, in whole micro-dollars; the key's spend is that of
 * the current UTC day and month (mpk_window_spend, the rule the ledger keeps the windows by).
 * Spend is kept to 12 decimals and rounded down to whole micro-dollars here: caps and limits are
 * whole micro-dollars, and for a whole number c, spend >= c exactly when floor(spend) >= c, so the
 * comparison stays exact.
 */
export async function readSnapshot(
  db: Db,
  leaseId: string,
  day: string,
  month: string,
): Promise<SnapshotRow | undefined> {
  const [row] = await db.$queryRaw<SnapshotRow[]>`
    SELECT l.status::text AS status, l."expiresAt",
           floor(l."usageUsd" * 1000000)::bigint AS used, (l."spendCapUsd" * 1000000)::bigint AS cap,
           k.id::text AS "keyId", k.provider::text, k.status::text AS "keyStatus", k."baseUrl", k."secretCiphertext", k.config,
           (k."dailyLimitUsd" * 1000000)::bigint AS "dailyLimit",
           (k."monthlyLimitUsd" * 1000000)::bigint AS "monthlyLimit",
           floor(mpk_window_spend(k."spendDay", k."spendTodayUsd", ${day}::date) * 1000000)::bigint AS "spentToday",
           floor(mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", ${month}::date) * 1000000)::bigint
             AS "spentThisMonth",
           k.mode::text AS mode, m.id::text AS "mintedId", m."secretCiphertext" AS "mintedCiphertext",
           -- Ready: created, and not waiting to be made anew (a lease brought back from expiry).
           m.status = 'ACTIVE' AND m."secretCiphertext" IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM "ProviderJob" j WHERE j."mintedKeyId" = m.id AND j.kind = 'CREATE'
                               AND j.status <> 'DONE') AS "mintedReady"
    FROM "Lease" l JOIN "ManagedKey" k ON k.id = l."keyId" LEFT JOIN "MintedKey" m ON m."leaseId" = l.id
    WHERE l.id = ${leaseId}::uuid`;
  return row;
}

/**
 * The in-memory copy of mpk_lease_refusal, the rule a request is admitted by: the lease not ended,
 * unexpired and on an ACTIVE key (else LEASE_NOT_ACTIVE), neither suspended nor at its cap
 * (mpk_lease_over_cap; else LEASE_SPEND_CAP_REACHED), its key under its limits
 * (mpk_key_under_limits; else QUOTA_EXHAUSTED). The proxy must decide without a round trip, so the
 * rule runs here too; a test feeds the same cases to both and holds them to the same answers.
 */
export function admissionRefusal(
  lease: { status: string; expiresAt: number; used: number; cap: number },
  key:
    | {
        active: boolean;
        dailyLimit: number | null;
        monthlyLimit: number | null;
        spentToday: number;
        spentThisMonth: number;
      }
    | undefined,
  nowMs: number,
): LeaseRefusal | null {
  const ended = lease.status !== 'ACTIVE' && lease.status !== 'SUSPENDED';
  if (ended || lease.expiresAt <= nowMs || !key?.active) return 'LEASE_NOT_ACTIVE';
  if (lease.status === 'SUSPENDED' || lease.used >= lease.cap) return 'LEASE_SPEND_CAP_REACHED';
  const underLimits =
    (key.dailyLimit === null || key.spentToday < key.dailyLimit) &&
    (key.monthlyLimit === null || key.spentThisMonth < key.monthlyLimit);
  return underLimits ? null : 'QUOTA_EXHAUSTED';
}

export function createAdmissionCache(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  reveal: (keyId: string, ciphertext: string) => string;
  refreshAfterMs?: number;
  maxAgeMs?: number;
  maxLeases?: number;
  metrics?: Pick<Metrics, 'admissionRefresh' | 'admissionRefused'>;
}) {
  const { db, clock, logger, reveal, metrics } = deps;
  const refreshAfterMs = deps.refreshAfterMs ?? 250;
  const maxAgeMs = deps.maxAgeMs ?? 2_000;
  const maxLeases = deps.maxLeases ?? 50_000;
  const leases = new Map<string, LeaseState>();
  // The current UTC day as a string, recomputed only when the clock leaves it.
  let today = { day: '', from: 0, to: 0 };
  const dayOf = (now: Date) => {
    const ms = now.getTime();
    if (ms < today.from || ms >= today.to) {
      const from = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      today = { day: utcDate(now, 'day'), from, to: from + 86_400_000 };
    }
    return today.day;
  };
  const keys = new Map<string, AdmittedKey>();
  let seq = 0;

  function leaseState(id: string): LeaseState {
    let state = leases.get(id);
    if (!state) {
      if (leases.size >= maxLeases) evict();
      state = {
        id,
        key: undefined,
        status: '',
        expiresAt: 0,
        cap: 0,
        used: 0,
        pending: 0,
        charged: 0,
        loadedAt: 0,
        invalid: true,
        stale: false,
        generation: 0,
        loading: undefined,
        mintedSecret: undefined,
        mintedCiphertext: '',
      };
      leases.set(id, state);
    }
    return state;
  }

  /** Drops the oldest tenth of the leases that have nothing in flight (Map keeps insertion order). */
  function evict() {
    let budget = Math.ceil(maxLeases / 10);
    for (const [id, state] of leases) {
      if (budget-- <= 0) break;
      if (state.pending === 0 && !state.loading) leases.delete(id);
    }
  }

  async function read(state: LeaseState): Promise<void> {
    const started = ++seq;
    const key = state.key;
    const leaseMark = { pending: state.pending, charged: state.charged };
    const keyMark = key && { pending: key.pending, charged: key.charged };
    const now = clock.now();
    const day = utcDate(now, 'day');
    const month = utcDate(now, 'month');
    const row = await readSnapshot(db, state.id, day, month);
    if (!row) {
      state.status = 'MISSING';
    } else {
      state.status = row.status ?? 'MISSING';
      state.expiresAt = row.expiresAt.getTime();
      state.cap = Number(row.cap);
      // The snapshot, plus what was unwritten when it was taken, plus what was metered since.
      state.used = Number(row.used) + leaseMark.pending + (state.charged - leaseMark.charged);
      state.key = applyKey(row, started, day, month, key?.id === row.keyId ? keyMark : undefined);
      applyMinted(state, row);
    }
    state.loadedAt = performance.now();
  }

  function applyKey(
    row: SnapshotRow,
    started: number,
    day: string,
    month: string,
    mark: { pending: number; charged: number } | undefined,
  ): AdmittedKey {
    let key = keys.get(row.keyId);
    if (!key) {
      key = {
        id: row.keyId,
        provider: row.provider,
        active: false,
        origin: '',
        basePath: '',
        secret: '',
        prices: undefined,
        dailyLimit: null,
        monthlyLimit: null,
        day,
        month,
        spentToday: Number(row.spentToday),
        spentThisMonth: Number(row.spentThisMonth),
        pending: 0,
        charged: 0,
        ciphertext: '',
        staticSeq: 0,
        spendSeq: started,
      };
      keys.set(row.keyId, key);
    }
    if (started > key.staticSeq) {
      key.staticSeq = started;
      key.active = row.keyStatus === 'ACTIVE';
      const base = new URL(row.baseUrl);
      key.origin = base.origin;
      key.basePath = base.pathname.replace(/\/+$/, '');
      if (row.secretCiphertext !== key.ciphertext) {
        key.secret = reveal(row.keyId, row.secretCiphertext);
        key.ciphertext = row.secretCiphertext;
      }
      key.prices = row.config?.prices;
      key.dailyLimit = micros(row.dailyLimit);
      key.monthlyLimit = micros(row.monthlyLimit);
    }
    // Spend can only be taken from a read that knew what this instance had unwritten for the key
    // when it began; a lease's first read did not, and leaves the key's figures to later reads.
    if (mark && started > key.spendSeq) {
      key.spendSeq = started;
      const since = mark.pending + (key.charged - mark.charged);
      key.spentToday = Number(row.spentToday) + since;
      key.spentThisMonth = Number(row.spentThisMonth) + since;
      key.day = day;
      key.month = month;
    }
    return key;
  }

  /** The lease's minted secret, decrypted only when its ciphertext changed (a new key). */
  function applyMinted(state: LeaseState, row: SnapshotRow) {
    if (row.mode !== 'MINT') {
      state.mintedSecret = undefined;
    } else if (!row.mintedReady || !row.mintedCiphertext || !row.mintedId) {
      state.mintedSecret = null;
    } else if (row.mintedCiphertext !== state.mintedCiphertext || !state.mintedSecret) {
      state.mintedSecret = reveal(row.mintedId, row.mintedCiphertext);
      state.mintedCiphertext = row.mintedCiphertext;
    }
  }

  function load(state: LeaseState): Promise<void> {
    const generation = state.generation;
    state.loading ??= read(state)
      .then(() => {
        // Invalidated while reading: what was read may predate the change, so read again. A minted
        // key not ready yet is read again at the next request: the runner makes it without an event.
        if (state.generation === generation) state.invalid = state.mintedSecret === null;
      })
      .finally(() => {
        state.loading = undefined;
      });
    return state.loading;
  }

  /** Whether the figures cannot be used as they are: invalidated, too old, or from another day. */
  function mustRead(state: LeaseState, now: Date) {
    return (
      state.invalid ||
      performance.now() - state.loadedAt > maxAgeMs ||
      (state.key !== undefined && state.key.day !== dayOf(now))
    );
  }

  /**
   * Reads until the figures are current. A read already under way may have begun before the
   * change that invalidated them: it lands first, and is followed by a read of this request's own.
   */
  async function readCurrent(state: LeaseState) {
    for (let attempt = 0; attempt < 3 && mustRead(state, clock.now()); attempt++) {
      if (state.loading) await state.loading.catch(() => undefined);
      else await load(state);
    }
  }

  function invalidate(state: LeaseState) {
    state.invalid = true;
    state.generation++;
  }

  function verdict(state: LeaseState, nowMs: number): AdmissionVerdict {
    const refusal = admissionRefusal(state, state.key, nowMs);
    if (refusal) metrics?.admissionRefused(refusal);
    return refusal
      ? { admitted: false, refusal, leaseId: state.id, used: state.used, cap: state.cap }
      : { admitted: true, leaseId: state.id, key: state.key!, mintedSecret: state.mintedSecret };
  }

  return {
    /** Whether a request on the lease may go ahead now; synchronous when the figures are fresh. */
    admit(leaseId: string): AdmissionVerdict | Promise<AdmissionVerdict> {
      const state = leaseState(leaseId);
      const now = clock.now();
      if (mustRead(state, now)) {
        metrics?.admissionRefresh('blocking');
        return readCurrent(state).then(() => verdict(state, clock.now().getTime()));
      }
      if (state.stale || performance.now() - state.loadedAt > refreshAfterMs) {
        state.stale = false;
        if (!state.loading) {
          metrics?.admissionRefresh('background');
          load(state).catch((err) => {
            state.stale = true;
            logger.warn({ err, leaseId }, 'admission refresh failed');
          });
        }
      }
      return verdict(state, now.getTime());
    },

    /** Counts what a request just metered here, before its batch is written. */
    charge(leaseId: string, keyId: string, amount: number) {
      const lease = leaseState(leaseId);
      lease.used += amount;
      lease.pending += amount;
      lease.charged += amount;
      const key = keys.get(keyId);
      if (key) {
        key.spentToday += amount;
        key.spentThisMonth += amount;
        key.pending += amount;
        key.charged += amount;
      }
    },

    /** A meter batch was written (or given up): its amounts are now the database's to report. */
    settled(batch: readonly { leaseId: string; keyId: string; micros: number }[]) {
      for (const item of batch) {
        const lease = leases.get(item.leaseId);
        if (lease) {
          lease.pending -= item.micros;
          lease.stale = true;
        }
        const key = keys.get(item.keyId);
        if (key) key.pending -= item.micros;
      }
    },

    /** Lease events from this instance (at once) and from the log (every instance). */
    observe(events: readonly Pick<LeaseEventRecord, 'type' | 'leaseId'>[]) {
      for (const event of events) {
        const state = leases.get(event.leaseId);
        if (!state) continue;
        if (event.type === 'USAGE') state.stale = true;
        else invalidate(state);
      }
    },

    /** A key's settings changed on this instance: its leases are read again before the next request. */
    forgetKey(keyId: string) {
      for (const state of leases.values()) if (state.key?.id === keyId) invalidate(state);
    },
  };
}
export type AdmissionCache = ReturnType<typeof createAdmissionCache>;
