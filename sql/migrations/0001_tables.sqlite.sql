-- Migration 0001: the tables of warehouse.md (generated once from ecredit/warehouse.py; frozen: a change is a new migration).

CREATE TABLE dim_operator (
	operator_key VARCHAR(40) NOT NULL, 
	uscc VARCHAR(18), 
	name TEXT, 
	subject_type VARCHAR(16), 
	district_code VARCHAR(6), 
	platform TEXT, 
	shop_url TEXT, 
	registration_status VARCHAR(8), 
	license_displayed VARCHAR(2), 
	last_verified_date DATE, 
	established_date DATE, 
	valid_licenses INTEGER, 
	updated_run_date DATE NOT NULL, 
	PRIMARY KEY (operator_key)
);

CREATE TABLE dishonest_list_change (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	record_type VARCHAR(40) NOT NULL, 
	change VARCHAR(8) NOT NULL, 
	PRIMARY KEY (run_date, operator_key, record_type)
);

CREATE INDEX ix_dishonest_list_change_run ON dishonest_list_change (run_date);

CREATE TABLE dq_result (
	dept VARCHAR(10) NOT NULL, 
	feed VARCHAR(40) NOT NULL, 
	delivery_date DATE NOT NULL, 
	"check" VARCHAR(200) NOT NULL, 
	success BOOLEAN NOT NULL, 
	severity VARCHAR(8) NOT NULL, 
	element_count INTEGER, 
	unexpected_count INTEGER, 
	detail TEXT, 
	manifest_sha256 VARCHAR(64) NOT NULL, 
	run_id VARCHAR(250) NOT NULL, 
	PRIMARY KEY (dept, feed, delivery_date, "check")
);

CREATE TABLE draw_commitment (
	draw_date DATE NOT NULL, 
	salt_sha256 VARCHAR(64) NOT NULL, 
	published_run_date DATE NOT NULL, 
	PRIMARY KEY (draw_date)
);

CREATE TABLE fact_credit_record (
	record_key TEXT NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	dept VARCHAR(10) NOT NULL, 
	record_type VARCHAR(40) NOT NULL, 
	polarity VARCHAR(8) NOT NULL, 
	severity INTEGER, 
	event_date DATE NOT NULL, 
	active_until DATE, 
	active BOOLEAN NOT NULL, 
	withdrawn BOOLEAN NOT NULL, 
	amount_yuan NUMERIC(20, 2), 
	in_registry BOOLEAN NOT NULL, 
	source_delivery_date DATE NOT NULL, 
	source_line INTEGER NOT NULL, 
	PRIMARY KEY (record_key)
);

CREATE INDEX ix_fact_credit_record_operator ON fact_credit_record (operator_key);

CREATE INDEX ix_fact_credit_record_operator_key ON fact_credit_record (operator_key);

CREATE TABLE feed_status (
	run_date DATE NOT NULL, 
	dept VARCHAR(10) NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	deliveries_applied INTEGER NOT NULL, 
	rows_in INTEGER NOT NULL, 
	rows_loaded INTEGER NOT NULL, 
	rows_quarantined INTEGER NOT NULL, 
	PRIMARY KEY (run_date, dept)
);

CREATE TABLE inspection_draw (
	run_date DATE NOT NULL, 
	salt VARCHAR(64) NOT NULL, 
	salt_sha256 VARCHAR(64) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	counts TEXT NOT NULL, 
	PRIMARY KEY (run_date)
);

CREATE TABLE inspection_plan (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	inspector_ids TEXT NOT NULL, 
	onsite_required BOOLEAN NOT NULL, 
	PRIMARY KEY (run_date, operator_key)
);

CREATE TABLE inspector (
	run_date DATE NOT NULL, 
	inspector_id VARCHAR(40) NOT NULL, 
	name TEXT, 
	unit TEXT, 
	on_duty BOOLEAN NOT NULL, 
	PRIMARY KEY (run_date, inspector_id)
);

CREATE TABLE operator_score (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	identity_score INTEGER NOT NULL, 
	evaluation_score INTEGER NOT NULL, 
	quality_score INTEGER NOT NULL, 
	conduct_score INTEGER NOT NULL, 
	total_score INTEGER NOT NULL, 
	score_class VARCHAR(1) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	previous_class VARCHAR(1), 
	rules_applied TEXT NOT NULL, 
	reasons TEXT NOT NULL, 
	rules_version VARCHAR(64) NOT NULL, 
	PRIMARY KEY (run_date, operator_key)
);

CREATE INDEX ix_operator_score_operator ON operator_score (operator_key, run_date);

CREATE TABLE pipeline_run (
	attempt_id INTEGER NOT NULL, 
	run_date DATE, 
	run_id VARCHAR(250) NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	status VARCHAR(10) NOT NULL, 
	reason TEXT, 
	warnings TEXT, 
	rules_version VARCHAR(64), 
	counts TEXT, 
	PRIMARY KEY (attempt_id)
);

CREATE TABLE quarantine (
	dept VARCHAR(10) NOT NULL, 
	feed VARCHAR(40) NOT NULL, 
	delivery_date DATE NOT NULL, 
	source_line INTEGER NOT NULL, 
	reasons TEXT NOT NULL, 
	payload TEXT, 
	manifest_sha256 VARCHAR(64) NOT NULL, 
	run_id VARCHAR(250) NOT NULL, 
	PRIMARY KEY (dept, feed, delivery_date, source_line)
);

CREATE TABLE risk_alert (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	name TEXT NOT NULL, 
	level VARCHAR(8) NOT NULL, 
	message TEXT NOT NULL, 
	PRIMARY KEY (run_date, operator_key)
);

CREATE TABLE serious_dishonest_list (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	record_type VARCHAR(40) NOT NULL, 
	name TEXT NOT NULL, 
	source_dept VARCHAR(10) NOT NULL, 
	listed_date DATE NOT NULL, 
	PRIMARY KEY (run_date, operator_key, record_type)
);

CREATE TABLE supervision_measure (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	measure_code VARCHAR(40) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	responsible_dept VARCHAR(10) NOT NULL, 
	PRIMARY KEY (run_date, operator_key, measure_code, responsible_dept)
);

CREATE INDEX ix_supervision_measure_dept ON supervision_measure (responsible_dept, run_date);
