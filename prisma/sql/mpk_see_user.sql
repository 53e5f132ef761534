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
