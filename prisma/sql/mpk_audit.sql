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
