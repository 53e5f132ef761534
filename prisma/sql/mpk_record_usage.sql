-- mpk_record_usage: a batch of metered requests written in one call, so that the row locks on the
-- key and the lease are held for the body of this function and its commit, not across client
-- round trips (a busy lease is one row every batch has to lock).
--
-- Locks keys, then leases, each in id order (the global lock order without the users). Each
-- request counts once per (lease, requestId): the ledger is partitioned by month, so no unique
-- index can hold that pair (a unique index must include the partition key); instead the first
-- report of a pair in the batch is kept, and only if the ledger has none yet. That check is exact
-- because every writer of the ledger is this function and holds the lease's row lock: a batch of
-- the same lease waits above until this one commits, and the statement below, in a VOLATILE
-- function at READ COMMITTED, reads with a snapshot taken after the lock was granted. The check
-- probes (leaseId, requestId) in every month partition kept (a few): it is not bounded by the
-- lease's grant time, since a record's time comes from the metering clock, which nothing ties to
-- the grant's. Lease totals and the key's UTC day and month spend
-- are increments. A request metered before midnight and written after counts in the ledger and
-- its lease's total, not in the new day's spend. One USAGE event per lease per batch. The daily
-- rollups (UsageDaily, UsageLeaseDaily) are upserted in the same statement as the ledger rows.
-- Returns the events written, each row also carrying the ids of the leases that reached their
-- spend cap (the caller suspends those).
CREATE OR REPLACE FUNCTION mpk_record_usage(
  p_rows jsonb,
  p_now timestamp(3),
  p_day date,
  p_month date,
  p_reported_by text
) RETURNS TABLE (id bigint, type text, at timestamp(3), "leaseId" text, "userId" text, "keyId" text, "agentId" text, "stopAgent" boolean, details jsonb, capped text[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_leases uuid[];
BEGIN
  SELECT array_agg(DISTINCT (r->>'leaseId')::uuid) INTO v_leases FROM jsonb_array_elements(p_rows) r;
  PERFORM 1 FROM "ManagedKey" k WHERE k.id IN (SELECT l."keyId" FROM "Lease" l WHERE l.id = ANY(v_leases)) ORDER BY k.id FOR UPDATE;
  PERFORM 1 FROM "Lease" l WHERE l.id = ANY(v_leases) ORDER BY l.id FOR UPDATE;

  RETURN QUERY
  WITH input AS (
    -- In the batch's order, so that ledger ids follow the order requests were metered in.
    SELECT x.*, e.ord FROM jsonb_array_elements(p_rows) WITH ORDINALITY e(r, ord),
      jsonb_to_record(e.r)
      AS x("leaseId" uuid, "requestId" text, "providerRequestId" text, model text, "promptTokens" int,
           "completionTokens" int, "costUsd" numeric, "costSource" text, at timestamptz)
  ), fresh AS (
    -- The first report of each (lease, requestId) in the batch, unless the ledger has it already.
    SELECT DISTINCT ON (i."leaseId", i."requestId") i.*
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM "UsageRecord" u WHERE u."leaseId" = i."leaseId" AND u."requestId" = i."requestId")
    ORDER BY i."leaseId", i."requestId", i.ord
  ), ins AS (
    INSERT INTO "UsageRecord" ("leaseId", "keyId", "requestId", "providerRequestId", model, "promptTokens",
                               "completionTokens", "costUsd", "costSource", at)
    SELECT i."leaseId", l."keyId", i."requestId", i."providerRequestId", i.model, i."promptTokens",
           i."completionTokens", i."costUsd", i."costSource", coalesce(i.at AT TIME ZONE 'UTC', p_now)
    FROM fresh i JOIN "Lease" l ON l.id = i."leaseId"
    ORDER BY i.ord
    RETURNING "UsageRecord"."leaseId", "UsageRecord"."keyId", "UsageRecord"."costUsd", "UsageRecord".at,
              "UsageRecord".model, "UsageRecord"."promptTokens", "UsageRecord"."completionTokens"
  ), daily AS (
    -- The rollups, in the same statement as the rows they sum: spend series and each user's month
    -- read these, never the ledger. Keys and leases are locked above, so no two batches race here.
    INSERT INTO "UsageDaily" AS d (day, "keyId", model, "costUsd", requests, "promptTokens", "completionTokens")
    SELECT ins.at::date, ins."keyId", coalesce(ins.model, ''), sum(ins."costUsd"), count(*),
           coalesce(sum(ins."promptTokens"), 0), coalesce(sum(ins."completionTokens"), 0)
    FROM ins GROUP BY 1, 2, 3
    ON CONFLICT (day, "keyId", model) DO UPDATE SET
      "costUsd" = d."costUsd" + excluded."costUsd", requests = d.requests + excluded.requests,
      "promptTokens" = d."promptTokens" + excluded."promptTokens",
      "completionTokens" = d."completionTokens" + excluded."completionTokens"
  ), lease_daily AS (
    INSERT INTO "UsageLeaseDaily" AS d (day, "leaseId", "userId", "keyId", "costUsd", requests)
    SELECT ins.at::date, ins."leaseId", l."userId", ins."keyId", sum(ins."costUsd"), count(*)
    FROM ins JOIN "Lease" l ON l.id = ins."leaseId" GROUP BY 1, 2, 3, 4
    ON CONFLICT ("leaseId", day) DO UPDATE SET
      "costUsd" = d."costUsd" + excluded."costUsd", requests = d.requests + excluded.requests
  ), lease_totals AS (
    UPDATE "Lease" l SET "usageUsd" = l."usageUsd" + s.total, "requestCount" = l."requestCount" + s.n, "lastUsedAt" = p_now
    FROM (SELECT ins."leaseId", sum(ins."costUsd") AS total, count(*)::int AS n FROM ins GROUP BY 1) s WHERE l.id = s."leaseId"
    RETURNING l.id, l.status = 'ACTIVE' AND mpk_lease_over_cap(l) AS capped
  ), key_totals AS (
    UPDATE "ManagedKey" k SET
      "spendTodayUsd" = mpk_window_spend(k."spendDay", k."spendTodayUsd", p_day) + s.today,
      "spendDay" = p_day,
      "spendThisMonthUsd" = mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", p_month) + s.month,
      "spendMonth" = p_month,
      "lastUsedAt" = p_now
    FROM (SELECT ins."keyId",
                 coalesce(sum(ins."costUsd") FILTER (WHERE ins.at::date = p_day), 0) AS today,
                 coalesce(sum(ins."costUsd") FILTER (WHERE date_trunc('month', ins.at)::date = p_month), 0) AS month
          FROM ins GROUP BY 1) s WHERE k.id = s."keyId"
  ), event AS (
    INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
    SELECT 'USAGE', p_now, l.id, l."userId", l."keyId", l."agentId", false,
           jsonb_build_object('requests', s.n, 'costUsd', s.total::text, 'reportedBy', p_reported_by)
    FROM (SELECT ins."leaseId", count(*)::int AS n, sum(ins."costUsd") AS total FROM ins GROUP BY 1) s JOIN "Lease" l ON l.id = s."leaseId"
    RETURNING "LeaseEvent".id, "LeaseEvent".type::text, "LeaseEvent".at, "LeaseEvent"."leaseId"::text, "LeaseEvent"."userId",
              "LeaseEvent"."keyId"::text, "LeaseEvent"."agentId", "LeaseEvent"."stopAgent", "LeaseEvent".details
  )
  SELECT e.*, ARRAY(SELECT t.id::text FROM lease_totals t WHERE t.capped) FROM event e;
END;
$$;
