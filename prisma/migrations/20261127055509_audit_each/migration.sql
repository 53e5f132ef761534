-- mpk_audit_each: copied from prisma/sql/mpk_audit_each.sql
-- mpk_audit_each: the one writer of audit entries: the same action by one actor on each of many
-- targets, in one INSERT (mpk_audit is its form for one target). A statement that changes a batch
-- of rows (an expiry batch) audits them all in one call: a call per row was a tenth of the batch's
-- time. p_target_ids and p_details pair up by position; details never hold a secret.
CREATE OR REPLACE FUNCTION mpk_audit_each(
  p_at timestamp(3),
  p_actor_id text,
  p_actor_role "Role",
  p_action text,
  p_target_type text,
  p_target_ids text[],
  p_details jsonb[]
) RETURNS SETOF bigint
LANGUAGE sql VOLATILE AS $$
  INSERT INTO "AuditEntry" (at, "actorId", "actorRole", action, "targetType", "targetId", details)
  SELECT p_at, p_actor_id, p_actor_role, p_action, p_target_type, t.id, coalesce(t.details, '{}'::jsonb)
  FROM unnest(p_target_ids, p_details) WITH ORDINALITY AS t(id, details, n)
  ORDER BY t.n
  RETURNING id
$$;

-- mpk_audit: copied from prisma/sql/mpk_audit.sql
-- mpk_audit: one audit entry, for the service layer (audit.record) and for the statements and
-- functions that change leases in SQL. It writes through mpk_audit_each, the one writer of audit
-- entries. Details never hold a secret: callers pass masked values only.
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
  SELECT mpk_audit_each(p_at, p_actor_id, p_actor_role, p_action, p_target_type, ARRAY[p_target_id], ARRAY[p_details])
$$;
