-- mpk_window_spend: what a key has spent in the current UTC window (a day or a month). The key's
-- row keeps the window it last counted in and the spend in it; a window that is not the current
-- one reads as zero, so a new day or month starts at zero and no job ever resets anything.
CREATE OR REPLACE FUNCTION mpk_window_spend(p_window date, p_spent numeric, p_current date)
RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_window = p_current THEN p_spent ELSE 0 END
$$;
