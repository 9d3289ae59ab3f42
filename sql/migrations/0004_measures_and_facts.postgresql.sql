-- Migration 0004: measures with a legal basis (lifecycle.md §3) and the published licences, spot checks
-- and complaints (warehouse.md: fact_license, fact_spot_check, fact_complaint), with their comments
-- and the department grants of warehouse.md ("Department access").
--
-- supervision_measure gains basis, legal_basis and under_objection, and its key becomes (run_date,
-- operator_key, measure_code) as warehouse.md gives it (one row per operator and measure; a measure
-- code has one responsible department). Rows published before this migration rested on the
-- operator's class alone (scoring.md §4 as it was): their basis is 'class:<final class>', no legal
-- basis was recorded (null), and no objection existed. The table keeps its owner, grants and
-- row-level security (each department reads its own rows by responsible_dept).

ALTER TABLE supervision_measure DROP CONSTRAINT supervision_measure_pkey;
ALTER TABLE supervision_measure ADD PRIMARY KEY (run_date, operator_key, measure_code);
ALTER TABLE supervision_measure ALTER COLUMN responsible_dept SET NOT NULL;
ALTER TABLE supervision_measure ADD COLUMN basis TEXT;
UPDATE supervision_measure SET basis = 'class:' || final_class;
ALTER TABLE supervision_measure ALTER COLUMN basis SET NOT NULL;
ALTER TABLE supervision_measure ADD COLUMN legal_basis TEXT;
ALTER TABLE supervision_measure ADD COLUMN under_objection BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE supervision_measure ALTER COLUMN under_objection DROP DEFAULT;
COMMENT ON TABLE supervision_measure IS 'What each department must do about each operator (分级分类监管; 联合惩戒 only for the serious-dishonesty list), on what basis and legal provision, per run date (lifecycle.md §3)';
COMMENT ON COLUMN supervision_measure.run_date IS 'run date D';
COMMENT ON COLUMN supervision_measure.operator_key IS 'operator key';
COMMENT ON COLUMN supervision_measure.measure_code IS 'measure (lifecycle.md §3), e.g. ONSITE_INSPECTION; the rules file''s measures.codes';
COMMENT ON COLUMN supervision_measure.final_class IS 'the operator''s final class at D';
COMMENT ON COLUMN supervision_measure.responsible_dept IS 'department that applies the measure';
COMMENT ON COLUMN supervision_measure.basis IS 'what the measure rests on: for an operator on the serious-dishonesty list the record_keys of its active list records, sorted, comma-joined (for every one of its measures); otherwise class:<final class> (class:D)';
COMMENT ON COLUMN supervision_measure.legal_basis IS 'the provision the measure rests on (the rules file''s text for the measure code); null only on rows published before legal bases were recorded (migration 0004)';
COMMENT ON COLUMN supervision_measure.under_objection IS 'every record of its basis is under objection (never for class:D); false until objections are taken in (lifecycle.md §2)';

CREATE TABLE fact_license (
	license_no TEXT NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	license_name TEXT, 
	valid_from DATE NOT NULL, 
	valid_to DATE, 
	license_status VARCHAR(8), 
	source_delivery_date DATE NOT NULL, 
	source_line INTEGER NOT NULL, 
	PRIMARY KEY (license_no)
);
CREATE INDEX ix_fact_license_operator ON fact_license (operator_key);
COMMENT ON TABLE fact_license IS 'gds administrative licences (行政许可) of the state at the latest run date so far; not credit records';
COMMENT ON COLUMN fact_license.license_no IS '行政许可决定书文号';
COMMENT ON COLUMN fact_license.operator_key IS 'operator the licence is about (USCC or NP- key)';
COMMENT ON COLUMN fact_license.license_name IS '许可证名称';
COMMENT ON COLUMN fact_license.valid_from IS '有效期自';
COMMENT ON COLUMN fact_license.valid_to IS '有效期至 (null: open-ended)';
COMMENT ON COLUMN fact_license.license_status IS '许可状态: 有效 / 注销 / 撤销 (null reads: not 有效)';
COMMENT ON COLUMN fact_license.source_delivery_date IS 'delivery the current version came from';
COMMENT ON COLUMN fact_license.source_line IS 'line in the delivery file';

CREATE TABLE fact_spot_check (
	check_no TEXT NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	product_category TEXT, 
	result VARCHAR(8) NOT NULL, 
	check_date DATE NOT NULL, 
	source_delivery_date DATE NOT NULL, 
	source_line INTEGER NOT NULL, 
	PRIMARY KEY (check_no)
);
CREATE INDEX ix_fact_spot_check_operator ON fact_spot_check (operator_key);
COMMENT ON TABLE fact_spot_check IS 'amr product spot checks of the state at the latest run date so far (the quality dimension''s input)';
COMMENT ON COLUMN fact_spot_check.check_no IS '抽查编号';
COMMENT ON COLUMN fact_spot_check.operator_key IS 'operator checked (USCC or NP- key)';
COMMENT ON COLUMN fact_spot_check.product_category IS '商品类别';
COMMENT ON COLUMN fact_spot_check.result IS '抽查结果: 合格 / 不合格';
COMMENT ON COLUMN fact_spot_check.check_date IS '抽查日期';
COMMENT ON COLUMN fact_spot_check.source_delivery_date IS 'delivery the current version came from';
COMMENT ON COLUMN fact_spot_check.source_line IS 'line in the delivery file';

CREATE TABLE fact_complaint (
	complaint_no TEXT NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	complaint_category TEXT, 
	registered_date DATE NOT NULL, 
	handling_status VARCHAR(8), 
	advance_compensation VARCHAR(2), 
	source_delivery_date DATE NOT NULL, 
	source_line INTEGER NOT NULL, 
	PRIMARY KEY (complaint_no)
);
CREATE INDEX ix_fact_complaint_operator ON fact_complaint (operator_key);
COMMENT ON TABLE fact_complaint IS 'amr consumer complaints of the state at the latest run date so far, without the complainant''s name or phone (the quality dimension''s input)';
COMMENT ON COLUMN fact_complaint.complaint_no IS '投诉编号';
COMMENT ON COLUMN fact_complaint.operator_key IS 'operator complained about (USCC or NP- key)';
COMMENT ON COLUMN fact_complaint.complaint_category IS '投诉类别';
COMMENT ON COLUMN fact_complaint.registered_date IS '登记日期';
COMMENT ON COLUMN fact_complaint.handling_status IS '办结状态: 已办结 / 办理中 (null reads 办理中)';
COMMENT ON COLUMN fact_complaint.advance_compensation IS '先行赔付: 是 / 否 (null reads 否)';
COMMENT ON COLUMN fact_complaint.source_delivery_date IS 'delivery the current version came from';
COMMENT ON COLUMN fact_complaint.source_line IS 'line in the delivery file';

-- the pipeline owns and writes them; every department and the pipeline's operators read them
ALTER TABLE fact_license OWNER TO ecredit_pipeline;
ALTER TABLE fact_spot_check OWNER TO ecredit_pipeline;
ALTER TABLE fact_complaint OWNER TO ecredit_pipeline;
REVOKE ALL ON fact_license, fact_spot_check, fact_complaint FROM PUBLIC;
GRANT SELECT ON fact_license, fact_spot_check, fact_complaint TO ecredit_departments, ecredit_operators;
