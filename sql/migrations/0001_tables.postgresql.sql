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

COMMENT ON TABLE dim_operator IS 'E-commerce operators, state at the latest run date so far';
COMMENT ON COLUMN dim_operator.operator_key IS 'USCC for organisations; NP- pseudonym for natural persons';
COMMENT ON COLUMN dim_operator.uscc IS '统一社会信用代码; null for natural persons';
COMMENT ON COLUMN dim_operator.name IS '主体名称; for a natural person the shop''s name';
COMMENT ON COLUMN dim_operator.subject_type IS '主体类型: 企业 / 个体工商户 / 自然人';
COMMENT ON COLUMN dim_operator.district_code IS '所属区划';
COMMENT ON COLUMN dim_operator.platform IS '电商平台';
COMMENT ON COLUMN dim_operator.shop_url IS '店铺网址';
COMMENT ON COLUMN dim_operator.registration_status IS '登记状态';
COMMENT ON COLUMN dim_operator.license_displayed IS '亮照亮证: 是 / 否';
COMMENT ON COLUMN dim_operator.last_verified_date IS '最近核验日期';
COMMENT ON COLUMN dim_operator.established_date IS '成立日期';
COMMENT ON COLUMN dim_operator.valid_licenses IS 'gds licences 有效 with 有效期自 <= D <= 有效期至';
COMMENT ON COLUMN dim_operator.updated_run_date IS 'run date of the state shown';

CREATE TABLE dishonest_list_change (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	record_type VARCHAR(40) NOT NULL, 
	change VARCHAR(8) NOT NULL, 
	PRIMARY KEY (run_date, operator_key, record_type)
);

CREATE INDEX ix_dishonest_list_change_run ON dishonest_list_change (run_date);

COMMENT ON TABLE dishonest_list_change IS 'Changes of the serious-dishonesty list, pushed to all nine departments';
COMMENT ON COLUMN dishonest_list_change.run_date IS 'run date D';
COMMENT ON COLUMN dishonest_list_change.operator_key IS 'operator key';
COMMENT ON COLUMN dishonest_list_change.record_type IS 'list record type';
COMMENT ON COLUMN dishonest_list_change.change IS 'ADDED / REMOVED against the latest earlier run date';

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

COMMENT ON TABLE dq_result IS 'Validation results of each delivery (quality.md), keyed by the delivery';
COMMENT ON COLUMN dq_result.dept IS 'department code (amr, ndrc, cac, psb, commerce, finance, gds, post, customs)';
COMMENT ON COLUMN dq_result.feed IS 'feed file stem; * for the whole delivery';
COMMENT ON COLUMN dq_result.delivery_date IS 'date of the delivery (its landing folder)';
COMMENT ON COLUMN dq_result."check" IS 'delivery_gate, quarantined_ratio, volume, rows:<CODE> (rows quarantined per reason), gx:<expectation>(<column>) (the feed''s GX suite on the file)';
COMMENT ON COLUMN dq_result.success IS 'the check passed';
COMMENT ON COLUMN dq_result.severity IS 'error / warning';
COMMENT ON COLUMN dq_result.element_count IS 'rows (or files) checked';
COMMENT ON COLUMN dq_result.unexpected_count IS 'rows (or problems) found';
COMMENT ON COLUMN dq_result.detail IS 'what was found, in one sentence';
COMMENT ON COLUMN dq_result.manifest_sha256 IS 'the delivery''s manifest as validated';
COMMENT ON COLUMN dq_result.run_id IS 'the run that validated the delivery';

CREATE TABLE draw_commitment (
	draw_date DATE NOT NULL, 
	salt_sha256 VARCHAR(64) NOT NULL, 
	published_run_date DATE NOT NULL, 
	PRIMARY KEY (draw_date)
);

COMMENT ON TABLE draw_commitment IS 'Commitments to future draws'' salts, published before the draw';
COMMENT ON COLUMN draw_commitment.draw_date IS 'the next draw date after the run date that published it';
COMMENT ON COLUMN draw_commitment.salt_sha256 IS 'SHA-256 of that draw''s salt, committed in advance';
COMMENT ON COLUMN draw_commitment.published_run_date IS 'the run date whose run published the commitment';

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

COMMENT ON TABLE fact_credit_record IS 'Credit records of the state at the latest run date so far';
COMMENT ON COLUMN fact_credit_record.record_key IS '<dept>:<feed>:<key parts joined by |>';
COMMENT ON COLUMN fact_credit_record.operator_key IS 'operator the record is about';
COMMENT ON COLUMN fact_credit_record.dept IS 'department that delivered it';
COMMENT ON COLUMN fact_credit_record.record_type IS 'credit record type (scoring.md §1)';
COMMENT ON COLUMN fact_credit_record.polarity IS 'negative / positive';
COMMENT ON COLUMN fact_credit_record.severity IS '1 minor .. 4 very serious; null for positive records';
COMMENT ON COLUMN fact_credit_record.event_date IS 'event date (Asia/Shanghai)';
COMMENT ON COLUMN fact_credit_record.active_until IS 'last day it counts; null = open-ended or never counts';
COMMENT ON COLUMN fact_credit_record.active IS 'counts at the run date';
COMMENT ON COLUMN fact_credit_record.withdrawn IS 'withdrawn, revoked, 撤案 or 已结清';
COMMENT ON COLUMN fact_credit_record.amount_yuan IS 'amount in yuan';
COMMENT ON COLUMN fact_credit_record.in_registry IS 'operator is in the registry at the run date';
COMMENT ON COLUMN fact_credit_record.source_delivery_date IS 'delivery the current version came from';
COMMENT ON COLUMN fact_credit_record.source_line IS 'line in the delivery file';

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

COMMENT ON TABLE feed_status IS 'Each department''s delivery dated D';
COMMENT ON COLUMN feed_status.run_date IS 'run date D';
COMMENT ON COLUMN feed_status.dept IS 'department code';
COMMENT ON COLUMN feed_status.status IS 'ok / partial / rejected / missing (delivery dated D)';
COMMENT ON COLUMN feed_status.deliveries_applied IS 'the department''s deliveries dated <= D that the state includes';
COMMENT ON COLUMN feed_status.rows_in IS 'data rows in the delivery dated D';
COMMENT ON COLUMN feed_status.rows_loaded IS 'rows applied to the state';
COMMENT ON COLUMN feed_status.rows_quarantined IS 'rows set aside (see quarantine)';

CREATE TABLE inspection_draw (
	run_date DATE NOT NULL, 
	salt VARCHAR(64) NOT NULL, 
	salt_sha256 VARCHAR(64) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	counts TEXT NOT NULL, 
	PRIMARY KEY (run_date)
);

COMMENT ON TABLE inspection_draw IS 'Each draw revealed (一公开): anyone can re-run it from the published tables (ecredit verify-plan)';
COMMENT ON COLUMN inspection_draw.run_date IS 'draw date D';
COMMENT ON COLUMN inspection_draw.salt IS 'the draw''s salt, revealed (HMAC-SHA256 of D with the draw secret)';
COMMENT ON COLUMN inspection_draw.salt_sha256 IS 'SHA-256 of the salt: equals the earlier commitment';
COMMENT ON COLUMN inspection_draw.seed IS 'SHA-256 of ''<D>|<salt>''';
COMMENT ON COLUMN inspection_draw.counts IS 'JSON per class: operators, ratio, drawn';

CREATE TABLE inspection_plan (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	inspector_ids TEXT NOT NULL, 
	onsite_required BOOLEAN NOT NULL, 
	PRIMARY KEY (run_date, operator_key)
);

COMMENT ON TABLE inspection_plan IS 'Double-random inspection plan (双随机): the operators drawn and their two inspectors';
COMMENT ON COLUMN inspection_plan.run_date IS 'draw date D';
COMMENT ON COLUMN inspection_plan.operator_key IS 'selected operator';
COMMENT ON COLUMN inspection_plan.seed IS 'the draw''s seed: SHA-256 of ''<D>|<salt>''';
COMMENT ON COLUMN inspection_plan.final_class IS 'the operator''s final class at D';
COMMENT ON COLUMN inspection_plan.inspector_ids IS '执法人员编号 of the drawn inspectors, comma-separated, draw order';
COMMENT ON COLUMN inspection_plan.onsite_required IS 'on-site inspection required (class D by default)';

CREATE TABLE inspector (
	run_date DATE NOT NULL, 
	inspector_id VARCHAR(40) NOT NULL, 
	name TEXT, 
	unit TEXT, 
	on_duty BOOLEAN NOT NULL, 
	PRIMARY KEY (run_date, inspector_id)
);

COMMENT ON TABLE inspector IS 'The inspectors'' roster as of D: the pool of the inspector draw';
COMMENT ON COLUMN inspector.run_date IS 'run date D';
COMMENT ON COLUMN inspector.inspector_id IS '执法人员编号';
COMMENT ON COLUMN inspector.name IS '姓名 of the inspector (a public official acting in office)';
COMMENT ON COLUMN inspector.unit IS '所属单位';
COMMENT ON COLUMN inspector.on_duty IS '在岗 at D (null in the roster reads 否)';

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

COMMENT ON TABLE operator_score IS 'Score and supervision class of every classified operator, per run date (scoring.md §2-3)';
COMMENT ON COLUMN operator_score.run_date IS 'run date D';
COMMENT ON COLUMN operator_score.operator_key IS 'operator key (dim_operator)';
COMMENT ON COLUMN operator_score.identity_score IS '主体身份 0-100';
COMMENT ON COLUMN operator_score.evaluation_score IS '平台评价 0-300';
COMMENT ON COLUMN operator_score.quality_score IS '产品服务质量 0-200';
COMMENT ON COLUMN operator_score.conduct_score IS '信用记录 0-400';
COMMENT ON COLUMN operator_score.total_score IS '0-1000, the sum of the four dimensions';
COMMENT ON COLUMN operator_score.score_class IS 'class by score alone: A >= 850, B >= 700, C >= 550, else D';
COMMENT ON COLUMN operator_score.final_class IS '分级: the worst of the base class and every rule''s effect';
COMMENT ON COLUMN operator_score.previous_class IS 'final class at the latest earlier published run date; null if not classified then';
COMMENT ON COLUMN operator_score.rules_applied IS 'rule codes whose condition holds, comma-separated, sorted';
COMMENT ON COLUMN operator_score.reasons IS 'JSON: each active record (type, severity, points), each rule, the dimensions';
COMMENT ON COLUMN operator_score.rules_version IS 'SHA-256 of the rules file';

CREATE TABLE pipeline_run (
	attempt_id SERIAL NOT NULL, 
	run_date DATE, 
	run_id VARCHAR(250) NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	status VARCHAR(10) NOT NULL, 
	reason TEXT, 
	warnings TEXT, 
	rules_version VARCHAR(64), 
	counts TEXT, 
	PRIMARY KEY (attempt_id)
);

COMMENT ON TABLE pipeline_run IS 'Every attempt of a run, append-only';
COMMENT ON COLUMN pipeline_run.attempt_id IS 'attempt number, increasing';
COMMENT ON COLUMN pipeline_run.run_date IS 'run date D (null when the run failed before resolving it)';
COMMENT ON COLUMN pipeline_run.run_id IS 'Airflow run id';
COMMENT ON COLUMN pipeline_run.started_at IS 'UTC';
COMMENT ON COLUMN pipeline_run.finished_at IS 'UTC';
COMMENT ON COLUMN pipeline_run.status IS 'success / failed';
COMMENT ON COLUMN pipeline_run.reason IS 'why the attempt failed';
COMMENT ON COLUMN pipeline_run.warnings IS 'JSON list';
COMMENT ON COLUMN pipeline_run.rules_version IS 'SHA-256 of the rules file';
COMMENT ON COLUMN pipeline_run.counts IS 'JSON object';

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

COMMENT ON TABLE quarantine IS 'Rows set aside by the checks, with every reason; readable by the pipeline''s operators only';
COMMENT ON COLUMN quarantine.dept IS 'department code (amr, ndrc, cac, psb, commerce, finance, gds, post, customs)';
COMMENT ON COLUMN quarantine.feed IS 'feed file stem';
COMMENT ON COLUMN quarantine.delivery_date IS 'date of the delivery (its landing folder)';
COMMENT ON COLUMN quarantine.source_line IS 'physical line in the file, header = 1';
COMMENT ON COLUMN quarantine.reasons IS 'reason codes of quality.md, comma-separated';
COMMENT ON COLUMN quarantine.payload IS 'the row as sent, JSON, personal data masked';
COMMENT ON COLUMN quarantine.manifest_sha256 IS 'the delivery''s manifest as validated';
COMMENT ON COLUMN quarantine.run_id IS 'the run that validated the delivery';

CREATE TABLE risk_alert (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	name TEXT NOT NULL, 
	level VARCHAR(8) NOT NULL, 
	message TEXT NOT NULL, 
	PRIMARY KEY (run_date, operator_key)
);

COMMENT ON TABLE risk_alert IS 'Risk alerts for consumers (消费者风险提示)';
COMMENT ON COLUMN risk_alert.run_date IS 'run date D';
COMMENT ON COLUMN risk_alert.operator_key IS 'operator key';
COMMENT ON COLUMN risk_alert.name IS '主体名称 from the registry (shop name for a natural person)';
COMMENT ON COLUMN risk_alert.level IS '关注 (class C) / 高风险 (class D)';
COMMENT ON COLUMN risk_alert.message IS 'short Chinese message from the main reasons; no personal data';

CREATE TABLE serious_dishonest_list (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	record_type VARCHAR(40) NOT NULL, 
	name TEXT NOT NULL, 
	source_dept VARCHAR(10) NOT NULL, 
	listed_date DATE NOT NULL, 
	PRIMARY KEY (run_date, operator_key, record_type)
);

COMMENT ON TABLE serious_dishonest_list IS '严重失信主体名单 at D';
COMMENT ON COLUMN serious_dishonest_list.run_date IS 'run date D';
COMMENT ON COLUMN serious_dishonest_list.operator_key IS 'operator key';
COMMENT ON COLUMN serious_dishonest_list.record_type IS 'LIST_SERIOUS / NDRC_JOINT_PUNISH / CUS_SERIOUS_DISHONEST';
COMMENT ON COLUMN serious_dishonest_list.name IS '主体名称 from the registry; empty for an operator not in it';
COMMENT ON COLUMN serious_dishonest_list.source_dept IS 'department whose record lists it';
COMMENT ON COLUMN serious_dishonest_list.listed_date IS 'earliest event date among its active records of that type';

CREATE TABLE supervision_measure (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	measure_code VARCHAR(40) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	responsible_dept VARCHAR(10) NOT NULL, 
	PRIMARY KEY (run_date, operator_key, measure_code, responsible_dept)
);

CREATE INDEX ix_supervision_measure_dept ON supervision_measure (responsible_dept, run_date);

COMMENT ON TABLE supervision_measure IS 'What each department must do about each operator (分级分类监管, 联合惩戒), per run date';
COMMENT ON COLUMN supervision_measure.run_date IS 'run date D';
COMMENT ON COLUMN supervision_measure.operator_key IS 'operator key';
COMMENT ON COLUMN supervision_measure.measure_code IS 'measure (scoring.md §4), e.g. ONSITE_INSPECTION';
COMMENT ON COLUMN supervision_measure.final_class IS 'the operator''s final class at D';
COMMENT ON COLUMN supervision_measure.responsible_dept IS 'department that applies the measure';
