-- Migration 0006 (issue 17 item 3, decision 0112): publish applies the latest state's change sets.
-- published_build says which build of a run date's gold the warehouse holds, so that a change set
-- taken against that build can be applied to the latest state; dim_operator.updated_run_date now
-- means the latest date behind the row (it was the run date on every row).
CREATE TABLE published_build (
	run_date DATE NOT NULL, 
	build_id VARCHAR(32) NOT NULL, 
	published_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (run_date)
);
COMMENT ON TABLE published_build IS 'Which build of each run date''s gold the warehouse holds (the pipeline''s bookkeeping)';
COMMENT ON COLUMN published_build.run_date IS 'run date D';
COMMENT ON COLUMN published_build.build_id IS 'id of the build of D whose gold was published (gold/<D>/_built.json)';
COMMENT ON COLUMN published_build.published_at IS 'UTC';
ALTER TABLE published_build OWNER TO ecredit_pipeline;
REVOKE ALL ON published_build FROM PUBLIC;
GRANT SELECT ON published_build TO ecredit_operators;
COMMENT ON COLUMN dim_operator.updated_run_date IS 'latest date behind the row: its registry version''s delivery, its licences'' deliveries, a 有效 licence becoming valid or expiring (up to the run date)';
