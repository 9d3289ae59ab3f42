-- Migration 0003: every published version of a draw date's plan is kept (warehouse.md:
-- inspection_draw keyed by (run_date, version) with in_force and published_at; inspection_plan by
-- (run_date, version, operator_key)); inspection_draw_input keeps what a version was drawn on once
-- a rerun replaces D's operator_score and inspector rows. SQLite cannot change a primary key: the
-- two tables are rebuilt. The plans published so far become version 1, in force; published_at is
-- the finish of the date's last successful run.

CREATE TABLE inspection_draw_0003 (
	run_date DATE NOT NULL, 
	version INTEGER NOT NULL, 
	salt VARCHAR(64) NOT NULL, 
	salt_sha256 VARCHAR(64) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	counts TEXT NOT NULL, 
	in_force BOOLEAN NOT NULL, 
	inputs_kept BOOLEAN NOT NULL, 
	published_at DATETIME, 
	PRIMARY KEY (run_date, version)
);
INSERT INTO inspection_draw_0003 (run_date, version, salt, salt_sha256, seed, counts, in_force, inputs_kept,
                                 published_at)
SELECT d.run_date, 1, d.salt, d.salt_sha256, d.seed, d.counts, 1, 0,
       (SELECT max(r.finished_at) FROM pipeline_run r WHERE r.run_date = d.run_date AND r.status = 'success')
FROM inspection_draw d;
DROP TABLE inspection_draw;
ALTER TABLE inspection_draw_0003 RENAME TO inspection_draw;
CREATE UNIQUE INDEX ux_inspection_draw_in_force ON inspection_draw (run_date) WHERE in_force;

CREATE TABLE inspection_plan_0003 (
	run_date DATE NOT NULL, 
	version INTEGER NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	inspector_ids TEXT NOT NULL, 
	onsite_required BOOLEAN NOT NULL, 
	PRIMARY KEY (run_date, version, operator_key)
);
INSERT INTO inspection_plan_0003 (run_date, version, operator_key, seed, final_class, inspector_ids, onsite_required)
SELECT run_date, 1, operator_key, seed, final_class, inspector_ids, onsite_required FROM inspection_plan;
DROP TABLE inspection_plan;
ALTER TABLE inspection_plan_0003 RENAME TO inspection_plan;

CREATE TABLE inspection_draw_input (
	run_date DATE NOT NULL, 
	version INTEGER NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	item_key VARCHAR(40) NOT NULL, 
	final_class VARCHAR(1), 
	PRIMARY KEY (run_date, version, kind, item_key)
);
