-- Migration 0008 (issue 17 item 6, decision 0114): each latest-state table (dim_operator,
-- fact_credit_record, fact_license, fact_spot_check, fact_complaint) becomes a table partitioned
-- by its key with one partition, run_partitions.<table>_latest (PARTITION BY HASH (key), MODULUS 1).
-- A publish that replaces the latest state whole (the first date, a rerun, a backfill) then loads
-- the rows into a table without indexes and attaches it in place of the partition, inside its
-- transaction, instead of deleting every row and COPYing into the indexed table; a publish of
-- change sets deletes and inserts through the table as before. Each table keeps its columns,
-- comments, key, indexes, owner, grants, row-level security, policies and rows.
-- The embedded default (SQLite) has no partitions: its file of this number does nothing.

CREATE FUNCTION pg_temp.rebuild_latest(t text, partitioned boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    old text := t || '_before_0008';
    owner text;
    pk text;
    key text;
    comment text;
    idx text[];
    r record;
BEGIN
    SELECT pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class') INTO owner, comment
        FROM pg_class c WHERE c.oid = t::regclass;
    SELECT pg_get_constraintdef(con.oid), a.attname INTO pk, key
        FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
        WHERE con.conrelid = t::regclass AND con.contype = 'p';
    SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}') INTO idx FROM pg_index i
        WHERE i.indrelid = t::regclass AND NOT i.indisprimary;
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
    FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = old::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, left(r.relname, 50) || '_0008');
    END LOOP;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING COMMENTS)%s', t, old,
                   CASE WHEN partitioned THEN format(' PARTITION BY HASH (%I)', key) ELSE '' END);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', t, t || '_pkey', pk);
    FOR i IN 1 .. coalesce(array_length(idx, 1), 0) LOOP
        EXECUTE idx[i];  -- CREATE INDEX <its name> ON public.<t> ...: the name t is the new table's now
    END LOOP;
    EXECUTE format('COMMENT ON TABLE %I IS %L', t, comment);
    EXECUTE format('ALTER TABLE %I OWNER TO %I', t, owner);
    FOR r IN SELECT a.grantee, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = old::regclass AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON %I TO %s', r.privilege_type, t,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;
    IF (SELECT relrowsecurity FROM pg_class WHERE oid = old::regclass) THEN
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    END IF;
    FOR r IN SELECT * FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = old LOOP
        EXECUTE format('CREATE POLICY %I ON %I AS %s FOR %s TO %s%s%s', r.policyname, t, r.permissive, r.cmd,
                       (SELECT string_agg(CASE WHEN x = 'public' THEN 'PUBLIC' ELSE quote_ident(x) END, ', ')
                        FROM unnest(r.roles) x),
                       CASE WHEN r.qual IS NULL THEN '' ELSE ' USING (' || r.qual || ')' END,
                       CASE WHEN r.with_check IS NULL THEN '' ELSE ' WITH CHECK (' || r.with_check || ')' END);
    END LOOP;
    IF partitioned THEN
        EXECUTE format('CREATE TABLE run_partitions.%I PARTITION OF %I FOR VALUES WITH (MODULUS 1, REMAINDER 0)',
                       t || '_latest', t);
        EXECUTE format('ALTER TABLE run_partitions.%I OWNER TO %I', t || '_latest', owner);
    END IF;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, old);
    EXECUTE format('DROP TABLE %I', old);  -- a partitioned one with its partition
END
$fn$;

SELECT pg_temp.rebuild_latest(t, true) FROM unnest(ARRAY['dim_operator', 'fact_credit_record', 'fact_license',
    'fact_spot_check', 'fact_complaint']) t;
DROP FUNCTION pg_temp.rebuild_latest(text, boolean);
