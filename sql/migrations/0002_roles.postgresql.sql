-- Migration 0002: who may read what (warehouse.md, "Department access"). PostgreSQL only.
-- Roles are cluster-wide: created only when missing, so a second database or a rerun is harmless.
-- ecredit_pipeline   the pipeline's own role: owns and writes every table; not a superuser
-- ecredit_operators  the pipeline's operators: read everything, quarantine included
-- ecredit_departments  group of the nine department roles ecredit_<dept>: read the public tables
--                    and their own rows of supervision_measure, feed_status and dq_result
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['ecredit_pipeline', 'ecredit_operators', 'ecredit_departments',
      'ecredit_amr', 'ecredit_ndrc', 'ecredit_cac', 'ecredit_psb', 'ecredit_commerce', 'ecredit_finance',
      'ecredit_gds', 'ecredit_post', 'ecredit_customs'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I', r);
    END IF;
  END LOOP;
END $$;

ALTER ROLE ecredit_pipeline LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
ALTER ROLE ecredit_operators NOLOGIN;
ALTER ROLE ecredit_departments NOLOGIN;
DO $$
DECLARE d text;
BEGIN
  FOREACH d IN ARRAY ARRAY['amr', 'ndrc', 'cac', 'psb', 'commerce', 'finance', 'gds', 'post', 'customs'] LOOP
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', 'ecredit_' || d);
    EXECUTE format('GRANT ecredit_departments TO %I', 'ecredit_' || d);
  END LOOP;
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ecredit_pipeline', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO ecredit_departments, ecredit_operators', current_database());
END $$;

-- the pipeline owns the tables (an owner bypasses row-level security) and writes them
ALTER TABLE dim_operator OWNER TO ecredit_pipeline;
ALTER TABLE fact_credit_record OWNER TO ecredit_pipeline;
ALTER TABLE operator_score OWNER TO ecredit_pipeline;
ALTER TABLE supervision_measure OWNER TO ecredit_pipeline;
ALTER TABLE inspection_plan OWNER TO ecredit_pipeline;
ALTER TABLE inspection_draw OWNER TO ecredit_pipeline;
ALTER TABLE draw_commitment OWNER TO ecredit_pipeline;
ALTER TABLE inspector OWNER TO ecredit_pipeline;
ALTER TABLE serious_dishonest_list OWNER TO ecredit_pipeline;
ALTER TABLE dishonest_list_change OWNER TO ecredit_pipeline;
ALTER TABLE risk_alert OWNER TO ecredit_pipeline;
ALTER TABLE feed_status OWNER TO ecredit_pipeline;
ALTER TABLE dq_result OWNER TO ecredit_pipeline;
ALTER TABLE quarantine OWNER TO ecredit_pipeline;
ALTER TABLE pipeline_run OWNER TO ecredit_pipeline;
ALTER TABLE schema_migrations OWNER TO ecredit_pipeline;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ecredit_departments, ecredit_operators, ecredit_pipeline;

-- the public tables
GRANT SELECT ON dim_operator, fact_credit_record, operator_score, serious_dishonest_list, dishonest_list_change,
    risk_alert, inspection_plan, inspection_draw, draw_commitment, inspector TO ecredit_departments;

-- a department's own rows only: row-level security on the three shared tables
GRANT SELECT ON supervision_measure, feed_status, dq_result TO ecredit_departments;
ALTER TABLE supervision_measure ENABLE ROW LEVEL SECURITY;
ALTER TABLE feed_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE dq_result ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_department ON supervision_measure FOR SELECT TO ecredit_departments
    USING ('ecredit_' || responsible_dept = current_user);
CREATE POLICY own_department ON feed_status FOR SELECT TO ecredit_departments
    USING ('ecredit_' || dept = current_user);
CREATE POLICY own_department ON dq_result FOR SELECT TO ecredit_departments
    USING ('ecredit_' || dept = current_user);
-- the operators read everything (quarantine is theirs alone)
CREATE POLICY operators_read ON supervision_measure FOR SELECT TO ecredit_operators USING (true);
CREATE POLICY operators_read ON feed_status FOR SELECT TO ecredit_operators USING (true);
CREATE POLICY operators_read ON dq_result FOR SELECT TO ecredit_operators USING (true);
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ecredit_operators;
