// Prometheus metrics of one MPK instance: a registry of its own (several apps in one process, as in
// the tests, never share one) and the instruments the services record on. Services see only the
// small recording functions they call (`Pick<Metrics, ...>`, optional in their deps); figures that
// already live somewhere (unwritten metering, open subscriptions, leadership, active leases) are
// read when Prometheus scrapes, through `watch`. Every label has a bounded set of values: no lease,
// user or request id is ever one. The one id that is a label, `key` on mpk_leases_active, is a pool
// key's id: there are as many as the pool has keys, tens, not the leases' thousands.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { LeaseEventRecord } from '../events/bus.js';

/** Where the pump found each batch of the event log, for the read lag. */
type TimedEvent = Pick<LeaseEventRecord, 'at'>;

export interface ActiveLeaseCount {
  tier: string;
  keyId: string;
  count: number;
}

/** The figures a scrape reads where they live. */
export interface MetricSources {
  /** ACTIVE leases by tier and key, from the database. */
  activeLeases?: () => Promise<ActiveLeaseCount[]>;
  /** Requests metered and not yet written (the meter buffer's queue). */
  unwrittenMetering?: () => number;
  /** What is held open on this instance: subscriptions (any transport) and WebSocket connections. */
  subscribers?: () => { subscriptions: number; connections: number };
  /** Whether this instance runs the scheduler now. */
  schedulerLeader?: () => boolean;
  /** Unfinished provider jobs on minted keys by status (PENDING, RUNNING, IRRECOVERABLE), from the database. */
  providerJobs?: () => Promise<{ status: string; count: number }[]>;
  /** Told when a source fails during a scrape (the scrape goes on without its figures). */
  onError?: (error: unknown, source: string) => void;
}

/** How long a scrape may wait for the database's lease counts before it answers without them. */
const SOURCE_TIMEOUT_MS = 2_000;
/** Scrapes within this long of the last read share its active lease counts (several Prometheus servers). */
const ACTIVE_LEASES_TTL_MS = 1_000;

const seconds = (ms: number) => ms / 1000;

/** A duration that came out negative (a clock moved back) counts as 0. */
const notNegative = (value: number) => Math.max(value, 0);

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: 'mpk_' });
  let sources: MetricSources = {};

  // ---- leases --------------------------------------------------------------------------------
  let activeLeasesRead: { at: number; rows: Promise<ActiveLeaseCount[]> } | undefined;
  new Gauge({
    name: 'mpk_leases_active',
    help: 'ACTIVE leases by tier and key (a pool key id; the pool is small), read from the database at scrape',
    labelNames: ['tier', 'key'],
    registers,
    async collect() {
      this.reset();
      const read = sources.activeLeases;
      if (!read) return;
      if (!activeLeasesRead || Date.now() - activeLeasesRead.at > ACTIVE_LEASES_TTL_MS) {
        activeLeasesRead = { at: Date.now(), rows: withTimeout(read(), SOURCE_TIMEOUT_MS) };
      }
      try {
        for (const row of await activeLeasesRead.rows) this.set({ tier: row.tier, key: row.keyId }, row.count);
      } catch (error) {
        activeLeasesRead = undefined;
        sources.onError?.(error, 'mpk_leases_active');
      }
    },
  });
  const grants = new Counter({
    name: 'mpk_lease_grants_total',
    help: 'Leases granted by this instance, by tier',
    labelNames: ['tier'],
    registers,
  });
  const leaseRefusals = new Counter({
    name: 'mpk_lease_refusals_total',
    help: 'Lease requests (requestLease) and resolutions (resolveLease) refused, by operation and code',
    labelNames: ['operation', 'code'],
    registers,
  });
  const expiries = new Counter({
    name: 'mpk_lease_expiries_total',
    help: 'Leases expired by this instance (by the expiry job, or found overdue by a request)',
    registers,
  });
  const expiryLateness = new Histogram({
    name: 'mpk_lease_expiry_lateness_seconds',
    help: "How long after its expiresAt a lease was expired (the expiry job's delay)",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600],
    registers,
  });

  // ---- metering proxy ------------------------------------------------------------------------
  const proxyRequests = new Counter({
    name: 'mpk_proxy_requests_total',
    help: 'Requests to the metering proxy (/v1) by route and HTTP status (499: the client left before an answer)',
    labelNames: ['route', 'status'],
    registers,
  });
  const upstreamSeconds = new Histogram({
    name: 'mpk_proxy_upstream_seconds',
    help: "Time from sending a proxied request to the provider to the end of the provider's answer, by route",
    labelNames: ['route'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers,
  });
  const addedSeconds = new Histogram({
    name: 'mpk_proxy_added_seconds',
    help: "MPK's own time before a proxied request leaves for the provider: checks and admission, not the client's upload",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });

  // ---- metering writes -----------------------------------------------------------------------
  const batchSize = new Histogram({
    name: 'mpk_meter_batch_size',
    help: 'Metered requests per batch written to the usage ledger',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
    registers,
  });
  const writeSeconds = new Histogram({
    name: 'mpk_meter_write_seconds',
    help: 'Time to write one metering batch, by outcome (ok, error: kept and retried)',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers,
  });
  new Gauge({
    name: 'mpk_meter_unwritten_requests',
    help: 'Requests metered by this instance and not yet written to the usage ledger',
    registers,
    collect() {
      this.set(sources.unwrittenMetering?.() ?? 0);
    },
  });

  // ---- admission cache -----------------------------------------------------------------------
  const admissionRefreshes = new Counter({
    name: 'mpk_admission_refreshes_total',
    help: "Admission cache reads of a lease's figures: blocking (the request waited), background (it did not)",
    labelNames: ['mode'],
    registers,
  });
  const admissionRefusals = new Counter({
    name: 'mpk_admission_refusals_total',
    help: 'Proxied requests refused by the admission cache, by reason',
    labelNames: ['reason'],
    registers,
  });

  // ---- events and scheduler ------------------------------------------------------------------
  new Gauge({
    name: 'mpk_subscribers_connected',
    help: 'Open on this instance: subscriptions (WebSocket and SSE) and WebSocket connections',
    labelNames: ['kind'],
    registers,
    collect() {
      const open = sources.subscribers?.() ?? { subscriptions: 0, connections: 0 };
      this.set({ kind: 'subscriptions' }, open.subscriptions);
      this.set({ kind: 'connections' }, open.connections);
    },
  });
  const readLag = new Histogram({
    name: 'mpk_event_log_read_lag_seconds',
    help: "Time from a lease event to this instance's read of it from the event log (oldest event of each read)",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  new Gauge({
    name: 'mpk_scheduler_leader',
    help: 'Whether this instance runs the scheduler (lease expiry, reconciliation): 1 or 0',
    registers,
    collect() {
      this.set(sources.schedulerLeader?.() ? 1 : 0);
    },
  });

  // ---- minted keys ---------------------------------------------------------------------------
  new Gauge({
    name: 'mpk_provider_jobs',
    help: 'Unfinished provider jobs on minted keys by status (IRRECOVERABLE ones wait for an admin), read at scrape',
    labelNames: ['status'],
    registers,
    async collect() {
      this.reset();
      const read = sources.providerJobs;
      if (!read) return;
      try {
        for (const row of await withTimeout(read(), SOURCE_TIMEOUT_MS)) this.set({ status: row.status }, row.count);
      } catch (error) {
        sources.onError?.(error, 'mpk_provider_jobs');
      }
    },
  });
  const providerJobRuns = new Counter({
    name: 'mpk_provider_job_runs_total',
    help: "Provider job runs on this instance by kind and outcome: done, retry (failed, tried again later), irrecoverable, deferred (Venice's creation rate)",
    labelNames: ['kind', 'outcome'],
    registers,
  });

  return {
    registry,
    /** A provider job ran (the job runner's). */
    providerJobRun(kind: string, outcome: 'done' | 'retry' | 'irrecoverable' | 'deferred') {
      providerJobRuns.inc({ kind, outcome });
    },
    /** The figures read at scrape time; called once the app has built what holds them. */
    watch(given: MetricSources) {
      sources = { ...sources, ...given };
    },
    /** The text a scrape answers, and its content type. */
    render: () => registry.metrics(),
    contentType: registry.contentType,

    /**
     * Lease events committed on this instance (the event bus's observer): grants by tier, expiries
     * and their lateness (the event's time past the lease's expiresAt).
     */
    leaseEvents(events: readonly LeaseEventRecord[]) {
      for (const event of events) {
        const details = event.details as { tier?: string; expiresAt?: string } | null;
        if (event.type === 'GRANTED') grants.inc({ tier: details?.tier ?? 'unknown' });
        else if (event.type === 'EXPIRED') {
          expiries.inc();
          const due = details?.expiresAt ? Date.parse(utc(details.expiresAt)) : Number.NaN;
          if (!Number.isNaN(due)) expiryLateness.observe(seconds(notNegative(event.at.getTime() - due)));
        }
      }
    },
    leaseRefused(operation: 'requestLease' | 'resolveLease', code: string) {
      leaseRefusals.inc({ operation, code });
    },

    proxyRequest(route: string, status: number | 'client-gone') {
      proxyRequests.inc({ route, status: status === 'client-gone' ? '499' : String(status) });
    },
    /** A request that went to the provider: its upstream time and the time MPK took before sending it. */
    proxyForwarded(route: string, upstreamMs: number, addedMs: number) {
      upstreamSeconds.observe({ route }, seconds(upstreamMs));
      addedSeconds.observe(seconds(notNegative(addedMs)));
    },

    /** The usage ledger's batch writer, timed and counted (the meter buffer writes through it). */
    timedBatches<B extends readonly unknown[], R>(recordBatch: (batch: B) => Promise<R>) {
      return async (batch: B): Promise<R> => {
        const started = performance.now();
        try {
          const result = await recordBatch(batch);
          writeSeconds.observe({ outcome: 'ok' }, seconds(performance.now() - started));
          batchSize.observe(batch.length);
          return result;
        } catch (error) {
          writeSeconds.observe({ outcome: 'error' }, seconds(performance.now() - started));
          throw error;
        }
      };
    },

    admissionRefresh(mode: 'blocking' | 'background') {
      admissionRefreshes.inc({ mode });
    },
    admissionRefused(reason: string) {
      admissionRefusals.inc({ reason });
    },

    /** A batch the event pump read from the log: the lag of its oldest event. */
    eventsRead(events: readonly TimedEvent[]) {
      const oldest = events[0];
      if (oldest) readLag.observe(seconds(notNegative(Date.now() - oldest.at.getTime())));
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/** A timestamp from jsonb (a `timestamp` column, no zone) is UTC, as every time MPK stores. */
const utc = (text: string) => (/(Z|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`);
