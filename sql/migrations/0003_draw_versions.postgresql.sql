-- Migration 0003: every published version of a draw date's plan is kept (warehouse.md:
-- inspection_draw keyed by (run_date, version) with in_force and published_at; inspection_plan by
-- (run_date, version, operator_key)); inspection_draw_input keeps what a version was drawn on once
-- a rerun replaces D's operator_score and inspector rows. The plans published so far become
-- version 1, in force; published_at is the finish of the date's last successful run.

ALTER TABLE inspection_draw ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE inspection_draw ALTER COLUMN version DROP DEFAULT;
ALTER TABLE inspection_draw ADD COLUMN in_force BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE inspection_draw ALTER COLUMN in_force DROP DEFAULT;
ALTER TABLE inspection_draw ADD COLUMN inputs_kept BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE inspection_draw ALTER COLUMN inputs_kept DROP DEFAULT;
ALTER TABLE inspection_draw ADD COLUMN published_at TIMESTAMP WITH TIME ZONE;
UPDATE inspection_draw d SET published_at = (
    SELECT max(r.finished_at) FROM pipeline_run r WHERE r.run_date = d.run_date AND r.status = 'success');
ALTER TABLE inspection_draw DROP CONSTRAINT inspection_draw_pkey;
ALTER TABLE inspection_draw ADD CONSTRAINT inspection_draw_pkey PRIMARY KEY (run_date, version);
CREATE UNIQUE INDEX ux_inspection_draw_in_force ON inspection_draw (run_date) WHERE in_force;

ALTER TABLE inspection_plan ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE inspection_plan ALTER COLUMN version DROP DEFAULT;
ALTER TABLE inspection_plan DROP CONSTRAINT inspection_plan_pkey;
ALTER TABLE inspection_plan ADD CONSTRAINT inspection_plan_pkey PRIMARY KEY (run_date, version, operator_key);

CREATE TABLE inspection_draw_input (
	run_date DATE NOT NULL, 
	version INTEGER NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	item_key VARCHAR(40) NOT NULL, 
	final_class VARCHAR(1), 
	PRIMARY KEY (run_date, version, kind, item_key)
);

COMMENT ON TABLE inspection_draw IS 'Each draw revealed (一公开), every version kept: anyone can re-run it from the published tables (ecredit verify-plan)';
COMMENT ON COLUMN inspection_draw.version IS '1, 2, ...: a rerun of D whose plan differs from the one in force adds a version';
COMMENT ON COLUMN inspection_draw.in_force IS 'the version in force for D (exactly one per draw date)';
COMMENT ON COLUMN inspection_draw.inputs_kept IS 'true: the classes and inspectors this version was drawn on are in inspection_draw_input (a rerun of D replaced D''s operator_score and inspector rows since); false: they are those rows';
COMMENT ON COLUMN inspection_draw.published_at IS 'UTC time of the publish that added the version (null: published before migration 0003 by a run that recorded no success)';
COMMENT ON COLUMN inspection_plan.version IS 'version of the draw of D (inspection_draw) this row belongs to';
COMMENT ON TABLE inspection_draw_input IS 'What a draw version was drawn on, kept when a rerun of D replaces D''s operator_score and inspector rows (a version superseded, or kept in force by a rerun that made no plan): verify-plan re-runs such a version from these rows';
COMMENT ON COLUMN inspection_draw_input.run_date IS 'draw date D';
COMMENT ON COLUMN inspection_draw_input.version IS 'version of the draw of D';
COMMENT ON COLUMN inspection_draw_input.kind IS 'operator / inspector / listed';
COMMENT ON COLUMN inspection_draw_input.item_key IS 'operator key (kind operator: drawn among its class; kind listed: on the serious-dishonesty list of D, on site whatever its class) or 执法人员编号 of an inspector on duty (kind inspector)';
COMMENT ON COLUMN inspection_draw_input.final_class IS 'the operator''s final class the draw used; null for an inspector';

-- a public table like the draw's (warehouse.md, "Department access"): the pipeline owns and writes
-- it, the departments and the pipeline's operators read it
ALTER TABLE inspection_draw_input OWNER TO ecredit_pipeline;
GRANT SELECT ON inspection_draw_input TO ecredit_departments, ecredit_operators;
