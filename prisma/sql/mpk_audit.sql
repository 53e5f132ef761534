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
