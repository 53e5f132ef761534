-- mpk_month_partition: the partition of a history table (LeaseEvent, AuditEntry, UsageRecord; each
-- partitioned by RANGE on "at", one partition per UTC month, plus a DEFAULT partition) for the
-- month holding p_month, named "<table>_YYYY_MM". Created only if missing. Rows the DEFAULT
-- partition already holds for that month (written before the partition existed) are moved into
-- the new partition in this transaction, before it is attached: PostgreSQL refuses to attach a
-- range that the DEFAULT partition still has rows in. The DEFAULT partition is locked first, so no
-- write can slip a row of the month into it meanwhile (writes to other partitions go on).
-- Returns the rows moved, or NULL when the partition existed already.
CREATE OR REPLACE FUNCTION mpk_month_partition(p_table text, p_month date)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_from date := date_trunc('month', p_month)::date;
  v_to date := (date_trunc('month', p_month) + interval '1 month')::date;
  v_name text := p_table || '_' || to_char(date_trunc('month', p_month), 'YYYY_MM');
  v_moved bigint;
BEGIN
  IF p_table NOT IN ('LeaseEvent', 'AuditEntry', 'UsageRecord') THEN
    RAISE EXCEPTION 'mpk_month_partition: % is not a history table', p_table;
  END IF;
  IF to_regclass(format('%I', v_name)) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p_table || '_default');
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', v_name, p_table);
  EXECUTE format(
    'WITH moved AS (DELETE FROM %I WHERE at >= %L AND at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
    p_table || '_default', v_from, v_to, v_name);
  GET DIAGNOSTICS v_moved = ROW_COUNT;
  EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', p_table, v_name, v_from, v_to);
  RETURN v_moved;
END;
$$;
