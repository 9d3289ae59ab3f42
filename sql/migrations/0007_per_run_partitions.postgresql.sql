-- Migration 0007 (issue 17 item 3, decision 0113): the per-run tables are partitioned by run date
-- (PARTITION BY LIST (run_date), one partition per run date, run_partitions.<table>_<YYYYMMDD>), so that
-- publish loads a run date's rows into a table of their own without indexes, builds its indexes
-- and attaches it inside its transaction. Each table keeps its columns, comments, key, indexes,
-- owner, grants, row-level security and policies; its rows move to their run dates' partitions.
-- The partitions live in the schema run_partitions, which the pipeline owns and nobody else may use:
-- departments read a table through its parent, whose grants and row-level security apply.
-- The embedded default (SQLite) has no partitions: its file of this number does nothing.

CREATE SCHEMA run_partitions AUTHORIZATION ecredit_pipeline;
COMMENT ON SCHEMA run_partitions IS 'one partition per per-run table and run date (<table>_<YYYYMMDD>); read them through their tables in public';

CREATE FUNCTION pg_temp.rebuild_by_run_date(t text, partitioned boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    old text := t || '_before_0007';
    owner text;
    pk text;
    comment text;
    idx text[];
    r record;
    d date;
BEGIN
    SELECT pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class') INTO owner, comment
        FROM pg_class c WHERE c.oid = t::regclass;
    SELECT pg_get_constraintdef(con.oid) INTO pk FROM pg_constraint con
        WHERE con.conrelid = t::regclass AND con.contype = 'p';
    SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}') INTO idx FROM pg_index i
        WHERE i.indrelid = t::regclass AND NOT i.indisprimary;
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
    FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = old::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, left(r.relname, 50) || '_0007');
    END LOOP;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING COMMENTS)%s', t, old,
                   CASE WHEN partitioned THEN ' PARTITION BY LIST (run_date)' ELSE '' END);
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
        FOR d IN EXECUTE format('SELECT DISTINCT run_date FROM %I', old) LOOP
            EXECUTE format('CREATE TABLE run_partitions.%I PARTITION OF %I FOR VALUES IN (%L)',
                           t || '_' || to_char(d, 'YYYYMMDD'), t, d);
            EXECUTE format('ALTER TABLE run_partitions.%I OWNER TO %I', t || '_' || to_char(d, 'YYYYMMDD'), owner);
        END LOOP;
    END IF;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, old);
    EXECUTE format('DROP TABLE %I', old);  -- a partitioned one with its partitions
END
$fn$;

SELECT pg_temp.rebuild_by_run_date(t, true) FROM unnest(ARRAY['feed_status', 'operator_score',
    'supervision_measure', 'inspector', 'serious_dishonest_list', 'dishonest_list_change', 'risk_alert']) t;
DROP FUNCTION pg_temp.rebuild_by_run_date(text, boolean);
