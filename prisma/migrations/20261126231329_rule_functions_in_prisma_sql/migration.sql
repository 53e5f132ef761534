-- DropIndex
DROP INDEX "Lease_tokenHash_key";

-- AlterTable
ALTER TABLE "Lease" DROP COLUMN "tokenHash";

-- mpk_window_spend: copied from prisma/sql/mpk_window_spend.sql
-- mpk_window_spend: what a key has spent in the current UTC window (a day or a month). The key's
-- row keeps the window it last counted in and the spend in it; a window that is not the current
-- one reads as zero, so a new day or month starts at zero and no job ever resets anything.
CREATE OR REPLACE FUNCTION mpk_window_spend(p_window date, p_spent numeric, p_current date)
RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_window = p_current THEN p_spent ELSE 0 END
$$;

-- mpk_key_under_limits: copied from prisma/sql/mpk_key_under_limits.sql
-- mpk_key_under_limits: a key may still spend: its spend in the current UTC day is under its daily
-- limit and its spend in the current UTC month under its monthly limit (a missing limit allows
-- anything; a limit of zero allows nothing). The one definition of "over its limit", for grants,
-- bringing a lease back, resolution and the proxy's admission.
CREATE OR REPLACE FUNCTION mpk_key_under_limits(k "ManagedKey", p_day date, p_month date)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT (k."dailyLimitUsd" IS NULL OR mpk_window_spend(k."spendDay", k."spendTodayUsd", p_day) < k."dailyLimitUsd")
     AND (k."monthlyLimitUsd" IS NULL OR mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", p_month) < k."monthlyLimitUsd")
$$;

-- mpk_key_has_room: copied from prisma/sql/mpk_key_has_room.sql
-- mpk_key_has_room: a key can take one more lease now: it is ACTIVE, under its cap on active
-- leases, and under its spend limits. The one definition of "full", for grants and for bringing a
-- lease back.
CREATE OR REPLACE FUNCTION mpk_key_has_room(k "ManagedKey", p_day date, p_month date)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT k.status = 'ACTIVE'
     AND (k."maxActiveLeases" IS NULL OR k."activeLeaseCount" < k."maxActiveLeases")
     AND mpk_key_under_limits(k, p_day, p_month)
$$;

-- mpk_lease_over_cap: copied from prisma/sql/mpk_lease_over_cap.sql
-- mpk_lease_over_cap: a lease has spent its cap (and so is suspended, or stays so). The one
-- definition, for the ledger, the suspension and a change of cap.
CREATE OR REPLACE FUNCTION mpk_lease_over_cap(l "Lease")
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT l."usageUsd" >= l."spendCapUsd"
$$;

-- mpk_user_has_room: copied from prisma/sql/mpk_user_has_room.sql
-- mpk_user_has_room: a user may hold one more active lease: their active leases are under their
-- tier's limit. The one definition of the tier limit, for grants and for bringing a lease back.
CREATE OR REPLACE FUNCTION mpk_user_has_room(p_user_id text)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT u."activeLeaseCount" < p."maxActiveLeases" FROM "User" u JOIN "TierPolicy" p ON p.tier = u.tier WHERE u.id = p_user_id), false)
$$;

-- mpk_audit: copied from prisma/sql/mpk_audit.sql
-- mpk_audit: the one writer of audit entries, for the service layer (audit.record) and for the
-- statements and functions that change leases in SQL. Details never hold a secret: callers pass
-- masked values only.
CREATE OR REPLACE FUNCTION mpk_audit(
  p_at timestamp(3),
  p_actor_id text,
  p_actor_role "Role",
  p_action text,
  p_target_type text,
  p_target_id text,
  p_details jsonb
) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
  VALUES (p_at, p_actor_id, p_actor_role, p_action, p_target_type, p_target_id, coalesce(p_details, '{}'::jsonb))
  RETURNING id
$$;

-- mpk_see_user: copied from prisma/sql/mpk_see_user.sql
-- mpk_see_user: the one rule for a user seen in a token: created on first sight (tier FREE); the
-- role follows the latest token, and so does the email, except that a token without one never
-- erases an email already known. Returns the row, locked for the caller's transaction.
CREATE OR REPLACE FUNCTION mpk_see_user(p_id text, p_email text, p_role "Role", p_now timestamp(3))
RETURNS SETOF "User"
LANGUAGE sql VOLATILE AS $$
  INSERT INTO "User" (id, email, role, "createdAt", "updatedAt") VALUES (p_id, p_email, p_role, p_now, p_now)
  ON CONFLICT (id) DO UPDATE SET email = coalesce(EXCLUDED.email, "User".email), role = EXCLUDED.role, "updatedAt" = EXCLUDED."updatedAt"
  RETURNING *
$$;

-- mpk_grant_lease: copied from prisma/sql/mpk_grant_lease.sql
-- mpk_grant_lease: a whole lease grant in one call, so the per-provider lock that keeps the pool
-- balanced is held for the body of this function and its commit, not across client round trips.
-- In READ COMMITTED each statement of a volatile function takes a fresh snapshot: every check
-- below sees what was committed by whoever held the user row or the provider lock before us.
--
-- Outcomes: GRANTED, EXISTING (the agent already holds an active lease: that one is returned),
-- OVERDUE (the user holds leases past their expiry: the caller expires them and calls again).
-- Refusals raise MPK's own SQLSTATEs, MK001 (the tier's limit: DETAIL '<tier>:<max>') and MK002 (no
-- key has room), so that the statement rolls back whole and a refused request changes nothing; the
-- lease service maps them by code.
CREATE OR REPLACE FUNCTION mpk_grant_lease(
  p_lease_id uuid,
  p_user_id text,
  p_email text,
  p_role "Role",
  p_provider "Provider",
  p_framework "Framework",
  p_agent_id text,
  p_now timestamp(3),
  p_day date,
  p_month date
) RETURNS TABLE (outcome text, lease_id uuid, event_id bigint, tier text, max_active integer, details jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_user "User"%ROWTYPE;
  v_policy "TierPolicy"%ROWTYPE;
  v_existing uuid;
  v_key uuid;
  v_expires timestamp(3);
  v_event bigint;
  v_details jsonb;
BEGIN
  -- Locks the user row: one user's grants queue here, so the checks below cannot race.
  SELECT * INTO v_user FROM mpk_see_user(p_user_id, p_email, p_role, p_now);
  SELECT * INTO v_policy FROM "TierPolicy" p WHERE p.tier = v_user.tier;

  IF p_agent_id IS NOT NULL THEN
    SELECT l.id INTO v_existing FROM "Lease" l
    WHERE l."userId" = p_user_id AND l."agentId" = p_agent_id AND l.status = 'ACTIVE' AND l."expiresAt" > p_now AND l.provider = p_provider
    ORDER BY l."grantedAt" DESC LIMIT 1;
    IF v_existing IS NOT NULL THEN
      RETURN QUERY SELECT 'EXISTING'::text, v_existing, NULL::bigint, v_user.tier::text, v_policy."maxActiveLeases", NULL::jsonb;
      RETURN;
    END IF;
  END IF;

  IF EXISTS (SELECT 1 FROM "Lease" l WHERE l."userId" = p_user_id AND l.status = 'ACTIVE' AND l."expiresAt" <= p_now) THEN
    RETURN QUERY SELECT 'OVERDUE'::text, NULL::uuid, NULL::bigint, v_user.tier::text, v_policy."maxActiveLeases", NULL::jsonb;
    RETURN;
  END IF;

  IF NOT mpk_user_has_room(p_user_id) THEN
    RAISE EXCEPTION USING ERRCODE = 'MK001', MESSAGE = 'tier limit reached', DETAIL = v_user.tier || ':' || v_policy."maxActiveLeases";
  END IF;

  -- One grant per provider at a time: the least-used key is then really the least used.
  PERFORM pg_advisory_xact_lock(hashtext('mpk:grant:' || p_provider::text));
  SELECT k.id INTO v_key FROM "ManagedKey" k
  WHERE k.provider = p_provider AND mpk_key_has_room(k, p_day, p_month)
  ORDER BY k."activeLeaseCount", k."lastGrantedAt" ASC NULLS FIRST, k.id
  LIMIT 1 FOR UPDATE;
  IF v_key IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'MK002', MESSAGE = 'no key available';
  END IF;

  v_expires := p_now + make_interval(secs => v_policy."leaseDurationSeconds");
  UPDATE "ManagedKey" SET "activeLeaseCount" = "activeLeaseCount" + 1, "lastGrantedAt" = p_now WHERE id = v_key;
  INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt", "expiresAt", "spendCapUsd", "createdAt", "updatedAt")
  VALUES (p_lease_id, p_user_id, v_key, 'ACTIVE', v_user.tier, p_provider, p_framework, p_agent_id, p_now, v_expires, v_policy."spendCapUsd", p_now, p_now);
  UPDATE "User" SET "activeLeaseCount" = "activeLeaseCount" + 1 WHERE id = p_user_id;
  v_details := jsonb_build_object(
    'provider', p_provider, 'framework', p_framework, 'agentId', p_agent_id, 'tier', v_user.tier, 'keyId', v_key,
    'expiresAt', to_char(v_expires, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
  PERFORM mpk_audit(p_now, p_user_id, p_role, 'lease.grant', 'Lease', p_lease_id::text, v_details);
  INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
  VALUES ('GRANTED', p_now, p_lease_id, p_user_id, v_key, p_agent_id, false, v_details)
  RETURNING id INTO v_event;
  RETURN QUERY SELECT 'GRANTED'::text, p_lease_id, v_event, v_user.tier::text, v_policy."maxActiveLeases", v_details;
END;
$$;

-- mpk_record_usage: copied from prisma/sql/mpk_record_usage.sql
-- mpk_record_usage: a batch of metered requests written in one call, so that the row locks on the
-- key and the lease are held for the body of this function and its commit, not across client
-- round trips (a busy lease is one row every batch has to lock).
--
-- Locks keys, then leases, each in id order (the global lock order without the users). Each
-- request counts once per (lease, requestId); lease totals and the key's UTC day and month spend
-- are increments. A request metered before midnight and written after counts in the ledger and
-- its lease's total, not in the new day's spend. One USAGE event per lease per batch.
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
    SELECT * FROM jsonb_to_recordset(p_rows)
      AS x("leaseId" uuid, "requestId" text, model text, "promptTokens" int, "completionTokens" int, "costUsd" numeric, "costSource" text, at timestamptz)
  ), ins AS (
    INSERT INTO "UsageRecord" ("leaseId", "keyId", "requestId", model, "promptTokens", "completionTokens", "costUsd", "costSource", at)
    SELECT i."leaseId", l."keyId", i."requestId", i.model, i."promptTokens", i."completionTokens", i."costUsd", i."costSource",
           coalesce(i.at AT TIME ZONE 'UTC', p_now)
    FROM input i JOIN "Lease" l ON l.id = i."leaseId"
    ON CONFLICT ("leaseId", "requestId") DO NOTHING
    RETURNING "UsageRecord"."leaseId", "UsageRecord"."keyId", "UsageRecord"."costUsd", "UsageRecord".at
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
