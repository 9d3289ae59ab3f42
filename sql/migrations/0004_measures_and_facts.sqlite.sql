-- Migration 0004: measures with a legal basis (lifecycle.md §3) and the published licences, spot checks
-- and complaints (warehouse.md: fact_license, fact_spot_check, fact_complaint).
--
-- supervision_measure gains basis, legal_basis and under_objection, and its key becomes (run_date,
-- operator_key, measure_code) as warehouse.md gives it (one row per operator and measure; a measure
-- code has one responsible department). SQLite changes a key only by rebuilding the table. Rows
-- published before this migration rested on the operator's class alone (scoring.md §4 as it was):
-- their basis is 'class:<final class>', no legal basis was recorded (null), and no objection existed.

CREATE TABLE supervision_measure_0004 (
	run_date DATE NOT NULL, 
	operator_key VARCHAR(40) NOT NULL, 
	measure_code VARCHAR(40) NOT NULL, 
	final_class VARCHAR(1) NOT NULL, 
	responsible_dept VARCHAR(10) NOT NULL, 
	basis TEXT NOT NULL, 
	legal_basis TEXT, 
	under_objection BOOLEAN NOT NULL, 
	PRIMARY KEY (run_date, operator_key, measure_code)
);

INSERT INTO supervision_measure_0004 (run_date, operator_key, measure_code, final_class, responsible_dept, basis,
    legal_basis, under_objection)
SELECT run_date, operator_key, measure_code, final_class, responsible_dept, 'class:' || final_class, NULL, 0
FROM supervision_measure;
DROP TABLE supervision_measure;
ALTER TABLE supervision_measure_0004 RENAME TO supervision_measure;
CREATE INDEX ix_supervision_measure_dept ON supervision_measure (responsible_dept, run_date);

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
